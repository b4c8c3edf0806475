"""Issue 16: the queue reads the incident's containment marker (failed / held first) instead of one
action-row query per open P1; the marker is set and cleared where containment's outcome is written."""

from __future__ import annotations

import re

from tests.console.conftest import as_role, held_isolation
from tests.containment.conftest import host, ingest, p1_alert, seed_vm

ROW = re.compile(r'<td data-label="Incident"><a href="[^"]+">([^<]+)</a>')


def _marker(app, incident_id: str) -> str | None:
    return app.store.get_incident(incident_id)[0].extra.get("containmentAttention")


def _queue(app) -> tuple[list[str], str]:
    page = app.request("GET", "/api/console", headers=as_role("Responder"))
    assert page.status == 200, page.text
    return ROW.findall(page.text), page.text


def test_failed_and_held_containment_come_first_from_the_marker_without_reading_actions(console, monkeypatch):
    app = console
    calm = [ingest(app, p1_alert({"kind": "host", "name": f"ws-{i}"}, sub=None, score=2)) for i in range(3)]
    vm, _ = seed_vm(app.fake, "db-01")
    app.fake.inject("PUT", r"/networkInterfaces/", 403, times=10)  # the isolation fails for good
    failed = ingest(app, p1_alert(host(vm)))
    held, _ = held_isolation(app, name="dc-02")
    assert _marker(app, failed) == "failed" and _marker(app, held) == "held"
    assert all(_marker(app, i) is None for i in calm)
    index = {r.incident_id: r.containment for r in app.store.iter_incident_index()}
    assert index[failed] == "failed" and index[held] == "held"

    # The queue reads no containment action row, whatever the number of open P1s.
    reads: list[str] = []
    original = type(app.store).list_records

    def counting(store, table, partition):
        reads.append(table)
        return original(store, table, partition)

    monkeypatch.setattr(type(app.store), "list_records", counting)
    rows, text = _queue(app)
    assert "ContainmentActions" not in reads
    assert set(rows[:2]) == {failed, held} and set(rows[2:]) == set(calm)
    assert "containment failed" in text and "held for approval" in text


def test_the_marker_clears_when_held_containment_is_approved_and_done(console):
    app = console
    held, _ = held_isolation(app)
    assert _marker(app, held) == "held"
    r = app.request(
        "POST",
        f"/api/incidents/{held}/approve",
        {"decision": "approve", "reason": "go"},
        headers=as_role("Approver"),
    )
    assert r.status in (200, 202), r.text
    assert _marker(app, held) is None
    rows, text = _queue(app)
    assert rows == [held] and "held for approval" not in text and "containment failed" not in text


# -- the title search reads the index rows' title column, not the documents --------------------------------------


def _titled(app, title: str, host_name: str) -> str:
    return ingest(app, {**p1_alert({"kind": "host", "name": host_name}, sub=None, score=5), "title": title})


def _search(app, needle: str) -> list[str]:
    page = app.request("GET", f"/api/console?q={needle}", headers=as_role("Responder"))
    assert page.status == 200, page.text
    return ROW.findall(page.text)


def test_the_title_search_parses_no_incident_document(console, monkeypatch):
    app = console
    beacon = _titled(app, "Outbound C2 beacon to a known botnet", "ws-1")
    other = _titled(app, "Anonymous access to a storage account", "ws-2")
    scans: list[object] = []
    original = type(app.store).find_incidents

    def counting(store, *args, **kwargs):
        scans.append(args)
        return original(store, *args, **kwargs)

    monkeypatch.setattr(type(app.store), "find_incidents", counting)
    assert _search(app, "botnet") == [beacon]
    assert _search(app, "STORAGE") == [other]  # case-insensitive
    assert _search(app, "ransomware") == []
    assert scans == []  # every index row carried its title


def test_rows_read_without_a_title_column_are_still_found_through_their_documents(console, monkeypatch):
    import dataclasses

    app = console
    beacon = _titled(app, "Outbound C2 beacon to a known botnet", "ws-1")
    _titled(app, "Anonymous access to a storage account", "ws-2")
    original = type(app.store).iter_incident_index

    def untitled(store, *args, **kwargs):  # as rows written before the column was read
        return (dataclasses.replace(r, title=None) for r in original(store, *args, **kwargs))

    monkeypatch.setattr(type(app.store), "iter_incident_index", untitled)
    assert _search(app, "botnet") == [beacon]
