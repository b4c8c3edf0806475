"""Evidence anchored outside the tables (docs/spec/evidence.md, issue 12): timer, verify, review, offline check."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.evidence import GENESIS_HASH
from tests.evidence.seed import make_incident, seed, timeline

T0 = datetime(2026, 4, 1, 12, tzinfo=UTC)


@pytest.fixture
def anchored(app):
    """Two incidents, then an anchor written by the hourly timer."""
    incs = []
    for name in ("anchor-a", "anchor-b"):
        inc = make_incident(name, T0)
        seed(app.store, inc, timeline(inc, 5))
        incs.append(inc)
    app.runtime.timer("anchor_evidence")
    return incs


def _rewrite_from(table, incident_id: str, seq: int, summary: str) -> None:
    """What someone with table write access could do: edit an event and recompute every later hash and the head."""
    from shared.adapters.table_rows import event_from

    rows = sorted(
        (r for r in table.query_entities(f"PartitionKey eq '{incident_id}'") if r["RowKey"] != "~head"),
        key=lambda r: r["seq"],
    )
    prev = GENESIS_HASH
    for row in rows:
        ev = event_from(row)
        if ev.seq >= seq:
            ev = ev.model_copy(update={"prev_hash": prev, "summary": summary if ev.seq == seq else ev.summary})
            ev.hash = ev.compute_hash()
            table.upsert_entity(
                {**row, "summary": ev.summary, "prevHash": ev.prev_hash, "hash": ev.hash}, mode="replace"
            )
        prev = ev.hash
    head = table.get_entity(incident_id, "~head")
    table.upsert_entity({**head, "lastSeq": rows[-1]["seq"], "lastHash": prev}, mode="replace")


def _truncate(table, incident_id: str, keep: int) -> None:
    rows = [r for r in table.query_entities(f"PartitionKey eq '{incident_id}'") if r["RowKey"] != "~head"]
    for r in rows:
        if r["seq"] > keep:
            table.delete_entity(incident_id, r["RowKey"])
    last = next(r for r in rows if r["seq"] == keep)
    head = table.get_entity(incident_id, "~head")
    table.upsert_entity({**head, "lastSeq": keep, "lastHash": last["hash"]}, mode="replace")


def _verify(app, incident_id):
    return app.get(f"/api/incidents/{incident_id}/verify")


def test_the_timer_writes_a_hashed_manifest_of_every_chain_head(app, anchored):
    name, raw = app.context.archive.latest("anchors/")
    doc = json.loads(raw)
    assert set(doc["incidents"]) == {i.id for i in anchored} and doc["incidentCount"] == 2
    assert doc["incidents"][anchored[0].id]["lastSeq"] == 5
    from shared.anchor import parse_manifest

    assert parse_manifest(raw).manifest_hash == doc["manifestHash"]
    # the next anchor names this one: anchors form a chain
    app.runtime.timer("anchor_evidence")
    name2, raw2 = app.context.archive.latest("anchors/")
    assert name2 > name and json.loads(raw2)["previousAnchor"] == name


def test_an_anchor_is_never_overwritten(app, anchored):
    from shared.errors import ConflictError

    name, _raw = app.context.archive.latest("anchors/")
    with pytest.raises(ConflictError):
        app.context.archive.write_new(name, b"{}")


def test_rewriting_a_whole_incident_passes_the_table_checks_but_not_the_anchor(app, anchored, timeline_table):
    inc = anchored[0]
    _rewrite_from(timeline_table, inc.id, 2, "nothing happened here")
    from shared.verify_export import check_stored_chain

    assert check_stored_chain(app.store, inc.id).valid  # the table alone is self-consistent
    r = _verify(app, inc.id)
    assert r.status == 409 and r.json()["valid"] is False and r.json()["reason"].startswith("rewritten"), r.text
    assert _verify(app, anchored[1].id).status == 200  # the other incident is untouched


def test_truncating_an_incident_with_a_matching_head_is_409(app, anchored, timeline_table):
    inc = anchored[0]
    _truncate(timeline_table, inc.id, 3)
    r = _verify(app, inc.id)
    assert r.status == 409 and r.json()["reason"].startswith("truncated"), r.text


def test_deleting_every_row_of_an_incident_is_409_not_404(app, anchored, timeline_table):
    from azure.data.tables import TableServiceClient

    inc = anchored[0]
    service = TableServiceClient.from_connection_string(app.context.settings.evidence_connection_string)
    for table in ("IncidentTimeline", "Incidents"):
        client = service.get_table_client(table)
        for row in list(client.query_entities(f"PartitionKey eq '{inc.id}'")):
            client.delete_entity(row["PartitionKey"], row["RowKey"])
    r = _verify(app, inc.id)
    assert r.status == 409 and r.json()["valid"] is False and "deleted" in r.json()["reason"], r.text
    assert app.get("/api/incidents/never-existed/verify").status == 404


def test_events_after_the_anchor_are_fine(app, anchored):
    from shared.evidence import EventDraft, now_ms
    from shared.models import Phase

    app.store.append_events(
        anchored[0].id, [EventDraft(event_type="note", phase=Phase.TRIAGE, summary="later", occurred_at=now_ms())]
    )
    assert _verify(app, anchored[0].id).status == 200


def test_review_reports_what_verify_reports(app, anchored, timeline_table):
    """Finding: the review said `chain.valid: true` where verify said broken (it ignored the stored head)."""
    inc = anchored[1]
    timeline_table.delete_entity(inc.id, "0000000005")  # the head still records 5 events
    review = app.get(f"/api/incidents/{inc.id}/review", params={"format": "json"}).json()
    assert review["chain"]["valid"] is False and _verify(app, inc.id).status == 409
    _rewrite_from(timeline_table, anchored[0].id, 2, "rewritten")
    review = app.get(f"/api/incidents/{anchored[0].id}/review", params={"format": "json"}).json()
    assert review["chain"]["valid"] is False
    assert _verify(app, anchored[0].id).json()["reason"].startswith("rewritten")


def test_offline_verifier_checks_an_export_against_an_anchor_file(app, anchored, timeline_table, tmp_path):
    from shared.verify_export import main

    _name, raw = app.context.archive.latest("anchors/")
    anchor = tmp_path / "anchor.json"
    anchor.write_bytes(raw)
    good = tmp_path / "good.jsonl"
    good.write_text(app.get("/api/evidence", params={"format": "jsonl"}).text)
    assert main([str(good), "--anchor", str(anchor), "--require-complete"]) == 0
    _rewrite_from(timeline_table, anchored[0].id, 2, "rewritten")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(app.get("/api/evidence", params={"format": "jsonl"}).text)
    assert main([str(bad)]) == 0  # the export alone verifies: its hashes were recomputed
    assert main([str(bad), "--anchor", str(anchor)]) == 1
    # an export without one incident: deleted, when the export claims to be complete
    only_b = tmp_path / "b.jsonl"
    only_b.write_text(app.get("/api/evidence", params={"format": "jsonl", "incident": anchored[1].id}).text)
    assert main([str(only_b), "--anchor", str(anchor)]) == 0
    assert main([str(only_b), "--anchor", str(anchor), "--require-complete"]) == 1
    # an altered anchor file is refused
    doc = json.loads(raw)
    doc["incidents"].pop(anchored[0].id)
    anchor.write_text(json.dumps(doc))
    assert main([str(bad), "--anchor", str(anchor)]) == 2


def test_anchors_are_cumulative_so_a_deletion_never_ages_out(app, anchored, timeline_table):
    """Deleted right after an anchor: the next anchors still name the incident as it was."""
    from azure.data.tables import TableServiceClient

    inc = anchored[0]
    service = TableServiceClient.from_connection_string(app.context.settings.evidence_connection_string)
    for table in ("IncidentTimeline", "Incidents"):
        client = service.get_table_client(table)
        for row in list(client.query_entities(f"PartitionKey eq '{inc.id}'")):
            client.delete_entity(row["PartitionKey"], row["RowKey"])
    app.runtime.timer("anchor_evidence")
    _name, raw = app.context.archive.latest("anchors/")
    assert json.loads(raw)["incidents"][inc.id]["lastSeq"] == 5
    assert _verify(app, inc.id).status == 409


def test_a_rewrite_or_truncation_is_not_taken_into_the_next_anchor(app, anchored, timeline_table):
    _rewrite_from(timeline_table, anchored[0].id, 2, "rewritten")
    _truncate(timeline_table, anchored[1].id, 3)
    report = app.context.integrity.anchor(datetime.now(UTC))
    assert sorted(report["keptAnchored"]) == sorted(i.id for i in anchored)
    assert _verify(app, anchored[0].id).status == 409 and _verify(app, anchored[1].id).status == 409


def test_appends_move_the_anchor_forward_and_new_incidents_join_it(app, anchored):
    from shared.evidence import EventDraft, now_ms
    from shared.models import Phase

    app.store.append_events(
        anchored[0].id, [EventDraft(event_type="note", phase=Phase.TRIAGE, summary="later", occurred_at=now_ms())]
    )
    late = make_incident("anchor-c", T0)
    seed(app.store, late, timeline(late, 2))
    app.runtime.timer("anchor_evidence")
    doc = json.loads(app.context.archive.latest("anchors/")[1])
    assert doc["incidents"][anchored[0].id]["lastSeq"] == 6 and doc["incidents"][late.id]["lastSeq"] == 2
    assert doc["incidents"][late.id]["firstAnchoredAt"] > doc["incidents"][anchored[0].id]["firstAnchoredAt"]


def test_a_forged_newest_anchor_that_drops_an_incident_is_outvoted_by_its_predecessor(app, anchored):
    """The app identity may add anchors: one that leaves an incident out cannot hide its later deletion."""
    from shared.anchor import anchor_name, build_manifest, parse_manifest

    name, raw = app.context.archive.latest("anchors/")
    real = parse_manifest(raw)
    kept = {i: h for i, h in real.incidents.items() if i != anchored[0].id}
    forged = build_manifest(kept, datetime.now(UTC), (name, real))
    app.context.archive.write_new(
        anchor_name(datetime.now(UTC), forged.manifest_hash), json.dumps(forged.wire()).encode("utf-8")
    )
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(app.context.settings.evidence_connection_string)
    for table in ("IncidentTimeline", "Incidents"):
        client = service.get_table_client(table)
        for row in list(client.query_entities(f"PartitionKey eq '{anchored[0].id}'")):
            client.delete_entity(row["PartitionKey"], row["RowKey"])
    r = _verify(app, anchored[0].id)
    assert r.status == 409 and "deleted" in r.json()["reason"], r.text
