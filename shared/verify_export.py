"""Offline check of an exported evidence file: ``python -m shared.verify_export FILE``.

Reads a CSV, JSON Lines or JSON export of ``GET /api/evidence`` (no Azure
access, no settings) and, for every incident in it, recomputes each event's
hash from its columns and checks that each event links to the one before it
(``prevHash``) with no gap in ``seq``. Exit status: 0 every chain intact,
1 a chain is broken (each broken incident is printed with the event and the
reason), 2 the file cannot be read as an export.

An export of a date range can start in the middle of an incident's chain:
its first exported event is then taken as the anchor (its own hash is still
checked) and the report says so; ``--require-complete`` makes that a failure.
Rows of one incident may be interleaved with other incidents' rows (a file
re-sorted by time), but must stay in ``seq`` order.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from shared.evidence import GENESIS_HASH, ChainVerdict, EvidenceEvent, canonical_json, verify_chain
from shared.export import COLUMNS, HASHED_COLUMNS, restore_cell

csv.field_size_limit(16 * 1024 * 1024)  # a ``data`` cell can be large (Table Storage allows ~450 KB)


class ExportFormatError(Exception):
    """The file is not an evidence export this tool can read."""


@dataclass
class Break:
    incident_id: str
    seq: int | None
    row: int
    line: int | None
    reason: str

    def describe(self) -> str:
        where = f"event {self.seq}" if self.seq is not None else "an unreadable event"
        at = f"row {self.row}" + (f", line {self.line}" if self.line else "")
        return f"BROKEN {self.incident_id} at {where} ({at}): {self.reason}"


@dataclass
class _Chain:
    first_seq: int
    last_seq: int
    last_hash: str
    events: int = 1
    broken: bool = False


@dataclass
class VerifyReport:
    """What the check found."""

    rows: int = 0
    incidents: dict[str, _Chain] = field(default_factory=dict)
    breaks: list[Break] = field(default_factory=list)
    # issue 12: hash of each watched incident's event at the seq an anchor names
    watched: dict[str, str] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.breaks and self.rows > 0

    @property
    def anchored(self) -> list[tuple[str, int]]:
        """Incidents whose exported events start after event 1: (incident id, first exported seq)."""
        return sorted((i, c.first_seq) for i, c in self.incidents.items() if c.first_seq > 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "rows": self.rows,
            "incidents": len(self.incidents),
            "broken": [
                {"incidentId": b.incident_id, "brokenAt": b.seq, "row": b.row, "line": b.line, "reason": b.reason}
                for b in self.breaks
            ],
            "anchored": [{"incidentId": i, "firstSeq": s} for i, s in self.anchored],
        }


# -- the stored chain (GET /api/incidents/{id}/verify) -------------------------------------
def verify_stored(events: list[EvidenceEvent], head: tuple[int, str] | None) -> ChainVerdict:
    """``verify_chain`` plus the chain head the store wrote with the last append.

    The head catches what the events alone cannot: events removed from the end, or a chain
    rewritten from some event on with fresh hashes.
    """
    if not events or head is None:
        # An incident is only created after its first events and the chain head exist, so an
        # empty or headless timeline means evidence was removed.
        return ChainVerdict(
            valid=False,
            events=len(events),
            broken_at=1 if not events else events[-1].seq + 1,
            reason="the timeline is empty" if not events else "the chain head is missing",
        )
    verdict = verify_chain(events)
    if not verdict.valid:
        return verdict
    last_seq, last_hash = (events[-1].seq, events[-1].hash) if events else (0, GENESIS_HASH)
    head_seq, head_hash = head
    if head_seq > last_seq:
        return ChainVerdict(
            valid=False,
            events=len(events),
            broken_at=last_seq + 1,
            reason=f"the chain head records {head_seq} events; events after {last_seq} are missing",
        )
    if head_seq < last_seq:
        return ChainVerdict(
            valid=False,
            events=len(events),
            broken_at=head_seq + 1,
            reason=f"events after {head_seq} were not written through the evidence store",
        )
    if head_hash != last_hash:
        return ChainVerdict(
            valid=False,
            events=len(events),
            broken_at=last_seq,
            reason="the last event's hash differs from the chain head (events rewritten)",
        )
    return verdict


def check_stored_chain(store, incident_id: str, attempts: int = 3) -> ChainVerdict:
    """Verify an incident's chain as stored. Events are read before the head, so an append racing
    the check can only make the head look ahead: that case is read again before it is reported."""
    for _ in range(attempts):
        events = store.list_events(incident_id)
        head = store.get_chain_head(incident_id)
        verdict = verify_stored(events, head)
        if verdict.valid or head is None or head[0] <= (events[-1].seq if events else 0):
            return verdict
    return verdict


def verdict_body(verdict: ChainVerdict) -> dict[str, Any]:
    """docs/spec/operator-api.md body: ``{"valid": true}``, or ``{"valid": false, "brokenAt": seq, "reason": ...}``."""
    if verdict.valid:
        return {"valid": True}
    return {"valid": False, "brokenAt": verdict.broken_at, "reason": verdict.reason}


# -- reading ---------------------------------------------------------------------------
def _sniff(fp: TextIO) -> str:
    while True:
        ch = fp.read(1)
        if ch == "":
            raise ExportFormatError("the file is empty")
        if not ch.isspace():
            break
    fp.seek(0)
    return {"[": "json", "{": "jsonl"}.get(ch, "csv")


def _csv_records(fp: TextIO) -> Iterator[tuple[dict[str, Any] | None, int | None, str | None]]:
    reader = csv.reader(fp)
    header = next(reader, None)
    if not header:
        raise ExportFormatError("the CSV file has no header row")
    missing = [c for c in HASHED_COLUMNS if c not in header]
    if missing:
        raise ExportFormatError(f"the CSV header lacks column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    index = {name: header.index(name) for name in HASHED_COLUMNS}
    for cells in reader:
        if not cells:
            continue
        if len(cells) < len(header):
            yield None, reader.line_num, f"the row has {len(cells)} cells, the header {len(header)}"
            continue
        rec: dict[str, Any] = {name: restore_cell(cells[i]) for name, i in index.items()}
        try:
            rec["seq"] = int(rec["seq"])
            rec["data"] = json.loads(rec["data"])
        except ValueError:
            yield {"incidentId": rec["incidentId"]}, reader.line_num, "seq or data is not readable"
            continue
        yield rec, reader.line_num, None


def _jsonl_records(fp: TextIO) -> Iterator[tuple[dict[str, Any] | None, int | None, str | None]]:
    for number, line in enumerate(fp, start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            yield None, number, "the line is not JSON"
            continue
        yield (rec, number, None) if isinstance(rec, dict) else (None, number, "the line is not a JSON object")


def _json_array_records(fp: TextIO) -> Iterator[tuple[dict[str, Any] | None, int | None, str | None]]:
    """Objects of a top-level JSON array, decoded one by one (the file is never loaded whole)."""
    decoder = json.JSONDecoder()
    buf, pos, eof = "", 0, False

    def fill() -> bool:
        nonlocal buf, pos, eof
        more = fp.read(1 << 16)
        buf, pos = buf[pos:] + more, 0
        eof = more == ""
        return not eof

    def skip_ws() -> None:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos].isspace():
                pos += 1
            if pos < len(buf) or not fill():
                return

    skip_ws()
    if buf[pos : pos + 1] != "[":
        raise ExportFormatError("the JSON file is not an array of events")
    pos += 1
    expect_value = True
    while True:
        skip_ws()
        if pos >= len(buf):
            raise ExportFormatError("the JSON array is not closed (file truncated?)")
        ch = buf[pos]
        if ch == "]":
            return
        if ch == "," and not expect_value:
            pos += 1
            expect_value = True
            continue
        while True:
            try:
                rec, end = decoder.raw_decode(buf, pos)
                break
            except ValueError:
                if not fill():
                    raise ExportFormatError("the JSON array holds something that is not JSON") from None
        pos = end
        expect_value = False
        yield (rec, None, None) if isinstance(rec, dict) else (None, None, "an array item is not a JSON object")


def _event(rec: dict[str, Any]) -> EvidenceEvent:
    missing = [c for c in HASHED_COLUMNS if c not in rec]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return EvidenceEvent.model_validate({c: rec[c] for c in HASHED_COLUMNS})


# -- checking --------------------------------------------------------------------------
def verify_records(
    records: Iterator[tuple[dict[str, Any] | None, int | None, str | None]],
    *,
    require_complete: bool = False,
    watch: Mapping[str, int] | None = None,
) -> VerifyReport:
    """Check every incident's chain in the records (file order)."""
    report = VerifyReport()
    for row_number, (rec, line, problem) in enumerate(records, start=1):
        report.rows += 1
        incident_id = str((rec or {}).get("incidentId") or "(unknown incident)")
        chain = report.incidents.get(incident_id)
        if chain is not None and chain.broken:
            continue
        ev = None
        if problem is None and rec is not None:
            try:
                ev = _event(rec)
            except ValueError as exc:  # pydantic's ValidationError is a ValueError
                problem = f"the event's columns are not valid ({str(exc).splitlines()[0]})"
        if ev is None:
            seq = rec.get("seq") if rec and isinstance(rec.get("seq"), int) else None
            report.breaks.append(Break(incident_id, seq, row_number, line, problem or "unreadable row"))
            report.incidents.setdefault(incident_id, _Chain(0, 0, "", 0)).broken = True
            continue
        reason = None
        broken_at = ev.seq
        if chain is None:
            if ev.seq == 1 and ev.prev_hash != GENESIS_HASH:
                reason = "the first event does not start the chain (previous hash is not the genesis hash)"
            elif ev.seq > 1 and require_complete:
                broken_at = 1
                reason = f"events 1 to {ev.seq - 1} are not in the file"
            chain = report.incidents[incident_id] = _Chain(ev.seq, ev.seq, ev.hash, 0)
        elif ev.seq <= chain.last_seq:
            broken_at = chain.last_seq + 1
            reason = f"event {ev.seq} comes after event {chain.last_seq} (re-ordered or duplicated)"
        elif ev.seq > chain.last_seq + 1:
            broken_at = chain.last_seq + 1
            missing = (
                f"event {chain.last_seq + 1} is"
                if ev.seq == chain.last_seq + 2
                else f"events {chain.last_seq + 1} to {ev.seq - 1} are"
            )
            reason = f"{missing} missing or out of order (found event {ev.seq} next)"
        elif ev.prev_hash != chain.last_hash:
            reason = "its previous-hash link does not match the event before it"
        if reason is None and ev.compute_hash() != ev.hash:
            reason = "its content was altered (the hash does not match its fields)"
        if reason is not None:
            chain.broken = True
            report.breaks.append(Break(incident_id, broken_at, row_number, line, reason))
            continue
        chain.last_seq, chain.last_hash = ev.seq, ev.hash
        chain.events += 1
        if watch is not None and watch.get(incident_id) == ev.seq:
            report.watched[incident_id] = ev.hash
    return report


