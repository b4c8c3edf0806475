"""Auditor export of the evidence timeline (docs/spec/evidence.md): CSV, JSON and JSON Lines, memory-flat.

Rows come from the store in (incident id, seq) order, so every incident's
events are contiguous and in chain order and an exported file can be
verified offline (``python -m shared.verify_export``). Partner and priority
are incident attributes, not event fields: the event scan is merge-joined
with a scan of the incidents table (both ordered by incident id), so memory
stays the same however long the range is.

The column set is a contract (docs/auditor-guide.md): ``COLUMNS``. Every
column but ``partner`` and ``priority`` is part of the event's hash.

CSV cells that a spreadsheet would read as a formula (starting with ``=``,
``+``, ``-``, ``@``, tab or CR) are prefixed with ``'``; a cell that already
starts with ``'`` gets one more, so the guard is reversible: a reader strips
exactly one leading ``'`` (``restore_cell``) and gets the stored value back.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TextIO

from shared.errors import ValidationError
from shared.evidence import EvidenceEvent, canonical_json
from shared.models import Priority, isoformat
from shared.store import EvidenceStore, IncidentIndexRow

COLUMNS: tuple[str, ...] = (
    "incidentId",
    "seq",
    "occurredAt",
    "phase",
    "criterion",
    "actor",
    "actorType",
    "eventType",
    "summary",
    "data",
    "prevHash",
    "hash",
    "partner",
    "priority",
)
HASHED_COLUMNS: tuple[str, ...] = COLUMNS[:12]
# Media types (always UTF-8).
FORMATS: dict[str, str] = {"csv": "text/csv", "json": "application/json", "jsonl": "application/x-ndjson"}
# Characters that make a spreadsheet evaluate a cell; "'" is guarded too so the guard can be undone.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "'")
# ``partner=_soc`` selects incidents that matched no partner (the SOC's own); exported as "".
NO_PARTNER = "_soc"
DEFAULT_PAGE_SIZE = 10_000
MAX_PAGE_SIZE = 50_000
_CHUNK_ROWS = 256  # rows rendered per text chunk: bounds the working buffer, not the range
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")
_PARTNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# -- cells ---------------------------------------------------------------------------
def neutralise_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula (reversible: ``restore_cell``)."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def restore_cell(value: str) -> str:
    """The stored value behind a neutralised CSV cell."""
    return value[1:] if value.startswith("'") else value


# -- the query -----------------------------------------------------------------------
def _field_error(name: str, message: str) -> ValidationError:
    return ValidationError(f"invalid query parameter {name}", [{"field": name, "message": message}])


def parse_time_bound(value: str, name: str, *, end: bool) -> datetime:
    """A ``from``/``to`` value: a date (``to`` covers the whole day) or an ISO 8601 time (naive = UTC).

    Returned as the inclusive start (``end=False``) or the exclusive end (``end=True``).
    """
    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(0), tzinfo=UTC)
            return start + timedelta(days=1) if end else start
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        # Evidence times have millisecond precision: an inclusive end becomes "before the next millisecond".
        moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        return moment + timedelta(milliseconds=1) if end else moment
    except (ValueError, OverflowError):  # OverflowError: a bound at the edge of the calendar (9999-12-31)
        raise _field_error(
            name, "expected a date (YYYY-MM-DD) or an ISO 8601 UTC time between years 1 and 9999"
        ) from None


def parse_format(value: str | None, default: str = "json", name: str = "format") -> str:
    """``csv``, ``json`` or ``jsonl`` (case-insensitive)."""
    fmt = (value or default).strip().lower()
    if fmt not in FORMATS:
        raise _field_error(name, "expected csv, json or jsonl")
    return fmt


def parse_priorities(value: str | None, name: str = "priority") -> tuple[str, ...]:
    """``P1`` or a comma-separated list such as ``P1,P2``."""
    if value is None or not value.strip():
        return ()
    out = []
    for part in value.split(","):
        p = part.strip().upper()
        if p not in Priority.__members__:
            raise _field_error(name, "expected P1, P2, P3 or P4 (comma-separated for several)")
        out.append(p)
    return tuple(sorted(set(out)))


def parse_partner(value: str | None, name: str = "partner") -> str | None:
    """A partner id, ``_soc`` for incidents that matched no partner, or None."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    if v != NO_PARTNER and not _PARTNER.match(v):
        raise _field_error(name, "expected a partner id (letters, digits, '.', '_', '-') or _soc")
    return v


