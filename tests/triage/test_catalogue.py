"""The alert catalogue, the rules derived from it, the source's judgement and the coverage report (issue 13)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import ConfigurationError
from shared.models import Alert, Priority
from shared.scoring import ScoringRules, score_alert
from shared.triage import coverage
from shared.triage.catalogue import AlertCatalogue, load_rules

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "config/scoring-rules.json"
RULES = load_rules(RULES_FILE)
CATALOGUE = AlertCatalogue.load(ROOT / "config/alert-catalogue.json")
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def alert(**kw) -> Alert:
    base = {"source": "defender", "source_id": "x", "dedupe_keys": ["k"], "title": "t", "observed_at": NOW}
    return Alert(**{**base, **kw})


# The examples of docs/spec/triage.md, as the sources send them.
SPEC_EXAMPLES = [
    ("credentials", alert(alert_type="VM_CredentialDumping", severity="High", tactics=["CredentialAccess"]), "P1"),
    ("leaked credentials", alert(source="log-analytics", title="Leaked credentials", severity="High"), "P1"),
    ("crypto-mining", alert(alert_type="K8S_CryptoCoinMinerArtifacts", severity="High"), "P1"),
    ("ransomware", alert(title="Ransomware behavior detected in the file system", severity="High"), "P1"),
    ("exfiltration by a compromised host", alert(alert_type="VM_DataEgressArtifacts", severity="Medium"), "P1"),
    ("brute force", alert(alert_type="VM_SshBruteForceFailed", severity="Medium", tactics=["PreAttack"]), "P2"),
    ("new-country sign-in", alert(source="log-analytics", title="Atypical travel", severity="Medium"), "P2"),
    ("Key Vault spike", alert(alert_type="KV_OperationVolumeAnomaly", severity="Medium"), "P2"),
    ("policy violation", alert(alert_type="VM_AmRealtimeProtectionDisabled", severity="Medium"), "P3"),
    ("misconfiguration", alert(alert_type="K8S_ExposedDashboard", severity="High"), "P3"),
    (
        "exposed storage",
        alert(alert_type="Storage.Blob_OpenContainersScanning.SuccessfulDiscovery", severity="Informational"),
        "P3",
    ),
    ("informational", alert(alert_type="AppServices_Nmap", severity="Informational"), "P4"),
]


@pytest.mark.parametrize("what, a, priority", SPEC_EXAMPLES, ids=[x[0] for x in SPEC_EXAMPLES])
def test_spec_examples(what, a, priority):
    d = score_alert(a, RULES)
    assert d.priority.value == priority, (what, [h.rule_id for h in d.rules_fired])


def _family_of_sources(source: str) -> str:
    """One source per published page; grouped as the issue names them (Defender for Cloud, Defender XDR kinds)."""
    if source.startswith(("defender-for-cloud-apps", "defender-for-identity")):
        return "defender-xdr"
    return "defender-for-cloud" if source.startswith("defender-for-cloud") else source


def test_coverage_maps_every_entry_to_its_family_priority():
    rows = coverage.coverage(CATALOGUE, RULES)
    assert len(rows) == len(CATALOGUE.entries) >= 100
    assert [r.entry.alertType or r.entry.title for r in rows if r.mismatch] == []
    counts = coverage.per_priority(rows)
    assert all(counts[p] > 0 for p in ("P1", "P2", "P3", "P4"))
    plans = {(_family_of_sources(e.source), e.plan) for e in CATALOGUE.entries}
    for plan in ("servers", "containers", "storage", "sql", "key-vault", "resource-manager", "dns", "app-service"):
        assert ("defender-for-cloud", plan) in plans
    for plan in ("dlp", "office-365", "endpoint", "identity", "cloud-apps"):
        assert ("defender-xdr", plan) in plans


def test_coverage_cli_prints_every_entry_and_the_totals(capsys):
    assert coverage.main(["--rules", str(RULES_FILE)]) == 0
    out = capsys.readouterr().out
    assert "VM_CredentialDumping" in out and "catalogue-credential-theft" in out
    assert f"{len(CATALOGUE.entries)} catalogue entries: P1 " in out


# Rule families: one alert per family, scored with the derived rules only where the family decides.
@pytest.mark.parametrize(
    "family, a, priority, rule",
    [
        (
            "credential-theft",
            alert(alert_type="ARM_MicroBurst.AZStorageKeysREST", severity="Low"),
            "P1",
            "catalogue-credential-theft",
        ),
        (
            "ransomware",
            alert(title="Suspicious Volume Shadow Copy Activity", severity="Medium"),
            "P1",
            "catalogue-ransomware-name",
        ),
        (
            "crypto-mining",
            alert(title="'CoinMiner' malware was detected", severity="Medium"),
            "P1",
            "catalogue-crypto-mining-name",
        ),
        (
            "compromised-exfiltration",
            alert(source="log-analytics", title="Suspicious inbox forwarding", severity="Medium"),
            "P1",
            "catalogue-compromised-exfiltration-name",
        ),
        ("malware", alert(alert_type="Storage.Blob_AM.MalwareFound", severity="Medium"), "P2", "catalogue-malware"),
        ("brute-force", alert(title="Password spray", severity="High"), "P2", "catalogue-brute-force-name"),
        (
            "new-country-sign-in",
            alert(alert_type="SQL.DB_GeoAnomaly", severity="Medium"),
            "P2",
            "catalogue-new-country-sign-in",
        ),
        ("key-vault-spike", alert(alert_type="KV_TORAccess", severity="High"), "P2", "catalogue-key-vault-spike"),
        (
            "data-handling",
            alert(product="Microsoft Data Loss Prevention", severity="High", tactics=["Exfiltration"]),
            "P3",
            "catalogue-data-handling-product",
        ),
        (
            "policy-violation",
            alert(alert_type="AppServices_DanglingDomain", severity="High"),
            "P3",
            "catalogue-policy-violation",
        ),
        (
            "informational",
            alert(alert_type="AppServices_WpScanner", severity="Medium"),
            "P4",
            "catalogue-informational",
        ),
        ("technique", alert(severity="High", techniques=["T1003.001"]), "P1", "catalogue-credential-theft-technique"),
    ],
)
def test_rule_families(family, a, priority, rule):
    d = score_alert(a, RULES)
    assert d.priority.value == priority and rule in [h.rule_id for h in d.rules_fired], family


def test_exfiltration_tactic_alone_needs_high_severity():
    for severity, priority in (("Low", "P2"), ("Medium", "P2"), ("High", "P1")):
        d = score_alert(alert(severity=severity, tactics=["Exfiltration"]), RULES)
        assert d.priority.value == priority, severity
    low = score_alert(alert(severity="Low", tactics=["Exfiltration"]), RULES)
    assert low.rules_fired[-1].rule_id == "source-severity"


def test_explicit_score_still_gives_p1():
    assert score_alert(alert(severity="Low", explicit_score=9), RULES).priority == Priority.P1


@pytest.mark.parametrize(
    "kw",
    [
        {"title": "[SAMPLE ALERT] Suspicious process executed", "severity": "High", "alert_type": "VM_SuspectProcess"},
        {"title": "Antimalware test alert (not a threat)", "severity": "High"},
        {"title": "EICAR_Test_File malware was prevented", "severity": "Medium"},
        {"title": "x", "severity": "High", "extended_properties": {"IsSample": "true"}},
    ],
)
def test_test_alerts_are_p4_whatever_the_rules_say(kw):
    d = score_alert(alert(**kw, tactics=["Impact"]), RULES)
    assert d.priority == Priority.P4 and d.rules_fired[-1].rule_id == "test-alert"


_NAMED = {r.id for r in RULES.rules if r.namedP1}
_words = st.sampled_from(
    ["exfiltration", "ransomware", "credential", "mining", "brute force", "dlp", "suspicious", "impact", "x"]
)
_tactics = st.lists(
    st.sampled_from(["Exfiltration", "Impact", "CredentialAccess", "InitialAccess", "PreAttack", "Collection"]),
    max_size=4,
)
_types = st.sampled_from(
    [
        None,
        "VM_SuspectProcess",
        "Storage.Blob_DataExfiltration.AmountOfDataAnomaly",
        "AzureDNS_DataExfiltration",
        "VM_CurrencyMining",
        "VM_CredentialDumping",
        "KV_OperationVolume",
        "SomethingNew_Exfiltration",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    severity=st.sampled_from(["Low", "Informational"]),
    words=st.lists(_words, max_size=3),
    tactics=_tactics,
    alert_type=_types,
    techniques=st.lists(st.sampled_from(["T1041", "T1048", "T1567", "T1003", "T1486", "T1496"]), max_size=2),
)
def test_no_low_alert_becomes_p1_without_a_named_p1_detection(severity, words, tactics, alert_type, techniques):
    a = alert(
        severity=severity, title=" ".join(words) or "t", tactics=tactics, alert_type=alert_type, techniques=techniques
    )
    d = score_alert(a, RULES)
    if d.priority == Priority.P1:
        assert _NAMED & {h.rule_id for h in d.rules_fired}, d.rules_fired


def test_catalogue_errors_name_the_field(tmp_path):
    raw = json.loads((ROOT / "config/alert-catalogue.json").read_text())
    raw["entries"][0]["family"] = "nonsense"
    (tmp_path / "alert-catalogue.json").write_text(json.dumps(raw))
    rules = json.loads(RULES_FILE.read_text())
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    with pytest.raises(ConfigurationError, match="entries"):
        load_rules(tmp_path / "rules.json")


def test_rules_file_without_catalogue_still_loads_as_documented(tmp_path):
    rules = json.loads(RULES_FILE.read_text())
    rules.pop("catalogue")
    (tmp_path / "rules.json").write_text(json.dumps(rules))
    loaded = load_rules(tmp_path / "rules.json")
    assert loaded.version == rules["version"] and not [r for r in loaded.rules if r.id.startswith("catalogue-")]
    assert ScoringRules.load(RULES_FILE).catalogue == "alert-catalogue.json"


def test_every_checked_entry_names_the_published_page_and_date():
    sources = {s.id: s for s in CATALOGUE.sources}
    checked = [e for e in CATALOGUE.entries if e.checked]
    assert len(checked) >= 200
    for e in checked:
        page = sources[e.source]
        assert page.retrieved and page.published and page.url.startswith("https://learn.microsoft.com/"), e.source
    plans = {e.plan for e in checked}
    assert {
        "servers",
        "containers",
        "storage",
        "sql",
        "key-vault",
        "dns",
        "app-service",
        "cosmos-db",
        "network",
    } <= plans
    assert {"sign-in-risk", "user-risk"} <= plans


@pytest.mark.parametrize(
    "alert_type, priority",
    [
        ("K8S_PrivilegedContainer", "P3"),  # privileged container: a misconfiguration
        ("K8S_MaliciousContainerImage", "P1"),  # crypto-mining container
        ("K8S.NODE_CryptoCoinMinerExecution", "P1"),
        ("K8S_ExposedDashboard", "P3"),
        ("KV_UserAnomaly", "P2"),  # unusual access to a key vault
        ("KV_PutGetAnomaly", "P2"),  # suspicious policy change and secret query
        ("Storage.Blob_AM.MalwareFound", "P2"),  # malware uploaded
        ("Storage.Blob_AnonymousAccessAnomaly", "P3"),  # anonymous access: exposed storage
        ("K8S.NODE_KnownLinuxCredentialAccessTool", "P1"),
        ("AppServices_DataEgressArtifacts", "P1"),
    ],
)
def test_alerts_a_soc_expects_are_in_the_catalogue_at_their_published_severity(alert_type, priority):
    [entry] = [e for e in CATALOGUE.entries if e.alertType == alert_type]
    assert entry.checked
    d = score_alert(alert(alert_type=alert_type, severity=entry.severity, tactics=entry.tactics), RULES)
    assert d.priority.value == priority, (alert_type, [h.rule_id for h in d.rules_fired])
