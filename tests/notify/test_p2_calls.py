"""P2 phone calls: only on request (POST /api/incidents/{id}/call) or by the configured rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.notify.conftest import CONTOSO_PHONES

ANA = "ana@soc.example"


def test_call_request_starts_the_escalation_for_a_p2(notify_app):
    app = notify_app
    start = app.durable.now
    incident_id = app.ingest(8)
    assert app.fake.calls() == []
    r = app.post(f"/api/incidents/{incident_id}/call", {"actor": ANA, "reason": "partner not reading email"})
    assert r.status == 202, r.text
    assert r.json() == {
        "incidentId": incident_id,
        "priority": "P2",
        "escalation": "started",
        "instanceId": f"escalation-{incident_id}",
    }
    assert sorted(c.targets[0] for c in app.fake.calls()) == sorted(CONTOSO_PHONES)
    again = app.post(f"/api/incidents/{incident_id}/call", {"actor": ANA, "reason": "again"})
    assert again.status == 200 and again.json()["escalation"] == "already-running"
    app.durable.advance_to(start + timedelta(minutes=30))
    assert app.call_times() == [start, start + timedelta(minutes=15), start + timedelta(minutes=30)]
    started = next(e for e in app.incident(incident_id)["timeline"] if e["eventType"] == "escalation.started")
    assert started["actor"] == ANA and started["actorType"] == "analyst"
    assert "partner not reading email" in started["data"]["reason"]
    assert app.post(f"/api/incidents/{incident_id}/ack", {"actor": ANA}).status == 200
    assert app.escalation(incident_id)["output"]["outcome"] == "acknowledged"


def test_call_request_after_an_ack_calls_again(notify_app):
    app = notify_app
    incident_id = app.ingest(8)
    assert app.post(f"/api/incidents/{incident_id}/ack", {"actor": ANA}).status == 200
    r = app.post(f"/api/incidents/{incident_id}/call", {"actor": ANA, "reason": "need a voice now"})
    assert r.status == 202 and len(app.fake.calls()) == 2


@pytest.mark.parametrize("score", [5, 2])
def test_call_request_for_p3_or_p4_is_a_conflict(notify_app, score):
    app = notify_app
    incident_id = app.ingest(score)
    r = app.post(f"/api/incidents/{incident_id}/call", {"actor": ANA, "reason": "why not"})
    assert r.status == 409 and "raise its priority" in r.json()["error"]
    assert app.fake.calls() == []
    assert app.timeline(incident_id)[-1] == "escalation.refused"


@pytest.mark.parametrize(
    "body, field", [({"reason": "r"}, "actor"), ({"actor": ANA}, "reason"), ({"actor": ANA, "reason": ["r"]}, "reason")]
)
def test_call_request_bad_body(notify_app, body, field):
    app = notify_app
    incident_id = app.ingest(8)
    r = app.post(f"/api/incidents/{incident_id}/call", body)
    assert r.status == 400 and r.json()["details"][0]["field"] == field


def test_p2_call_rule_always_phones_by_itself(notify_app):
    app = notify_app
    app.configure(P2_CALL_RULE="always")
    incident_id = app.ingest(8)
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Running" and status["input"]["trigger"] == "p2-rule"
    assert len(app.fake.calls()) == 2


def test_p2_call_rule_never_by_default_and_on_a_raise_to_p2(notify_app):
    app = notify_app
    incident_id = app.ingest(5)
    app.configure(P2_CALL_RULE="always")
    r = app.post(f"/api/incidents/{incident_id}/priority", {"actor": ANA, "priority": "P2", "reason": "worse"})
    assert r.status == 200 and r.json()["escalation"] == "started"
    assert len(app.fake.calls()) == 2


@pytest.mark.parametrize(
    "local, expected",
    [
        (datetime(2026, 5, 4, 7, 59), "P2 call rule: received out of hours"),  # Monday before 08:00
        (datetime(2026, 5, 4, 8, 0), None),
        (datetime(2026, 5, 4, 17, 59), None),
        (datetime(2026, 5, 4, 18, 0), "P2 call rule: received out of hours"),
        (datetime(2026, 5, 9, 12, 0), "P2 call rule: received out of hours"),  # Saturday
    ],
)
def test_out_of_hours_rule_uses_the_partner_clock(make_incident, local, expected):
    from zoneinfo import ZoneInfo

    from shared.notify.service import NotificationService
    from shared.partners import PartnerRegistry
    from shared.settings import Settings
    from tests.fixtures.app import ROOT

    partners = PartnerRegistry.load(ROOT / "config/partners.json")
    received = local.replace(tzinfo=ZoneInfo("America/New_York")).astimezone(UTC)
    incident = make_incident(priority="P2", received=received).model_copy(update={"partner_id": "contoso"})
    service = NotificationService(None, partners, Settings(p2_call_rule="out-of-hours"))
    assert service.p2_call_reason(incident) == expected
    assert NotificationService(None, partners, Settings(p2_call_rule="never")).p2_call_reason(incident) is None