def parse_incident_id(value: str | None, name: str = "incident") -> str | None:
    if value is None or not value.strip():
        return None
    v = value.strip()
    if not _ID.match(v):
        raise _field_error(name, "expected an incident id such as INC-20260101-0123456789ab")
    return v


@dataclass(frozen=True)
class ExportQuery:
    """What an auditor asked for: a time range (start inclusive, end exclusive) and filters."""

    occurred_from: datetime | None = None
    occurred_before: datetime | None = None
    partner: str | None = None
    priorities: tuple[str, ...] = ()
    incident_id: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ExportQuery:
        """Validate ``from``, ``to``, ``partner``, ``priority``, ``incident``; 400 names the field."""
        start = parse_time_bound(params["from"], "from", end=False) if params.get("from") else None
        stop = parse_time_bound(params["to"], "to", end=True) if params.get("to") else None
        if start and stop and stop <= start:
            raise _field_error("to", "must not be before from")
        return cls(
            start,
            stop,
            parse_partner(params.get("partner")),
            parse_priorities(params.get("priority")),
            parse_incident_id(params.get("incident")),
        )

    @property
    def store_partner(self) -> str | None:
        """The partner filter as the store knows it ("" = no partner)."""
        return "" if self.partner == NO_PARTNER else self.partner

    def describe(self) -> dict[str, Any]:
        return {
            "from": isoformat(self.occurred_from) if self.occurred_from else None,
            "before": isoformat(self.occurred_before) if self.occurred_before else None,
            "partner": self.partner,
            "priority": list(self.priorities),
            "incident": self.incident_id,
        }

    def fingerprint(self) -> str:
        """Short digest of the query, bound into continuation tokens."""
        return hashlib.sha256(canonical_json(self.describe()).encode("utf-8")).hexdigest()[:16]


