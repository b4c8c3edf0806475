"""Triage (docs/spec/triage.md): score 1–10 from the payload and the rules file, then P1–P4.

Pure: a function of the alert, the partner and the rules. The rules live in
``SCORING_RULES_FILE`` (default ``config/scoring-rules.json``, documented in
docs/scoring.md); every decision lists the rules that fired.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.models import Alert, EntityKind, Priority, RuleHit, TriageDecision
from shared.partners import Partner, load_json_model
from shared.source_judgement import why_test

# The source's judgement (docs/spec/triage.md): P1 needs a source severity of High or above, an explicit
# score or a named P1 detection; below that a tactic or keyword alone stops at P2.
P1_SEVERITIES = frozenset({"High", "Critical"})
BELOW_HIGH_MAX_SCORE = 8
TEST_ALERT_MAX_SCORE = 3


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleMatch(_Config):
    """Conditions of a rule; every condition given must hold (each list: any of its items)."""

    alertTypes: list[str] = Field(default_factory=list, description="globs on the alert type, case-insensitive")
    titleContains: list[str] = Field(default_factory=list)
    tactics: list[str] = Field(default_factory=list)
    entityKinds: list[EntityKind] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    severities: list[str] = Field(default_factory=list)
    assetCriticality: list[Literal["low", "medium", "high", "critical"]] = Field(default_factory=list)
    # issue 13: MITRE technique ids (a parent id matches its sub-techniques: T1003 ⊇ T1003.001) and product
    # names (the alert's product, or a Sentinel incident's alert product names), case-insensitive.
    techniques: list[str] = Field(default_factory=list)
    products: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> RuleMatch:
        if not any(getattr(self, f) for f in type(self).model_fields):
            raise ValueError("a rule must have at least one condition")
        return self


class ScoringRule(_Config):
    id: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = Field(min_length=1)
    match: RuleMatch
    adjust: int = Field(0, ge=-9, le=9)
    floor: int | None = Field(None, ge=1, le=10)
    ceiling: int | None = Field(None, ge=1, le=10)
    # issue 13: a named P1 detection (credential theft or dumping, ransomware, crypto-mining, exfiltration by
    # a compromised host or account): the only thing besides the source's own High+ severity or an explicit
    # score that may take a Low / Informational alert to P1 (docs/spec/triage.md).
    namedP1: bool = False

    @model_validator(mode="after")
    def _has_effect(self) -> ScoringRule:
        if not self.adjust and self.floor is None and self.ceiling is None:
            raise ValueError(f"rule {self.id!r} has no effect: give adjust, floor or ceiling")
        if self.floor is not None and self.ceiling is not None and self.floor > self.ceiling:
            raise ValueError(f"rule {self.id!r}: floor above ceiling")
        return self


class ScoringRules(_Config):
    """The rules file."""

    version: str = Field(min_length=1)
    description: str = ""
    severityScores: dict[Literal["Informational", "Low", "Medium", "High", "Critical"], int]
    defaultScore: int = Field(5, ge=1, le=10)
    rules: list[ScoringRule] = Field(default_factory=list)
    # issue 13: the alert catalogue whose derived rules follow this file's (path relative to this file);
    # read by shared.triage.catalogue.load_rules (ScoringRules.load reads this file alone).
    catalogue: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ScoringRules:
        for sev, score in self.severityScores.items():
            if not 1 <= score <= 10:
                raise ValueError(f"severityScores.{sev} must be 1–10")
        ids = [r.id for r in self.rules]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"duplicate rule ids: {', '.join(sorted(dupes))}")
        return self

    @classmethod
    def load(cls, path: str | Path) -> ScoringRules:
        """Load and validate; ConfigurationError names the file and field."""
        return load_json_model(path, cls, "SCORING_RULES_FILE")


def _criticalities(alert: Alert, partner: Partner | None) -> set[str]:
    if partner is None:
        return set()
    ids = [*alert.resource_ids, *(e.azure_resource_id for e in alert.entities if e.azure_resource_id)]
    return {c for c in (partner.criticality_of(r) for r in ids) if c}


def _matches(m: RuleMatch, alert: Alert, crit: set[str]) -> bool:
    if m.alertTypes:
        types = [t.strip().lower() for t in (alert.alert_type or "").split(",") if t.strip()]
        if not any(fnmatch.fnmatchcase(t, g.lower()) for t in types for g in m.alertTypes):
            return False
    if m.titleContains:
        title = alert.title.lower()
        if not any(s.lower() in title for s in m.titleContains):
            return False
    if m.tactics:
        have = {t.lower() for t in alert.tactics}
        if not have & {t.lower() for t in m.tactics}:
            return False
    if m.entityKinds and not {e.kind for e in alert.entities} & set(m.entityKinds):
        return False
    if m.sources and alert.source not in m.sources:
        return False
    if m.severities and (alert.severity or "") not in m.severities:
        return False
    if m.techniques:
        have_t = [t.strip().upper() for t in alert.techniques if t]
        want = [t.strip().upper() for t in m.techniques]
        if not any(h == w or h.startswith(w + ".") for h in have_t for w in want):
            return False
    if m.products:
        products = {alert.product or "", *alert.extended_properties.get("alertProductNames", "").split(",")}
        have_p = {p.strip().lower() for p in products if p.strip()}
        if not have_p & {p.lower() for p in m.products}:
            return False
    return not m.assetCriticality or bool(crit & set(m.assetCriticality))


def _clamp(score: int) -> int:
    return max(1, min(10, score))


def score_alert(alert: Alert, rules: ScoringRules, partner: Partner | None = None) -> TriageDecision:
    """Score an alert and map it to a priority, recording every rule that fired."""
    if alert.explicit_score is not None:
        score = _clamp(alert.explicit_score)
        hits = [
            RuleHit(
                rule_id="explicit-score",
                description="score given by the sender",
                effect=f"score {score}",
                score_after=score,
            )
        ]
        return _decide(alert, score, hits, rules)
    if alert.severity and alert.severity in rules.severityScores:
        score = rules.severityScores[alert.severity]
        hits = [
            RuleHit(
                rule_id="severity-base",
                description=f"source severity {alert.severity}",
                effect=f"base {score}",
                score_after=score,
            )
        ]
    else:
        score = rules.defaultScore
        hits = [
            RuleHit(
                rule_id="default-base",
                description="no usable source severity",
                effect=f"base {score}",
                score_after=score,
            )
        ]
    crit = _criticalities(alert, partner)
    named_p1 = False
    for rule in rules.rules:
        if not _matches(rule.match, alert, crit):
            continue
        before = score
        effects = []
        if rule.adjust:
            score = _clamp(score + rule.adjust)
            effects.append(f"{rule.adjust:+d}")
        if rule.floor is not None:
            effects.append(f"floor {rule.floor}")
            score = max(score, rule.floor)
        if rule.ceiling is not None:
            effects.append(f"ceiling {rule.ceiling}")
            score = min(score, rule.ceiling)
        effect = ", ".join(effects) + ("" if score != before else " (already met)")
        hits.append(RuleHit(rule_id=rule.id, description=rule.description, effect=effect, score_after=score))
        named_p1 = named_p1 or (rule.namedP1 and score >= 9)
    if score >= 9 and alert.severity not in P1_SEVERITIES and not named_p1:
        # A tactic or keyword alone never makes an alert the source rated below High P1.
        score = BELOW_HIGH_MAX_SCORE
        hits.append(
            RuleHit(
                rule_id="source-severity",
                description=f"source severity {alert.severity or 'not given'}: P1 needs a named P1 detection",
                effect=f"ceiling {score}",
                score_after=score,
            )
        )
    return _decide(alert, score, hits, rules)


def _decide(alert: Alert, score: int, hits: list[RuleHit], rules: ScoringRules) -> TriageDecision:
    """The decision, with the one judgement no rule overrides: a test or sample alert is P4."""
    reason = why_test(alert)
    if reason:
        effect = f"ceiling {TEST_ALERT_MAX_SCORE}" + ("" if score > TEST_ALERT_MAX_SCORE else " (already met)")
        score = min(score, TEST_ALERT_MAX_SCORE)
        hits = [*hits, RuleHit(rule_id="test-alert", description=reason, effect=effect, score_after=score)]
    return TriageDecision(
        score=score, priority=Priority.from_score(score), rules_fired=hits, rules_version=rules.version
    )
