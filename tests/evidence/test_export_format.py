"""Export rendering, CSV formula-injection guard, query parsing and continuation tokens (pure)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ValidationError
from shared.evidence import GENESIS_HASH, EventDraft, chain
from shared.export import (
    COLUMNS,
    ExportQuery,
    csv_cells,
    decode_cursor,
    encode_cursor,
    event_row,
    neutralise_cell,
    parse_time_bound,
    render,
    restore_cell,
)
from shared.models import ActorType, Phase
from shared.store import IncidentIndexRow

UTC = UTC
HOSTILE = [
    '=HYPERLINK("http://evil.example","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1:A2)",
    "\tindent",
    "\rreturn",
    "'quoted",
    "=cmd|' /C calc'!A0",
    "plain",
    "",
    "ünïcode ✓ 日本語",
    'a,b\n"c"',
]


def _events(summaries, incident_id="INC-20260105-aaaaaaaaaaaa"):
    t = datetime(2026, 1, 5, 10, tzinfo=UTC)
    drafts = [
        EventDraft(
            event_type="test",
            phase=Phase.NOTIFY,
            summary=s,
            actor=s or "x",
            actor_type=ActorType.ANALYST,
            occurred_at=t + timedelta(seconds=i),
            data={"note": s},
        )
        for i, s in enumerate(summaries)
    ]
    return chain(incident_id, drafts, 0, GENESIS_HASH)


@pytest.mark.parametrize("value", HOSTILE)
def test_neutralised_cell_never_starts_a_formula_and_restores_exactly(value):
    cell = neutralise_cell(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), repr(cell)
    assert restore_cell(cell) == value


def test_csv_export_guards_every_text_column_and_round_trips():
    row = event_row(_events(HOSTILE[:1])[0], IncidentIndexRow("INC-x", "@partner", "P1", "open", "", ""))
    row.update(actor="-actor", summary="+summary", eventType="=type")
    cells = csv_cells(row)
    assert cells[COLUMNS.index("actor")] == "'-actor"
    assert cells[COLUMNS.index("summary")] == "'+summary"
    assert cells[COLUMNS.index("eventType")] == "'=type"
    assert cells[COLUMNS.index("partner")] == "'@partner"
    assert json.loads(cells[COLUMNS.index("data")]) == row["data"]


def test_rendered_csv_parses_with_stable_header_and_no_formula_cells():
    evs = _events(HOSTILE)
    text = "".join(render((event_row(e, None) for e in evs), "csv"))
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == len(HOSTILE) + 1
    for cells in rows[1:]:
        for cell in cells:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    summaries = [restore_cell(r[COLUMNS.index("summary")]) for r in rows[1:]]
    assert summaries == HOSTILE  # unicode, quotes, commas and newlines survive


def test_json_and_json_lines_have_the_same_rows():
    evs = _events(["one", "two", "ünï"])
    rows = [event_row(e, IncidentIndexRow(e.incident_id, None, "P3", "open", "", "")) for e in evs]
    as_json = json.loads("".join(render(rows, "json")))
    as_lines = [json.loads(line) for line in "".join(render(rows, "jsonl")).splitlines()]
    assert as_json == as_lines
    assert [list(r) for r in as_json] == [list(COLUMNS)] * 3
    assert as_json[0]["partner"] == "" and as_json[0]["priority"] == "P3" and as_json[2]["summary"] == "ünï"
    assert json.loads("".join(render([], "json"))) == []
    assert "".join(render([], "jsonl")) == ""


def test_rendering_is_chunked_so_no_chunk_holds_the_whole_range():
    evs = _events([f"s{i}" for i in range(1000)])
    chunks = list(render((event_row(e, None) for e in evs), "jsonl"))
    assert len(chunks) > 3 and max(len(c) for c in chunks) < sum(len(c) for c in chunks) / 3


def test_time_bounds():
    assert parse_time_bound("2026-12-31", "to", end=True) == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_time_bound("2026-01-01", "from", end=False) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_time_bound("2026-03-01T10:00:00Z", "to", end=True) == datetime(2026, 3, 1, 10, 0, 0, 1000, tzinfo=UTC)
    assert parse_time_bound("2026-03-01T12:00:00+02:00", "from", end=False) == datetime(2026, 3, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "to"),
        ({"priority": "P5"}, "priority"),
        ({"partner": "bad partner!"}, "partner"),
        ({"incident": "../etc"}, "incident"),
    ],
)
def test_bad_query_parameters_name_the_field(params, field):
    with pytest.raises(ValidationError) as exc:
        ExportQuery.from_params(params)
    assert exc.value.details[0]["field"] == field


def test_query_accepts_lists_and_the_soc_partner():
    q = ExportQuery.from_params({"from": "2026-01-01", "to": "2026-06-30", "priority": "p2, P1", "partner": "_soc"})
    assert q.priorities == ("P1", "P2") and q.store_partner == ""


def test_continuation_token_round_trip_and_binding_to_the_query():
    q = ExportQuery.from_params({"from": "2026-01-01", "to": "2026-12-31"})
    token = encode_cursor(q, ("INC-20260105-aaaaaaaaaaaa", 7))
    assert decode_cursor(token, q) == ("INC-20260105-aaaaaaaaaaaa", 7)
    other = ExportQuery.from_params({"from": "2026-01-01", "to": "2026-12-31", "partner": "contoso"})
    with pytest.raises(ValidationError) as exc:
        decode_cursor(token, other)
    assert exc.value.details[0]["field"] == "continuationToken"
    for junk in ("", "!!!", "e30", token[:-3] + "abc"):
        with pytest.raises(ValidationError):
            decode_cursor(junk, q)