# -- continuation tokens ----------------------------------------------------------------
def encode_cursor(query: ExportQuery, after: tuple[str, int]) -> str:
    """Opaque token: resume after (incident id, seq), valid only with the same query."""
    raw = json.dumps({"v": 1, "q": query.fingerprint(), "i": after[0], "s": after[1]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def decode_cursor(token: str, query: ExportQuery, name: str = "continuationToken") -> tuple[str, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        doc = json.loads(raw.decode("utf-8"))
        incident_id, seq = doc["i"], doc["s"]
        valid = doc.get("v") == 1 and isinstance(incident_id, str) and isinstance(seq, int) and seq >= 0
    except (ValueError, TypeError, KeyError, AttributeError):
        valid = False
    if not valid or not _ID.match(incident_id):
        raise _field_error(name, "not a continuation token this export issued")
    if doc.get("q") != query.fingerprint():
        raise _field_error(name, "the token belongs to an export with other from/to/partner/priority/incident values")
    return incident_id, seq


# -- rows --------------------------------------------------------------------------------
def event_row(ev: EvidenceEvent, incident: IncidentIndexRow | None) -> dict[str, Any]:
    """One export row (``COLUMNS``); ``data`` stays a JSON object here."""
    return {
        "incidentId": ev.incident_id,
        "seq": ev.seq,
        "occurredAt": ev.occurred_at,
        "phase": ev.phase.value,
        "criterion": ev.criterion,
        "actor": ev.actor,
        "actorType": ev.actor_type.value,
        "eventType": ev.event_type,
        "summary": ev.summary,
        "data": ev.data,
        "prevHash": ev.prev_hash,
        "hash": ev.hash,
        "partner": (incident.partner_id or "") if incident else "",
        "priority": incident.priority if incident else "",
    }


def export_rows(
    store: EvidenceStore, query: ExportQuery, after: tuple[str, int] | None = None
) -> Iterator[dict[str, Any]]:
    """Rows of the range in (incident id, seq) order, resuming after ``after``; memory-flat."""
    incidents = store.iter_incident_index(
        partner_id=query.store_partner,
        priorities=query.priorities,
        incident_id=query.incident_id,
        from_incident=after[0] if after else None,
    )
    current = next(incidents, None)
    if current is None:
        return
    events = store.scan_events(
        isoformat(query.occurred_from) if query.occurred_from else None,
        isoformat(query.occurred_before) if query.occurred_before else None,
        after=after,
        incident_id=query.incident_id,
    )
    for ev in events:
        while current is not None and current.incident_id < ev.incident_id:
            current = next(incidents, None)
        if current is None:
            return  # no later incident matches the filters: nothing further can
        if current.incident_id == ev.incident_id:
            yield event_row(ev, current)


def csv_cells(row: Mapping[str, Any]) -> list[str]:
    """A row as neutralised CSV cells (``data`` as canonical JSON, so its hash can be recomputed)."""
    out = []
    for col in COLUMNS:
        value = row[col]
        if col == "data":
            value = canonical_json(value)
        out.append(neutralise_cell(value) if isinstance(value, str) else str(value))
    return out


def json_line(row: Mapping[str, Any]) -> str:
    return json.dumps({c: row[c] for c in COLUMNS}, ensure_ascii=False, separators=(",", ":"), default=str)


def render(rows: Iterable[Mapping[str, Any]], fmt: str, *, bom: bool = False) -> Iterator[str]:
    """The rows as text chunks of ``fmt`` (csv | json | jsonl); each chunk holds a bounded number of rows."""
    fmt = parse_format(fmt)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        if bom:
            buf.write("\ufeff")  # lets spreadsheet programs detect UTF-8
        writer.writerow(COLUMNS)
        for n, row in enumerate(rows, start=1):
            writer.writerow(csv_cells(row))
            if n % _CHUNK_ROWS == 0:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
        yield buf.getvalue()
        return
    parts: list[str] = ["[" if fmt == "json" else ""]
    first = True
    for n, row in enumerate(rows, start=1):
        line = json_line(row)
        if fmt == "json":
            parts.append(("\n" if first else ",\n") + line)
        else:
            parts.append(line + "\n")
        first = False
        if n % _CHUNK_ROWS == 0:
            yield "".join(parts)
            parts.clear()
    if fmt == "json":
        parts.append("\n]\n" if not first else "]\n")
    yield "".join(parts)


@dataclass
class ExportPage:
    """One HTTP page of an export: a bounded body and the cursor of the next page, if any."""

    body: bytes
    content_type: str
    rows: int
    next_after: tuple[str, int] | None = None
    query: ExportQuery = field(default_factory=ExportQuery)

    @property
    def continuation_token(self) -> str | None:
        return encode_cursor(self.query, self.next_after) if self.next_after else None


def export_page(
    store: EvidenceStore,
    query: ExportQuery,
    fmt: str,
    limit: int = DEFAULT_PAGE_SIZE,
    after: tuple[str, int] | None = None,
    *,
    bom: bool = False,
) -> ExportPage:
    """Up to ``limit`` rows after ``after`` rendered as ``fmt``; ``next_after`` is set when more remain.

    Memory is bounded by ``limit`` (the Functions Python worker needs a whole body per response), never
    by the length of the range.
    """
    fmt = parse_format(fmt)
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise _field_error("limit", f"expected a whole number from 1 to {MAX_PAGE_SIZE}")
    source = export_rows(store, query, after)
    taken = 0
    last: tuple[str, int] | None = None
    more = False

    def bounded() -> Iterator[dict[str, Any]]:
        nonlocal taken, last, more
        for row in source:
            if taken == limit:
                more = True  # one row beyond the page exists
                return
            taken += 1
            last = (row["incidentId"], row["seq"])
            yield row

    body = bytearray()
    for chunk in render(bounded(), fmt, bom=bom and after is None):
        body += chunk.encode("utf-8")
    return ExportPage(bytes(body), FORMATS[fmt], taken, last if more else None, query)


def write_export(store: EvidenceStore, query: ExportQuery, fmt: str, out: TextIO, *, bom: bool = False) -> int:
    """Stream the whole range into ``out`` (a file, a socket): memory-flat at any size. Returns rows written."""
    fmt = parse_format(fmt)
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for row in export_rows(store, query):
            count += 1
            yield row

    for chunk in render(counted(), fmt, bom=bom):
        out.write(chunk)
    return count
