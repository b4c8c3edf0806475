"""Issue 14, item 1: grouping decided by a conditional entity claim — concurrent first alerts for one
entity make one incident (real threads through the app harness, Azurite)."""

from __future__ import annotations

from collections import Counter

from tests.fixtures.app import sample

GENERIC = "/api/alerts"


def _alert(host: str, n: int, score: int = 5) -> dict:
    body = sample("generic-alert.json")
    body.update(id=f"storm-{host}-{n}", score=score, title=f"Storm detection {n} on {host}")
    body["entities"] = [{"kind": "networkDevice", "name": host}]
    return body


def _post_all(app, bodies: list[dict]) -> list:
    return app.post_together(GENERIC, bodies)


def test_concurrent_first_alerts_for_one_host_make_one_incident(app):
    results = _post_all(app, [_alert("fw-storm-01", n) for n in range(12)])
    assert [r.status for r in results] == [202] * 12, [r.text for r in results if r.status != 202]
    ids = {r.json()["incidentId"] for r in results}
    assert len(ids) == 1
    outcomes = Counter(r.json()["outcome"] for r in results)
    assert outcomes == {"created": 1, "grouped": 11}
    incident_id = ids.pop()
    doc = app.get(f"/api/incidents/{incident_id}").json()
    assert doc["alertCount"] == 12
    assert app.timeline(incident_id).count("alert.received") == 1
    assert app.timeline(incident_id).count("alert.grouped") == 11
    assert [i for i in app.durable.instance_ids() if i.startswith("runbook-")] == [f"runbook-{incident_id}-1"]
    assert app.get(f"/api/incidents/{incident_id}/verify").json()["valid"] is True


def test_concurrent_first_alerts_for_many_hosts_make_one_incident_each(app):
    hosts = [f"fw-storm-{h:02d}" for h in range(5)]
    results = _post_all(app, [_alert(host, n) for n in range(4) for host in hosts])
    assert {r.status for r in results} == {202}
    by_host: dict[str, set[str]] = {}
    for r in results:
        incident = app.store.get_incident(r.json()["incidentId"])[0]
        host = incident.entities[0].name
        by_host.setdefault(host, set()).add(incident.id)
    assert sorted(by_host) == hosts
    assert all(len(ids) == 1 for ids in by_host.values())
    assert len(list(app.store.iter_incidents())) == len(hosts)


def test_an_entity_claim_from_a_closed_window_does_not_capture_a_new_alert(app):
    first = app.post(GENERIC, _alert("fw-late", 0)).json()
    later = _alert("fw-late", 1)
    later["observedAt"] = "2026-11-21T21:04:55Z"  # 3 h later, window 60 min
    second = app.post(GENERIC, later).json()
    assert second["outcome"] == "created" and second["incidentId"] != first["incidentId"]


def test_concurrent_copies_of_a_joining_alert_join_once(app):
    """Copies of one alert for a known entity race for its claim: one joins, the others are duplicates of it —
    the alert is merged and evidenced once."""
    first = app.post(GENERIC, _alert("fw-copies", 0)).json()
    results = _post_all(app, [_alert("fw-copies", 1) for _ in range(8)])
    assert [r.status for r in results] == [202] * 8, [r.text for r in results if r.status != 202]
    assert {r.json()["incidentId"] for r in results} == {first["incidentId"]}
    assert Counter(r.json()["outcome"] for r in results) == {"grouped": 1, "duplicate": 7}
    doc = app.get(f"/api/incidents/{first['incidentId']}").json()
    assert doc["alertCount"] == 2 and len(doc["alerts"]) == 2
    assert app.timeline(first["incidentId"]).count("alert.grouped") == 1
    assert app.get(f"/api/incidents/{first['incidentId']}/verify").json()["valid"] is True
