"""The source closes an incident later (issue 13, docs/spec/triage.md): ours closes, calls stop, containment stays."""

from __future__ import annotations

from datetime import timedelta

from tests.writeback.conftest import analyst_edit, incident_rid, seed_sentinel, sentinel_payload, update_payload


def test_closed_in_sentinel_closes_ours_and_stops_the_calls(wb):
    payload = sentinel_payload()  # High + Exfiltration → P1, phones ring
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    escalation = f"escalation-{iid}"
    assert wb.app.durable.status(escalation)["runtimeStatus"] == "Running"
    calls_before = len(wb.fake.calls())

    analyst_edit(wb.fake, rid, status="Closed", classification="TruePositive")
    body = wb.post_sentinel(update_payload(wb.fake, payload))
    assert (body["outcome"], body["status"]) == ("closed", "closed")
    assert wb.app.durable.status(escalation)["runtimeStatus"] == "Completed"
    wb.app.durable.advance(timedelta(hours=2))
    assert len(wb.fake.calls()) == calls_before
    [closed] = wb.events(iid, "incident.closed-at-source")
    assert closed["data"]["containment"] == "kept"
    assert not wb.events(iid, "containment.released")
    # Delivered again: nothing more happens.
    again = wb.post_sentinel(update_payload(wb.fake, payload))
    assert again["status"] == "closed" and len(wb.events(iid, "incident.closed-at-source")) == 1
