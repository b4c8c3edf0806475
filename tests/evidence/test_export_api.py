"""GET /api/evidence against Azurite: a seeded year, filters, paging, formula-injection safety, flat memory."""

from __future__ import annotations

import csv
import gc
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest

from shared.export import COLUMNS, ExportQuery, restore_cell, write_export
from shared.models import Priority, isoformat
from shared.verify_export import verify_file
from tests.evidence.seed import make_incident, seed, seed_year, timeline

UTC = UTC
EVIDENCE = "/api/evidence"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def year(app):
    """48 incidents over 2026 (6 events each), plus one in 2025 and one in 2027 that a 2026 export must skip."""
    incidents = seed_year(app.store, 2026, incidents=48, events_each=6)
    for when, key in (
        (datetime(2025, 12, 31, 23, 0, tzinfo=UTC), "before"),
        (datetime(2027, 1, 1, 0, 30, tzinfo=UTC), "after"),
    ):
        inc = make_incident(key, when)
        seed(app.store, inc, timeline(inc, 3, spacing=timedelta(minutes=1)))
    return incidents


def _csv(text):
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def _events_in(app, start, stop):
    return [e for e in app.store.scan_events() if isoformat(start) <= e.occurred_at < isoformat(stop)]


def test_a_year_as_csv_has_every_event_of_the_range_and_the_documented_columns(app, year):
    r = app.get(EVIDENCE, {"from": "2026-01-01", "to": "2026-12-31", "format": "csv"})
    assert r.status == 200, r.text
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in r.headers["Content-Disposition"] and r.headers["X-Evidence-Rows"] == "288"
    header, rows = _csv(r.text)
    assert tuple(header) == COLUMNS
    assert len(rows) == 288 == 48 * 6
    assert {row["incidentId"] for row in rows} == {i.id for i in year}
    assert all(row["occurredAt"].startswith("2026-") for row in rows)
    assert {row["criterion"] for row in rows} == {"CC7.3", "CC7.4", "CC7.5"}
    assert [(row["incidentId"], int(row["seq"])) for row in rows] == sorted(
        (row["incidentId"], int(row["seq"])) for row in rows
    )
    assert "X-Continuation-Token" not in r.headers


def test_json_and_json_lines_carry_the_same_rows(app, year):
    as_json = app.get(EVIDENCE, {"from": "2026-01-01", "to": "2026-12-31", "format": "json"})
    as_lines = app.get(EVIDENCE, {"from": "2026-01-01", "to": "2026-12-31", "format": "jsonl"})
    assert as_json.headers["Content-Type"].startswith("application/json")
    assert as_lines.headers["Content-Type"].startswith("application/x-ndjson")
    rows = as_json.json()
    assert rows == [json.loads(line) for line in as_lines.text.splitlines()]
    assert len(rows) == 288 and list(rows[0]) == list(COLUMNS) and isinstance(rows[0]["data"], dict)


def test_filters_by_date_partner_priority_and_incident(app, year):
    start, stop = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    march = app.get(EVIDENCE, {"from": "2026-03-01", "to": "2026-03-31", "format": "json"}).json()
    expected = _events_in(app, start, stop)
    assert 0 < len(march) == len(expected)
    assert {(r["incidentId"], r["seq"]) for r in march} == {(e.incident_id, e.seq) for e in expected}

    contoso = app.get(
        EVIDENCE, {"from": "2026-01-01", "to": "2026-12-31", "partner": "contoso", "format": "json"}
    ).json()
    soc = app.get(EVIDENCE, {"from": "2026-01-01", "to": "2026-12-31", "partner": "_soc", "format": "json"}).json()
    assert {r["partner"] for r in contoso} == {"contoso"} and {r["partner"] for r in soc} == {""}
    assert len(contoso) + len(soc) == 288 and len(soc) == 16 * 6

    p1 = app.get(EVIDENCE, {"from": "2026-01-01", "to": "2026-12-31", "priority": "P1", "format": "json"}).json()
    p12 = app.get(EVIDENCE, {"from": "2026-01-01", "to": "2026-12-31", "priority": "P1,P2", "format": "json"}).json()
    assert {r["priority"] for r in p1} == {"P1"} and len(p1) == 12 * 6 and len(p12) == 24 * 6
    both = app.get(
        EVIDENCE, {"from": "2026-01-01", "to": "2026-12-31", "priority": "P1", "partner": "contoso", "format": "json"}
    ).json()
    assert both and all(r["priority"] == "P1" and r["partner"] == "contoso" for r in both)

    one = year[5].id
    only = app.get(EVIDENCE, {"incident": one, "format": "json"}).json()
    assert [r["seq"] for r in only] == [1, 2, 3, 4, 5, 6] and {r["incidentId"] for r in only} == {one}
    none = app.get(
        EVIDENCE, {"incident": one, "priority": "P4" if year[5].priority != Priority.P4 else "P1", "format": "json"}
    ).json()
    assert none == []


