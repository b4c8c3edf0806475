"""Scoring rules → priority (pure)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.errors import ConfigurationError
from shared.intake import defender, generic, sentinel
from shared.models import Alert, Priority
from shared.partners import PartnerRegistry
from shared.scoring import ScoringRules, score_alert

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 22, tzinfo=UTC)
RULES = ScoringRules.load(ROOT / "config/scoring-rules.json")
PARTNERS = PartnerRegistry.load(ROOT / "samples/partners.json")


def sample(name):
    return json.loads((ROOT / "samples" / name).read_text())


@pytest.mark.parametrize(
    "score, priority", [(10, "P1"), (9, "P1"), (8, "P2"), (7, "P2"), (6, "P3"), (4, "P3"), (3, "P4"), (1, "P4")]
)
def test_score_to_priority(score, priority):
    assert Priority.from_score(score) == Priority(priority)


def test_crypto_miner_is_p1_and_says_why():
    d = score_alert(defender.parse(sample("defender-alert-arm.json"), NOW), RULES)
    assert d.priority == Priority.P1
    assert [h.rule_id for h in d.rules_fired] == ["severity-base", "impact-tactic", "crypto-mining"]
    assert d.rules_version == RULES.version


def test_brute_force_is_p2():
    d = score_alert(defender.parse(sample("defender-alert-connector.json"), NOW), RULES)
    assert d.priority == Priority.P2 and "brute-force" in [h.rule_id for h in d.rules_fired]


def test_exfiltration_incident_is_p1():
    d = score_alert(sentinel.parse(sample("sentinel-incident-trigger.json"), NOW), RULES)
    assert d.priority == Priority.P1 and "data-exfiltration" in [h.rule_id for h in d.rules_fired]


def test_explicit_score_wins_over_rules():
    d = score_alert(generic.parse(sample("generic-alert.json"), NOW), RULES)
    assert d.score == 7 and d.priority == Priority.P2
    assert [h.rule_id for h in d.rules_fired] == ["explicit-score"]


def test_informational_stays_low():
    a = Alert(
        source="generic",
        source_id="x",
        dedupe_keys=["k"],
        title="t",
        severity="Informational",
        observed_at=NOW,
        tactics=["Impact"],
    )
    assert score_alert(a, RULES).priority == Priority.P4


def test_asset_criticality_raises(tmp_path):
    raw = sample("partners.json")
    raw["partners"][0]["assetCriticality"] = [{"match": "*/virtualmachines/vm-jump-*", "criticality": "critical"}]
    (tmp_path / "p.json").write_text(json.dumps(raw))
    reg = PartnerRegistry.load(tmp_path / "p.json")
    a = defender.parse(sample("defender-alert-connector.json"), NOW)
    partner, _ = reg.resolve(a)
    plain, critical = score_alert(a, RULES), score_alert(a, RULES, partner)
    assert "critical-asset" in [h.rule_id for h in critical.rules_fired]
    assert critical.score >= plain.score


@pytest.mark.parametrize(
    "broken, words",
    [
        ({"version": "1", "severityScores": {"High": 11}}, "severityScores"),
        (
            {
                "version": "1",
                "severityScores": {},
                "rules": [{"id": "a", "description": "d", "match": {}, "adjust": 1}],
            },
            "condition",
        ),
        (
            {
                "version": "1",
                "severityScores": {},
                "rules": [{"id": "a", "description": "d", "match": {"tactics": ["x"]}}],
            },
            "no effect",
        ),
        (
            {
                "version": "1",
                "severityScores": {},
                "rules": [{"id": "a", "description": "d", "match": {"tactics": ["x"]}, "adjust": 1, "typo": 1}],
            },
            "typo",
        ),
    ],
)
def test_rules_file_is_validated_with_a_clear_error(tmp_path, broken, words):
    f = tmp_path / "rules.json"
    f.write_text(json.dumps(broken))
    with pytest.raises(ConfigurationError) as exc:
        ScoringRules.load(f)
    assert "SCORING_RULES_FILE" in str(exc.value) and words in str(exc.value)


def test_missing_rules_file_is_named(tmp_path):
    with pytest.raises(ConfigurationError, match="not found"):
        ScoringRules.load(tmp_path / "nope.json")
