"""Issue 14, item 5: maintenance windows — matching alerts are recorded and start nothing; windows end by
themselves; creation and expiry are evidenced."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.fixtures.app import sample

GENERIC = "/api/alerts"
APPROVER = "duty.manager@soc.example"


def _until(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _alert(alert_id: str, host: str = "fw-patch-01", ip: str = "10.20.30.44", score: int = 9) -> dict:
    body = sample("generic-alert.json")
    body.update(id=alert_id, score=score, title=f"Patch-night detection {alert_id}")
    body["entities"] = [{"kind": "networkDevice", "name": host}, {"kind": "ip", "address": ip}]
    return body


def _window(app, **fields):
    body = {"actor": APPROVER, "reason": "patch night", "until": _until(3600), **fields}
    return app.post("/api/partners/contoso/suppressions", body)


def test_a_matching_alert_is_recorded_and_starts_nothing(app):
    r = _window(app, hosts=["FW-PATCH-01"], sourceIps=["10.20.30.0/24"])
    assert r.status == 200, r.text
    window = r.json()
    assert window["id"].startswith("sup-") and window["status"] == "active"
    created = app.store.list_events("soc-suppressions-contoso")
    assert [e.event_type for e in created] == ["suppression.created"] and created[0].actor == APPROVER

    hit = app.post(GENERIC, _alert("patch-1")).json()
    assert hit["status"] == "resolved" and hit["outcome"] == "created"
    timeline = app.timeline(hit["incidentId"])
    assert "incident.recorded-only" in timeline
    recorded = next(e for e in app.store.list_events(hit["incidentId"]) if e.event_type == "incident.recorded-only")
    assert recorded.data["suppressed"] is True and recorded.data["suppression"]["id"] == window["id"]
    assert not [i for i in app.durable.instance_ids() if i.startswith("runbook-")]  # no runbook, email or call

    # Another host, or an address outside the range: not covered (every filter given must match).
    other_host = app.post(GENERIC, _alert("patch-2", host="fw-prod-02")).json()
    other_ip = app.post(GENERIC, _alert("patch-3", ip="192.0.2.9")).json()
    assert other_host["status"] == other_ip["status"] == "open"
    assert len([i for i in app.durable.instance_ids() if i.startswith("runbook-")]) == 2


def test_an_expired_window_suppresses_nothing_and_its_expiry_is_evidenced(app):
    r = _window(app, hosts=["fw-patch-01"], until=_until(1.5))
    assert r.status == 200, r.text
    assert app.post(GENERIC, _alert("during")).json()["status"] == "resolved"
    time.sleep(2.0)
    after = app.post(GENERIC, _alert("after")).json()
    assert after["status"] == "open" and after["outcome"] == "created"
    assert app.durable.instance_ids() and any(
        i.startswith(f"runbook-{after['incidentId']}") for i in app.durable.instance_ids()
    )

    app.runtime.timer("suppression_expiry")
    app.runtime.timer("suppression_expiry")  # the mark is written once: a second sweep evidences nothing
    types = [e.event_type for e in app.store.list_events("soc-suppressions-contoso")]
    assert types == ["suppression.created", "suppression.expired"]
    assert app.get("/api/incidents/INC-none").status == 404


def test_a_window_needs_a_bounded_expiry_and_a_known_partner(app):
    for fields, field in [
        ({"until": None}, "until"),
        ({"until": "tomorrow"}, "until"),
        ({"until": "2026-12-03T06:00:00"}, "until"),  # no offset
        ({"until": _until(-60)}, "until"),
        ({"until": _until(31 * 86400)}, "until"),
        ({"reason": ""}, "reason"),
        ({"sourceIps": ["not-an-ip"]}, "sourceIps"),
    ]:
        r = _window(app, **fields)
        assert r.status == 400, (fields, r.text)
        assert field in [d["field"] for d in r.json()["details"]], r.text
    assert app.store.list_events("soc-suppressions-contoso") == []
    assert _window(app).status == 200  # no filter: every alert of the partner, until the window ends
    assert (
        app.post("/api/partners/nobody/suppressions", {"actor": APPROVER, "reason": "x", "until": _until(60)}).status
        == 404
    )