def test_paging_with_continuation_tokens_returns_every_row_once(app, year):
    params = {"from": "2026-01-01", "to": "2026-12-31", "format": "jsonl", "limit": "50"}
    seen, pages, token = [], 0, None
    while True:
        r = app.get(EVIDENCE, {**params, **({"continuationToken": token} if token else {})})
        assert r.status == 200, r.text
        rows = [json.loads(line) for line in r.text.splitlines()]
        pages += 1
        seen += [(row["incidentId"], row["seq"]) for row in rows]
        token = r.headers.get("X-Continuation-Token")
        if not token:
            break
        assert len(rows) == 50 and 'rel="next"' in r.headers["Link"] and "continuationToken=" in r.headers["Link"]
    assert pages == 6 and len(seen) == 288 == len(set(seen)) and seen == sorted(seen)
    # A token only works with the query that issued it; a function key in the URL is not echoed.
    first = app.get(EVIDENCE, {**params, "code": "function-key-secret"})
    assert "function-key-secret" not in first.headers["Link"]
    other = app.get(
        EVIDENCE, {**params, "partner": "contoso", "continuationToken": first.headers["X-Continuation-Token"]}
    )
    assert other.status == 400 and other.json()["details"][0]["field"] == "continuationToken"


def test_csv_is_safe_against_formula_injection_and_keeps_unicode(app):
    hostile = [
        '=HYPERLINK("http://evil.example","click")',
        "+SUM(1,2)",
        "-1+2",
        "@cmd",
        "\tTAB",
        "\rCR",
        "'already quoted",
        "ünïcode ✓ 日本語 🙂",
        'comma, "quote"\nnewline',
    ]
    inc = make_incident("csv", datetime(2026, 5, 5, 10, tzinfo=UTC), title="=1+1")
    seed(app.store, inc, timeline(inc, 2 + len(hostile), summaries=hostile, actors=["=evil@x.example", "@a", "-b"]))
    r = app.get(EVIDENCE, {"incident": inc.id, "format": "csv"})
    _header, rows = _csv(r.text)
    for row in rows:
        for value in row.values():
            assert not value.startswith(TRIGGERS), repr(value)
    assert [restore_cell(row["summary"]) for row in rows[2:]] == hostile
    assert restore_cell(rows[2]["actor"]) == "=evil@x.example"
    bom = app.get(EVIDENCE, {"incident": inc.id, "format": "csv", "bom": "true"})
    assert bom.text.startswith("\ufeffincidentId,")


@pytest.mark.parametrize(
    "params, field",
    [
        ({"format": "xml"}, "format"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"from": "last week"}, "from"),
        ({"priority": "urgent"}, "priority"),
        ({"continuationToken": "%%%"}, "continuationToken"),
    ],
)
def test_bad_parameters_get_400_naming_the_field(app, params, field):
    r = app.get(EVIDENCE, params)
    assert r.status == 400 and r.json()["details"][0]["field"] == field


def test_exported_files_verify_offline_and_a_range_cut_is_anchored(app, year, tmp_path):
    for fmt in ("csv", "jsonl", "json"):
        path = tmp_path / f"year.{fmt}"
        path.write_text(
            app.get(EVIDENCE, {"from": "2026-01-01", "to": "2026-12-31", "format": fmt}).text,
            encoding="utf-8",
            newline="",
        )
        report = verify_file(path)
        assert report.valid and report.rows == 288 and report.anchored == []
    # A range that starts after an incident's first events: the verifier anchors at its first exported event.
    cut = year[10].created_at + timedelta(minutes=10)  # after events 1-2, before event 3 (+14 min)
    path = tmp_path / "cut.csv"
    path.write_text(
        app.get(EVIDENCE, {"from": isoformat(cut), "to": "2026-12-31", "format": "csv"}).text,
        encoding="utf-8",
        newline="",
    )
    report = verify_file(path)
    assert report.valid and (year[10].id, 3) in report.anchored


def _peak_bytes(store, query):
    class Sink:
        rows = 0

        def write(self, chunk):
            Sink.rows += chunk.count("\n")

    gc.collect()
    tracemalloc.start()
    try:
        rows = write_export(store, query, "csv", Sink())
        return rows, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_stays_flat_as_the_range_grows(app):
    # 2,000 events in January, 6,000 more in February: exporting four times the events needs no more memory.
    # (Both ranges span several 1,000-row service pages; while one page is parsed the SDK still holds the
    # previous one, so the working set is about two pages, whatever the range.)
    for month, incidents in ((1, 4), (2, 12)):
        for i in range(incidents):
            inc = make_incident(f"mem-{month}-{i}", datetime(2026, month, 2 + i, 8, tzinfo=UTC))
            seed(app.store, inc, timeline(inc, 500, spacing=timedelta(seconds=30)))
    small = ExportQuery.from_params({"from": "2026-01-01", "to": "2026-01-31"})
    large = ExportQuery.from_params({"from": "2026-01-01", "to": "2026-02-28"})
    _peak_bytes(app.store, small)  # warm up: imports, clients, first-use caches
    rows_small, peak_small = _peak_bytes(app.store, small)
    rows_large, peak_large = _peak_bytes(app.store, large)
    assert (rows_small, rows_large) == (2000, 8000)
    assert peak_large < peak_small * 1.5 + 256 * 1024, (peak_small, peak_large)


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/api/evidence", {"to": "9999-12-31"}, "to"),
        ("/api/evidence", {"from": "2026-01-01", "to": "9999-12-31T23:59:59.999"}, "to"),
        ("/api/reports/sla", {"to": "0001-01-05"}, "to"),
        ("/api/reports/sla", {"to": "9999-12-31"}, "to"),
    ],
)
def test_bounds_at_the_edge_of_the_calendar_are_400_not_500(app, path, params, field):
    r = app.get(path, params)
    assert r.status == 400, r.text
    assert field in [d["field"] for d in r.json()["details"]]
