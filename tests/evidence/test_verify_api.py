"""GET /api/incidents/{id}/verify against Azurite: untouched, edited, deleted, re-ordered and truncated chains."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.evidence.seed import make_incident, seed, timeline

UTC = UTC


@pytest.fixture
def incident(app):
    inc = make_incident("verify", datetime(2026, 4, 1, 12, tzinfo=UTC))
    seed(app.store, inc, timeline(inc, 6))
    return inc


def _verify(app, incident_id):
    return app.get(f"/api/incidents/{incident_id}/verify")


def test_untouched_chain_is_valid_with_the_spec_body(app, incident):
    r = _verify(app, incident.id)
    assert (r.status, r.json()) == (200, {"valid": True})


def test_edited_event_row_is_409_at_its_position(app, incident, timeline_table):
    row = timeline_table.get_entity(incident.id, "0000000003")
    row["summary"] = "nothing to see here"
    timeline_table.update_entity(row)
    r = _verify(app, incident.id)
    assert r.status == 409
    body = r.json()
    assert body["valid"] is False and body["brokenAt"] == 3 and "altered" in body["reason"]


def test_edited_data_is_detected(app, incident, timeline_table):
    row = timeline_table.get_entity(incident.id, "0000000005")
    assert '"note":"step' in row["data0"]
    row["data0"] = row["data0"].replace('"note":"step', '"note":"a quiet step')
    timeline_table.update_entity(row)
    assert _verify(app, incident.id).json() == {"valid": False, "brokenAt": 5, "reason": "event content altered"}


def test_deleted_event_is_409_at_the_gap(app, incident, timeline_table):
    timeline_table.delete_entity(incident.id, "0000000004")
    r = _verify(app, incident.id)
    assert r.status == 409 and r.json()["brokenAt"] == 4


def test_reordered_events_are_409(app, incident, timeline_table):
    # Swap the contents of events 2 and 3 under their row keys (and seq numbers).
    two, three = (timeline_table.get_entity(incident.id, f"{n:010d}") for n in (2, 3))
    keep = ("PartitionKey", "RowKey", "seq")
    swapped_two = {**{k: v for k, v in three.items() if k not in keep}, **{k: two[k] for k in keep}}
    swapped_three = {**{k: v for k, v in two.items() if k not in keep}, **{k: three[k] for k in keep}}
    timeline_table.upsert_entity(swapped_two, mode="replace")
    timeline_table.upsert_entity(swapped_three, mode="replace")
    r = _verify(app, incident.id)
    assert r.status == 409 and r.json()["brokenAt"] == 2


def test_removing_the_last_event_is_caught_by_the_chain_head(app, incident, timeline_table):
    timeline_table.delete_entity(incident.id, "0000000006")
    r = _verify(app, incident.id)
    assert r.status == 409
    assert r.json()["brokenAt"] == 6 and "missing" in r.json()["reason"]


def test_deleting_the_whole_timeline_is_caught(app, incident, timeline_table):
    for row in list(timeline_table.query_entities(f"PartitionKey eq '{incident.id}'")):
        timeline_table.delete_entity(row["PartitionKey"], row["RowKey"])
    r = _verify(app, incident.id)
    assert r.status == 409 and r.json()["brokenAt"] == 1 and "empty" in r.json()["reason"]


def test_deleting_the_tail_together_with_the_head_is_caught(app, incident, timeline_table):
    timeline_table.delete_entity(incident.id, "0000000006")
    timeline_table.delete_entity(incident.id, "~head")
    r = _verify(app, incident.id)
    assert r.status == 409 and "head" in r.json()["reason"]


def test_appending_events_behind_the_store_is_caught(app, incident, timeline_table):
    row = timeline_table.get_entity(incident.id, "0000000006")
    forged = dict(row)
    forged.update(RowKey="0000000007", seq=7, prevHash=row["hash"], hash="0" * 64)
    timeline_table.create_entity(forged)
    r = _verify(app, incident.id)
    assert r.status == 409 and r.json()["brokenAt"] == 7


def test_live_appends_keep_the_chain_valid(app, incident):
    from shared.evidence import EventDraft
    from shared.models import Phase

    app.store.append_events(
        incident.id,
        [EventDraft(event_type="x", phase=Phase.REVIEW, summary="later", occurred_at=datetime(2026, 4, 2, tzinfo=UTC))],
    )
    assert _verify(app, incident.id).json() == {"valid": True}


def test_unknown_incident_is_404(app):
    assert _verify(app, "INC-20260101-000000000000").status == 404
