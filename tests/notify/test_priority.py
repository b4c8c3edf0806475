"""POST /api/incidents/{id}/priority and /ack (docs/spec/triage.md, docs/spec/operator-api.md): evidenced, notified, calls stopped, containment kept."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.notify.conftest import CONTOSO_EMAILS, CONTOSO_EMERGENCY_EMAILS

ANA = "ana@soc.example"


def change(app, incident_id, priority, reason="re-triaged", actor=ANA):
    return app.post(f"/api/incidents/{incident_id}/priority", {"actor": actor, "priority": priority, "reason": reason})


def test_lowering_p1_stops_pending_calls_keeps_containment_and_tells_everyone(notify_app):
    app = notify_app
    start = app.durable.now
    incident_id, nic = app.defender_vm_incident()
    actions_before = app.incident(incident_id)["actions"]
    quarantined = app.fake.get_resource(nic)["properties"].get("networkSecurityGroup")
    assert quarantined, "containment attached the quarantine NSG"
    app.fake.clear_log()
    app.durable.advance_to(start + timedelta(minutes=16))
    assert len(app.call_times()) == 2

    r = change(app, incident_id, "P2", "benign miner test by the partner's red team")
    assert r.status == 200, r.text
    body = r.json()
    assert (body["priority"], body["previousPriority"], body["changed"]) == ("P2", "P1", True)
    assert body["escalation"] == "signalled" and "never releases" in body["containment"]
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Completed" and status["output"]["outcome"] == "stopped"
    assert app.durable.pending_timers(f"escalation-{incident_id}") == []
    app.durable.advance(timedelta(hours=4))
    assert len(app.call_times()) == 2

    doc = app.incident(incident_id)
    assert doc["priority"] == "P2" and doc["actions"] == actions_before  # nothing released
    assert not [w for w in app.fake.writes() if w.api == "arm"]
    changed = next(e for e in doc["timeline"] if e["eventType"] == "priority.changed" and e["actor"] == ANA)
    assert changed["actorType"] == "analyst" and changed["data"]["reason"].startswith("benign miner")
    assert "containment.kept" in [e["eventType"] for e in doc["timeline"]]
    [mail] = app.mails("Priority changed P1 → P2")
    # whoever heard about the P1 hears that it was lowered (emergency contacts included)
    assert set(CONTOSO_EMAILS + CONTOSO_EMERGENCY_EMAILS) <= set(mail.to)
    assert "never releases contained resources" in mail.body_content
    assert app.fake.get_resource(nic)["properties"].get("networkSecurityGroup") == quarantined


def test_raising_to_p1_runs_the_p1_runbook_again_and_phones(notify_app):
    app = notify_app
    incident_id = app.ingest(5)
    assert app.fake.calls() == [] and app.escalation(incident_id) is None
    r = change(app, incident_id, "P1", "lateral movement seen from this device")
    assert r.status == 200 and r.json()["runbook"] == f"runbook-{incident_id}-2"
    assert r.json()["runbookEpoch"] == 2
    assert app.durable.status(f"runbook-{incident_id}-2")["runtimeStatus"] == "Completed"
    [mail] = app.mails("Priority changed P3 → P1")  # one email: the runbook's, with its actions
    assert "lateral movement seen from this device" in mail.body_content
    assert set(CONTOSO_EMERGENCY_EMAILS) <= set(mail.to)
    assert app.escalation(incident_id)["runtimeStatus"] == "Running"
    assert len(app.fake.calls()) == 2
    types = app.timeline(incident_id)
    assert "runbook.requested" in types and types.count("notification.planned") == 2


def test_after_an_ack_no_call_unless_raised_to_p1_again(notify_app):
    app = notify_app
    start = app.durable.now
    incident_id = app.ingest(10)
    assert app.post(f"/api/incidents/{incident_id}/ack", {"actor": ANA}).status == 200
    app.durable.advance_to(start + timedelta(hours=2))
    assert len(app.call_times()) == 1
    assert change(app, incident_id, "P2").status == 200
    assert change(app, incident_id, "P1", "new evidence of exfiltration").status == 200
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Running" and status["input"]["requestKey"] == "runbook-e2"
    app.durable.advance(timedelta(minutes=16))
    assert len(app.call_times()) == 3  # the first escalation's one call, then the new one's two
    assert app.post(f"/api/incidents/{incident_id}/ack", {"actor": "bob@soc.example"}).status == 200
    assert app.escalation(incident_id)["output"]["outcome"] == "acknowledged"
    doc = app.incident(incident_id)
    assert doc["acknowledgedBy"] == ANA  # the first acknowledgement stays on record; both are in the timeline
    assert [e["actor"] for e in doc["timeline"] if e["eventType"] == "incident.acknowledged"] == [
        ANA,
        "bob@soc.example",
    ]


def test_same_priority_is_evidenced_and_changes_nothing(notify_app):
    app = notify_app
    incident_id = app.ingest(8)
    mails = len(app.fake.sent_mail())
    r = change(app, incident_id, "p2")
    assert r.status == 200 and r.json()["changed"] is False
    assert len(app.fake.sent_mail()) == mails
    assert app.timeline(incident_id)[-1] == "priority.unchanged"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"priority": "P2", "reason": "r"}, "actor"),
        ({"actor": "", "priority": "P2", "reason": "r"}, "actor"),
        ({"actor": "a\nb", "priority": "P2", "reason": "r"}, "actor"),
        ({"actor": ANA, "priority": "P5", "reason": "r"}, "priority"),
        ({"actor": ANA, "priority": 1, "reason": "r"}, "priority"),
        ({"actor": ANA, "priority": "P2"}, "reason"),
        ({"actor": ANA, "priority": "P2", "reason": "x" * 2001}, "reason"),
        (["P2"], "body"),
    ],
)
def test_priority_bad_bodies_get_400_naming_the_field(notify_app, body, field):
    app = notify_app
    incident_id = app.ingest(8)
    r = app.post(f"/api/incidents/{incident_id}/priority", body)
    assert r.status == 400, r.text
    assert r.json()["details"][0]["field"] == field
    assert app.incident(incident_id)["priority"] == "P2"


def test_unknown_incident_is_404_and_wrong_content_type_415(notify_app):
    app = notify_app
    for route, body in (
        ("priority", {"actor": ANA, "priority": "P1", "reason": "r"}),
        ("ack", {"actor": ANA}),
        ("call", {"actor": ANA, "reason": "r"}),
    ):
        r = app.post(f"/api/incidents/INC-20990101-000000000000/{route}", body)
        assert r.status == 404, (route, r.text)
    r = app.post("/api/incidents/INC-20990101-000000000000/ack", "actor=ana", headers={"Content-Type": "text/plain"})
    assert r.status == 415


def test_ack_validation_and_repeat(notify_app):
    app = notify_app
    incident_id = app.ingest(8)
    r = app.post(f"/api/incidents/{incident_id}/ack", {"note": "no actor"})
    assert r.status == 400 and r.json()["details"][0]["field"] == "actor"
    r = app.post(f"/api/incidents/{incident_id}/ack", {"actor": ANA, "note": 5})
    assert r.status == 400 and r.json()["details"][0]["field"] == "note"
    first = app.post(f"/api/incidents/{incident_id}/ack", {"actor": ANA}).json()
    again = app.post(f"/api/incidents/{incident_id}/ack", {"actor": "bob@soc.example"}).json()
    assert first["firstAcknowledgement"] is True and again["firstAcknowledgement"] is False
    assert again["acknowledgedBy"] == ANA and again["acknowledgedAt"] == first["acknowledgedAt"]
    assert first["escalation"] == "not running"
