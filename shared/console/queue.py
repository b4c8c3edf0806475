"""The console's queue (issue 16): open incidents, those that need a decision first, one page at a time.

Reads the store's light incident index (``iter_incident_index``: partner, priority, status, times,
the containment marker — no document parse) to filter and order, then loads the documents of ONE page
only. What needs a person first: incidents held for approval (status ``held``, or held actions) and
incidents whose containment failed — read from the incident's own marker (``containmentAttention``,
set under its ETag whenever containment's outcome is written: ``shared.containment.incident_status``),
so the queue costs one index query whatever the number of open P1s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from shared.errors import ValidationError
from shared.models import Incident, IncidentStatus, Priority
from shared.store import EvidenceStore, IncidentIndexRow

PAGE_SIZE = 50
OPEN = "open"  # the status filter's default: every status that is still open
_STATUSES = {s.value for s in IncidentStatus} | {OPEN, "all"}
_PARTNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class QueueQuery:
    partner: str | None = None
    priority: str | None = None
    status: str = OPEN
    search: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: dict[str, str]) -> QueueQuery:
        """Query-string filters → a query; a bad value is a 400 naming the parameter."""

        def get(name: str) -> str | None:
            value = (params.get(name) or "").strip()
            return value or None

        partner, priority, status, search = get("partner"), get("priority"), get("status") or OPEN, get("q")
        if partner is not None and not _PARTNER.fullmatch(partner):
            raise ValidationError("invalid partner", [{"field": "partner", "message": "a partner id"}])
        if priority is not None:
            priority = priority.upper()
            if priority not in Priority.__members__:
                raise ValidationError("invalid priority", [{"field": "priority", "message": "P1, P2, P3 or P4"}])
        if status.lower() not in _STATUSES:
            raise ValidationError(
                "invalid status", [{"field": "status", "message": f"one of {', '.join(sorted(_STATUSES))}"}]
            )
        if search is not None and len(search) > 200:
            raise ValidationError("search too long", [{"field": "q", "message": "at most 200 characters"}])
        raw_page = get("page") or "1"
        if not raw_page.isdigit() or not 1 <= int(raw_page) <= 100_000:
            raise ValidationError("invalid page", [{"field": "page", "message": "a page number from 1"}])
        return cls(partner, priority, status.lower(), search, int(raw_page))

    def wants(self, row: IncidentIndexRow) -> bool:
        if self.status == OPEN:
            return IncidentStatus(row.status).is_open
        return self.status == "all" or row.status == self.status


@dataclass(frozen=True)
class QueueRow:
    incident: Incident
    attention: str | None  # "held for approval", "containment failed", or None


@dataclass(frozen=True)
class QueuePage:
    query: QueueQuery
    rows: list[QueueRow]
    total: int
    pages: int
    partners: list[str] = field(default_factory=list)


def _attention(row: IncidentIndexRow) -> str | None:
    if row.status == IncidentStatus.HELD.value:
        return "held for approval"
    if IncidentStatus(row.status).is_open:
        if row.containment == "held":
            return "held for approval"
        if row.containment == "failed":
            return "containment failed"
    return None


def load_queue(store: EvidenceStore, query: QueueQuery) -> QueuePage:
    """One page of the queue: held and failed first, then by priority, then oldest first."""
    rows = [
        r
        for r in store.iter_incident_index(
            partner_id=query.partner, priorities=[query.priority] if query.priority else None
        )
        if query.wants(r)
    ]
    partners = sorted({r.partner_id for r in rows if r.partner_id})
    docs: dict[str, Incident] = {}
    if query.search:
        # Titles are a column of the index rows: the search parses no document. Only rows read without the
        # column fall back to ONE streamed query of the filtered documents, never a point read per row.
        needle = query.search.casefold()
        found = {r.incident_id for r in rows if r.title is not None and needle in r.title.casefold()}
        untitled = {r.incident_id for r in rows if r.title is None}
        if untitled:
            for doc in store.find_incidents(
                partner_id=query.partner, priorities=[query.priority] if query.priority else None
            ):
                if doc.id in untitled and needle in doc.title.casefold():
                    docs[doc.id] = doc
                    found.add(doc.id)
        rows = [r for r in rows if needle in r.incident_id.casefold() or r.incident_id in found]
    attention = {r.incident_id: _attention(r) for r in rows}
    rows.sort(key=lambda r: (attention[r.incident_id] is None, r.priority, r.created_at, r.incident_id))
    total = len(rows)
    pages = max(1, -(-total // PAGE_SIZE))
    start = (min(query.page, pages) - 1) * PAGE_SIZE
    out = []
    for r in rows[start : start + PAGE_SIZE]:
        inc = docs.get(r.incident_id)
        if inc is None:
            got = store.get_incident(r.incident_id)
            if got is None:
                continue  # purged between the index read and now
            inc = got[0]
        out.append(QueueRow(inc, attention[r.incident_id]))
    return QueuePage(query, out, total, pages, partners)


def sla_due(incident: Incident) -> tuple[str, datetime]:
    """The clock that matters now: first response until someone responds, then the response SLA."""
    if incident.sla.first_response_at is None:
        return "first response", incident.sla.first_response_due
    return "response SLA", incident.sla.response_sla_due


def remaining(due: datetime, now: datetime) -> str:
    """ "due in 1h 05m" / "overdue by 12m", in words a screen reader reads as they are."""
    seconds = int((due - now).total_seconds())
    span = abs(seconds)
    days, rest = divmod(span, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    text = f"{days}d {hours}h" if days else f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"
    return f"due in {text}" if seconds >= 0 else f"OVERDUE by {text}"
