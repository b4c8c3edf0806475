"""The offline verifier (``python -m shared.verify_export``) on exported files (no Azure)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.evidence import GENESIS_HASH, EventDraft, chain
from shared.export import COLUMNS, event_row, render
from shared.models import Phase
from shared.store import IncidentIndexRow
from shared.verify_export import main, verify_file

ROOT = Path(__file__).resolve().parents[2]
UTC = UTC
IDS = ["INC-20260105-aaaaaaaaaaaa", "INC-20260210-bbbbbbbbbbbb", "INC-20260301-cccccccccccc"]


def _rows(per_incident=5):
    rows = []
    for n, incident_id in enumerate(IDS):
        t = datetime(2026, 1, 5 + n, 10, tzinfo=UTC)
        drafts = [
            EventDraft(
                event_type=f"e{i}",
                phase=list(Phase)[i % 7],
                summary=f"=step {i} ✓",
                occurred_at=t + timedelta(minutes=i),
                data={"i": i, "text": 'ünï, "q"\n'},
            )
            for i in range(per_incident)
        ]
        for ev in chain(incident_id, drafts, 0, GENESIS_HASH):
            rows.append(event_row(ev, IncidentIndexRow(incident_id, "contoso", "P2", "open", "", "")))
    return rows


def _write(tmp_path, rows, fmt, name=None):
    path = tmp_path / (name or f"export.{fmt}")
    path.write_text("".join(render(rows, fmt)), encoding="utf-8", newline="")
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json"])
def test_untouched_export_verifies(tmp_path, capsys, fmt):
    path = _write(tmp_path, _rows(), fmt)
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "15 event(s) of 3 incident(s) checked: chains intact" in out


def _tamper_csv(path, mutate):
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    mutate(rows)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")


S = COLUMNS.index("summary")
D = COLUMNS.index("data")


@pytest.mark.parametrize(
    "mutate, incident, seq, words",
    [
        (lambda r: r[8].__setitem__(S, "'=step 2 (edited)"), IDS[1], 3, "content was altered"),
        (lambda r: r[3].__setitem__(D, '{"i":2,"text":"changed"}'), IDS[0], 3, "content was altered"),
        (lambda r: r.pop(9), IDS[1], 4, "event 4 is missing"),
        (lambda r: r.insert(12, r.pop(13)), IDS[2], 2, "event 2 is missing or out of order"),
        (lambda r: r.insert(13, r[12]), IDS[2], 3, "re-ordered or duplicated"),
    ],
)
def test_tampered_csv_names_incident_and_event(tmp_path, capsys, mutate, incident, seq, words):
    path = _write(tmp_path, _rows(), "csv")
    _tamper_csv(path, mutate)
    assert main([str(path)]) == 1
    out = capsys.readouterr().out
    line = next(text for text in out.splitlines() if text.startswith("BROKEN"))
    assert line.startswith(f"BROKEN {incident} at event {seq} "), out
    assert words in line
    assert "1 of 3 incident chain(s) BROKEN" in out


def test_tampered_json_lines_reports_row_and_line(tmp_path, capsys):
    path = _write(tmp_path, _rows(), "jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = json.loads(lines[6])
    doc["actor"] = "mallory@evil.example"
    lines[6] = json.dumps(doc)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main([str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["broken"] == [
        {
            "incidentId": IDS[1],
            "brokenAt": 2,
            "row": 7,
            "line": 7,
            "reason": "its content was altered (the hash does not match its fields)",
        }
    ]


def test_a_range_export_starts_mid_chain_and_is_anchored(tmp_path, capsys):
    rows = [r for r in _rows() if not (r["incidentId"] == IDS[0] and r["seq"] <= 2)]
    path = _write(tmp_path, rows, "csv")
    assert main([str(path)]) == 0
    assert f"{IDS[0]} (from event 3)" in capsys.readouterr().out
    assert main([str(path), "--require-complete"]) == 1
    assert f"BROKEN {IDS[0]} at event 1" in capsys.readouterr().out


def test_rows_resorted_by_time_still_verify_but_a_dropped_first_event_does_not(tmp_path):
    rows = sorted(_rows(), key=lambda r: (r["seq"], r["incidentId"]))  # incidents interleaved
    assert verify_file(_write(tmp_path, rows, "jsonl")).valid
    forged = [dict(r) for r in _rows()]
    forged[0]["prevHash"] = "f" * 64
    report = verify_file(_write(tmp_path, forged, "json", "forged.json"))
    assert not report.valid and report.breaks[0].seq == 1 and "genesis" in report.breaks[0].reason


@pytest.mark.parametrize("content, code", [("", 2), ("not,an,export\n1,2,3\n", 2), ('[{"incidentId": 1', 2)])
def test_files_that_are_not_exports_exit_2(tmp_path, content, code):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    assert main([str(path)]) == code


def test_module_runs_from_the_command_line_without_azure(tmp_path):
    good = _write(tmp_path, _rows(), "csv")
    bad = _write(tmp_path, _rows(), "csv", "bad.csv")
    _tamper_csv(bad, lambda r: r[14].__setitem__(S, "forged"))
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}  # no Azure settings at all
    ok = subprocess.run(
        [sys.executable, "-m", "shared.verify_export", str(good)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    broken = subprocess.run(
        [sys.executable, "-m", "shared.verify_export", str(bad)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert broken.returncode == 1
    assert f"BROKEN {IDS[2]} at event 4" in broken.stdout
