"""Published payload shapes (tests/events/published/SOURCES.md): status, priority and entities (issue 13)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.intake import defender, log_analytics, sentinel
from shared.models import EntityKind
from shared.scoring import score_alert
from shared.source_judgement import judge
from shared.triage.catalogue import load_rules

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = Path(__file__).parent / "published"
RULES = load_rules(ROOT / "config/scoring-rules.json")
NOW = datetime(2026, 12, 1, tzinfo=UTC)
S = "11111111-2222-3333-4444-555555555555"


def load(name: str):
    return json.loads((PUBLISHED / name).read_text())


def parsed(name: str):
    if name.startswith("defender"):
        return defender.parse(load(name), NOW)
    if name.startswith("sentinel"):
        return sentinel.parse(load(name), NOW)
    return log_analytics.parse_alert_row(load(name), NOW)


# file → (priority, closed at source, test, entity kinds that must be present)
EXPECTED = {
    "defender-rest-get-websrv.json": ("P1", False, False, {"azureResource", "ip"}),
    "defender-connector-aks-miner.json": ("P1", False, False, {"azureResource", "process", "file"}),
    "defender-arm-extended-properties-only.json": ("P3", False, False, {"host", "account"}),
    "defender-sample-alert.json": ("P4", False, True, {"host"}),
    "defender-eicar-test-alert.json": ("P4", False, True, {"host"}),
    "defender-dismissed.json": ("P2", True, False, {"host"}),
    "sentinel-closed-false-positive.json": ("P2", True, False, {"account"}),
    "sentinel-dlp-low-exfiltration.json": ("P3", False, False, {"account", "mailbox"}),
    "sentinel-entities-every-kind.json": (
        "P1",
        False,
        False,
        {
            "account",
            "host",
            "ip",
            "azureResource",
            "cloudApplication",
            "mailbox",
            "file",
            "process",
            "url",
            "dns",
            "registry",
            "other",
        },
    ),
    "loganalytics-identity-protection-atypical-travel.json": ("P2", False, False, {"account", "ip"}),
}


def test_every_published_file_is_listed_and_sourced():
    files = {p.name for p in PUBLISHED.glob("*.json")}
    assert files == set(EXPECTED)
    sources = (PUBLISHED / "SOURCES.md").read_text()
    assert all(f"`{name}`" in sources for name in files)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_published_payload_priority_lifecycle_and_entities(name):
    priority, closed, test, kinds = EXPECTED[name]
    alert = parsed(name)
    decision = score_alert(alert, RULES)
    verdict = judge(alert)
    assert decision.priority.value == priority, [h.rule_id for h in decision.rules_fired]
    assert (verdict.closed, verdict.test) == (closed, test)
    assert kinds <= {e.kind.value for e in alert.entities}, [e.wire() for e in alert.entities]


def test_non_vm_resource_is_an_azure_resource_never_a_host():
    alert = parsed("defender-rest-get-websrv.json")
    resource = next(e for e in alert.entities if e.kind == EntityKind.AZURE_RESOURCE)
    assert resource.azure_resource_id.endswith("/Microsoft.Compute/WebSrv1")
    assert not [e for e in alert.entities if e.kind == EntityKind.HOST]  # WebSrv1 is that resource


def test_extended_properties_give_host_and_account_and_resource_id_is_read():
    alert = parsed("defender-arm-extended-properties-only.json")
    hosts = [e for e in alert.entities if e.kind == EntityKind.HOST]
    assert len(hosts) == 1 and hosts[0].azure_resource_id.endswith("/virtualMachines/vm-app-02")
    assert [e.name for e in alert.entities if e.kind == EntityKind.ACCOUNT] == ["svc-backup"]
    assert alert.subscription_ids == [S]


def test_nested_ref_entities_are_read_once():
    alert = parsed("defender-connector-aks-miner.json")
    assert [e.name for e in alert.entities if e.kind == EntityKind.FILE] == ["xmrig"]
    assert [e.kind for e in alert.entities].count(EntityKind.AZURE_RESOURCE) == 1


def test_low_dlp_exfiltration_is_a_data_handling_finding():
    decision = score_alert(parsed("sentinel-dlp-low-exfiltration.json"), RULES)
    fired = [h.rule_id for h in decision.rules_fired]
    assert decision.priority.value == "P3" and "catalogue-data-handling-product" in fired


@pytest.mark.parametrize(
    "name, status",
    [
        ("defender-dismissed.json", "closed"),
        ("defender-sample-alert.json", "resolved"),
        ("defender-eicar-test-alert.json", "resolved"),
        ("sentinel-closed-false-positive.json", "closed"),
        ("defender-rest-get-websrv.json", "open"),
    ],
)
def test_ingest_records_and_starts_nothing_for_closed_and_test(app, name, status):
    route = "/api/alerts/defender" if name.startswith("defender") else "/api/incidents/sentinel"
    r = app.post(route, load(name))
    assert r.status == 202, r.text
    body = r.json()
    assert body["status"] == status
    timeline = app.timeline(body["incidentId"])
    if status == "open":
        assert "incident.recorded-only" not in timeline
        return
    assert "incident.recorded-only" in timeline
    doc = app.get(f"/api/incidents/{body['incidentId']}").json()
    assert doc["extra"].get("test" if status == "resolved" else "closedAtSource") is True
    # nothing started: no runbook instance, so no containment and no notification
    assert not [i for i in app.durable.instance_ids() if body["incidentId"] in i]


def test_a_p1_with_nothing_containable_says_so_in_evidence_and_email(app):
    from tests.fixtures.app import APP_SETTINGS

    app.fake.add_mailbox(APP_SETTINGS["MAIL_SENDER"])
    r = app.post("/api/alerts/defender", load("defender-connector-aks-miner.json"))
    body = r.json()
    assert body["priority"] == "P1", body
    events = [e for e in app.store.list_events(body["incidentId"]) if e.event_type == "containment.none-possible"]
    assert len(events) == 1 and "aks-prod" in events[0].data["reason"]
    assert "containment.planned" not in app.timeline(body["incidentId"])
    mails = [m for m in app.fake.sent_mail() if "New security incident" in (m.subject or "")]
    assert mails, [m.subject for m in app.fake.sent_mail()]
    text = mails[0].body_content or ""
    assert text.index("Nothing could be contained automatically") < text.index("aks-prod", text.index("Nothing"))


def test_non_vm_resources_are_enriched_never_contained():
    from shared.enrichment import plan_queries
    from shared.ingest import open_incident

    alert = parsed("defender-connector-aks-miner.json")
    decision = score_alert(alert, RULES)
    incident = open_incident("INC-x", alert, decision, None, "UTC", NOW, NOW)
    plans = [p for p in plan_queries(incident, NOW) if p.kind == "resource-activity"]
    assert [p.entity for p in plans] == [alert.resource_ids[0]]
    # bound as a base64 literal, never string-built into the KQL (shared/enrichment.py)
    assert "let p_resource = base64_decode_tostring(" in plans[0].kql and "aks-prod" not in plans[0].kql


def test_defender_dismissing_the_alert_later_closes_ours_and_stops_calls(app):
    first = app.post("/api/alerts/defender", load("defender-rest-get-websrv.json")).json()
    assert (first["priority"], first["status"]) == ("P1", "open")
    escalation = f"escalation-{first['incidentId']}"
    assert app.durable.status(escalation)["runtimeStatus"] == "Running"
    dismissed = load("defender-rest-get-websrv.json")
    dismissed["properties"]["status"] = "Dismissed"
    body = app.post("/api/alerts/defender", dismissed).json()
    assert (body["incidentId"], body["outcome"], body["status"]) == (first["incidentId"], "closed", "closed")
    assert app.durable.status(escalation)["runtimeStatus"] == "Completed"
    assert app.timeline(first["incidentId"]).count("incident.closed-at-source") == 1


def test_one_alert_of_a_sentinel_incident_dismissed_in_defender_keeps_the_incident_open(app):
    from tests.fixtures.app import sample

    incident = sample("sentinel-incident-trigger.json")
    first = app.post("/api/incidents/sentinel", incident).json()
    inner = incident["object"]["properties"]["alerts"][0]["properties"]["systemAlertId"]
    dismissed = sample("defender-alert-connector.json")
    dismissed.update(SystemAlertId=inner, Status="Dismissed")
    body = app.post("/api/alerts/defender", dismissed).json()
    # Still open for business: its status is whatever the runbook made it (open, or held where the sample's
    # targets are not the partner's), never closed by one alert of several.
    assert (body["incidentId"], body["outcome"]) == (first["incidentId"], "duplicate")
    assert body["status"] in ("open", "held")
    timeline = app.timeline(first["incidentId"])
    assert "alert.closed-at-source" in timeline and "incident.closed-at-source" not in timeline
