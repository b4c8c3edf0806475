"""Recorded-only incidents (closed at the source on arrival, or a test/sample alert) are never written back:
the write-back timer leaves their Sentinel incident and Defender alert exactly as the source holds them
(issue 13, docs/spec/triage.md "The source's judgement")."""

from __future__ import annotations

from tests.fixtures.app import sample
from tests.writeback.conftest import (
    comments_of,
    defender_alert_id,
    incident_rid,
    labels_of,
    seed_defender_alert,
    seed_sentinel,
    sentinel_payload,
    sentinel_writes,
)


def _no_source_writes(wb, *paths: str) -> None:
    writes = [r for r in wb.fake.writes() if any(p.lower() in r.path.lower() for p in paths)]
    assert writes == [], [(r.method, r.path) for r in writes]
    assert sentinel_writes(wb.fake) == []
    assert wb.fake.requests("POST", "/alerts/") == []


def test_sentinel_incident_closed_on_arrival_gets_no_comment_labels_or_status(wb):
    payload = sentinel_payload()
    props = payload["object"]["properties"]
    props.update(status="Closed", classification="FalsePositive")
    seed_sentinel(wb.fake, payload, labels=[])
    rid = incident_rid(payload)
    body = wb.post_sentinel(payload)
    assert body["status"] == "closed"
    iid = body["incidentId"]

    for _ in range(3):  # the timer's passes: the incident is new, then unchanged
        wb.sync()

    _no_source_writes(wb, rid)
    assert labels_of(wb.fake, rid) == [] and comments_of(wb.fake, rid) == []
    assert wb.fake.get_resource(rid)["properties"]["status"] == "Closed"
    assert not [e for e in wb.events(iid) if e["eventType"].startswith("writeback.")]
    # The write-back itself, asked directly, says why it left the incident alone.
    assert wb.app.context.writeback.write_back(iid, trigger="timer")["status"] == "recorded-only"
    _no_source_writes(wb, rid)


def test_defender_sample_alert_is_not_resolved_at_the_source(wb):
    name = "2516892455221183920_0badc0de-9f4b-4c1e-8d7a-1b2c3d4e5f60"
    alert = sample("defender-alert-arm.json")
    alert_id = defender_alert_id(name)
    alert["id"], alert["name"] = alert_id, name
    alert["properties"]["systemAlertId"] = name
    alert["properties"]["alertDisplayName"] = "[SAMPLE ALERT] Digital currency mining related behavior detected"
    seed_defender_alert(wb.fake, alert_id)
    r = wb.post("/api/alerts/defender", alert)
    assert r.status == 202, r.text
    assert (r.json()["status"], r.json()["priority"]) == ("resolved", "P4")
    iid = r.json()["incidentId"]

    wb.sync()
    wb.sync()

    _no_source_writes(wb, alert_id)
    assert wb.fake.get_resource(alert_id)["properties"]["status"] == "Active"
    assert not [e for e in wb.events(iid) if e["eventType"].startswith("writeback.")]


def test_an_ordinary_incident_is_still_written_back(wb):
    """The guard is narrow: an incident that was worked (not recorded-only) still reaches Sentinel."""
    payload = sentinel_payload(severity="Low", tactics=["Discovery"], entities=[])
    seed_sentinel(wb.fake, payload, labels=[])
    rid = incident_rid(payload)
    wb.post_sentinel(payload)
    wb.sync()
    assert sentinel_writes(wb.fake), "an open incident is projected into Sentinel"
    assert labels_of(wb.fake, rid)