def verify_file(path: str | Path, *, require_complete: bool = False, anchor: str | Path | None = None) -> VerifyReport:
    """Verify an export file (CSV, JSON Lines or JSON); ExportFormatError if it is not one.

    With ``anchor`` (an evidence anchor blob from the archive container, issue 12), every anchored
    incident in the file must hold the anchored event with the anchored hash; with
    ``require_complete`` too, every anchored incident must be in the file and reach its anchored event.
    """
    heads = load_anchor(anchor) if anchor is not None else None
    try:
        with open(path, encoding="utf-8-sig", newline="") as fp:
            kind = _sniff(fp)
            reader = {"csv": _csv_records, "jsonl": _jsonl_records, "json": _json_array_records}[kind]
            watch = {i: h[0] for i, h in heads.items()} if heads is not None else None
            report = verify_records(reader(fp), require_complete=require_complete, watch=watch)
    except UnicodeDecodeError:
        raise ExportFormatError("the file is not UTF-8 text") from None
    if heads is not None:
        check_anchor(report, heads, require_complete=require_complete)
    return report


def load_anchor(path: str | Path) -> dict[str, tuple[int, str]]:
    """incident id → (last seq, last hash) of an anchor file whose own manifest hash checks out."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportFormatError(f"the anchor {path} cannot be read: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("incidents"), dict):
        raise ExportFormatError(f"{path} is not an evidence anchor")
    body = {k: v for k, v in doc.items() if k != "manifestHash"}
    if hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest() != doc.get("manifestHash"):
        raise ExportFormatError(f"the anchor {path} was altered (its manifest hash does not match)")
    return {str(i): (int(h["lastSeq"]), str(h["lastHash"])) for i, h in doc["incidents"].items()}


def check_anchor(report: VerifyReport, heads: Mapping[str, tuple[int, str]], *, require_complete: bool) -> None:
    """Breaks for anchored incidents the file contradicts (rewritten), or, complete, lacks (deleted, truncated)."""
    for incident_id, (seq, anchored_hash) in sorted(heads.items()):
        chain = report.incidents.get(incident_id)
        seen = report.watched.get(incident_id)
        if seen is not None and seen != anchored_hash:
            report.breaks.append(Break(incident_id, seq, 0, None, f"rewritten: event {seq} differs from the anchor"))
        elif seen is None and chain is None and require_complete:
            report.breaks.append(Break(incident_id, None, 0, None, "deleted: anchored but not in the file"))
        elif seen is None and chain is not None and not chain.broken and chain.last_seq < seq and require_complete:
            report.breaks.append(
                Break(incident_id, chain.last_seq + 1, 0, None, f"truncated: the anchor has {seq} events")
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.verify_export",
        description="Verify the hash chains in an exported evidence file, offline.",
    )
    parser.add_argument("file", help="CSV, JSON Lines or JSON file from GET /api/evidence")
    parser.add_argument(
        "--require-complete",
        action="store_true",
        help="fail when an incident's exported events do not start at event 1",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--anchor", help="an evidence anchor (anchors/...json from the archive container) to check against"
    )
    args = parser.parse_args(argv)
    try:
        report = verify_file(args.file, require_complete=args.require_complete, anchor=args.anchor)
    except (OSError, ExportFormatError) as exc:
        print(f"cannot verify {args.file}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    elif report.rows == 0:
        print(f"{args.file}: no events in the file")
    else:
        for b in report.breaks:
            print(b.describe())
        status = (
            "chains intact"
            if not report.breaks
            else f"{len(report.breaks)} of {len(report.incidents)} incident chain(s) BROKEN"
        )
        print(f"{args.file}: {report.rows} event(s) of {len(report.incidents)} incident(s) checked: {status}")
        if report.anchored:
            shown = ", ".join(f"{i} (from event {s})" for i, s in report.anchored[:20])
            more = f" and {len(report.anchored) - 20} more" if len(report.anchored) > 20 else ""
            print(
                f"note: {len(report.anchored)} incident(s) start after event 1 (earlier events are outside "
                f"the exported range; the first exported event is the anchor): {shown}{more}"
            )
    if report.rows == 0:
        return 2
    return 0 if report.valid else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
