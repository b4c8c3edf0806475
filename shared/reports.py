"""SLA report (docs/spec/triage.md, docs/spec/evidence.md): per period and partner, the two service-commitment clocks and the
per-priority response SLA, with every breach listed.

- Time to triage: receipt → triage decision, target 15 minutes.
- Time to first response: receipt → first action or notification, target 30 minutes.
- Response SLA: receipt → first response, against the priority's SLA (P1 30 min,
  P2 2 h, P3 24 h, P4 next business day in the partner's time zone) — the due
  time stamped on the incident (``sla.responseSlaDue``, recomputed on priority changes).

The first response is the incident's ``sla.firstResponseAt`` when stamped; otherwise
the earliest Contain or Notify event that records something done (not a plan, a
hold, a skip or a failure). A clock with no response yet is "pending" until its due
time passes, then a breach. Breaches the SLA watchdog recorded on the incident are
listed too.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from shared.evidence import EvidenceEvent, now_ms
from shared.export import neutralise_cell
from shared.models import Incident, Phase, Priority, SocModel, isoformat
from shared.partners import PartnerRegistry
from shared.sla import FIRST_RESPONSE_TARGET, RESPONSE_SLA, TRIAGE_TARGET
from shared.store import EvidenceStore

# Event types that record an intention or a non-action, not a response.
_NOT_A_RESPONSE = (
    ".planned",
    ".held",
    ".skipped",
    ".failed",
    ".kept",
    ".pending",
    ".scheduled",
    ".unchanged",
    ".rejected",
    ".withdrawn",
    ".start-failed",
)
_MARGIN = timedelta(days=1)  # the store filters createdAt as text: widen, then filter on parsed times


def first_response_from_timeline(events: Iterable[EvidenceEvent]) -> datetime | None:
    """The earliest Contain/Notify event that records an action or a notification done."""
    for ev in events:
        if ev.phase in (Phase.CONTAIN, Phase.NOTIFY) and not ev.event_type.endswith(_NOT_A_RESPONSE):
            return datetime.fromisoformat(ev.occurred_at.replace("Z", "+00:00"))
    return None


class ClockResult(SocModel):
    """One clock of one incident."""

    due_at: str
    at: str | None = None
    seconds: float | None = None
    state: str  # met | breached | pending


class IncidentSla(SocModel):
    incident_id: str
    partner_id: str | None = None
    partner_name: str | None = None
    priority: str
    status: str
    title: str
    received_at: str
    triage: ClockResult
    first_response: ClockResult
    response_sla: ClockResult
    first_response_source: str  # incident | timeline | none
    recorded_breaches: list[str] = Field(default_factory=list)


class Breach(SocModel):
    incident_id: str
    partner_id: str | None = None
    priority: str
    clock: str  # triage | first-response | response-sla | recorded
    due_at: str | None = None
    at: str | None = None
    late_by_seconds: float | None = None
    detail: str


class ClockSummary(SocModel):
    incidents: int = 0
    met: int = 0
    breached: int = 0
    pending: int = 0
    median_seconds: float | None = None
    p90_seconds: float | None = None


class PartnerSla(SocModel):
    partner_id: str | None = None
    partner_name: str
    incidents: int
    triage: ClockSummary
    first_response: ClockSummary
    response_sla: dict[str, ClockSummary]


class SlaReport(SocModel):
    period_from: str
    period_to: str
    partner: str | None = None
    generated_at: str
    targets: dict[str, Any]
    totals: PartnerSla
    partners: list[PartnerSla]
    breaches: list[Breach]
    incidents: list[IncidentSla]


def _clock(due: datetime, at: datetime | None, start: datetime, now: datetime) -> ClockResult:
    if at is None:
        return ClockResult(due_at=isoformat(due), state="breached" if now > due else "pending")
    return ClockResult(
        due_at=isoformat(due),
        at=isoformat(at),
        seconds=round((at - start).total_seconds(), 3),
        state="met" if at <= due else "breached",
    )


def incident_sla(
    incident: Incident, now: datetime, first_response: datetime | None = None, source: str = "incident"
) -> IncidentSla:
    """The three clocks of one incident (pure)."""
    sla = incident.sla
    received = sla.received_at
    responded = sla.first_response_at or first_response
    if sla.first_response_at is None:
        source = source if first_response else "none"
    return IncidentSla(
        incident_id=incident.id,
        partner_id=incident.partner_id,
        partner_name=incident.partner_name,
        priority=incident.priority.value,
        status=incident.status.value,
        title=incident.title,
        received_at=isoformat(received),
        triage=_clock(sla.triage_due, sla.triaged_at, received, now),
        first_response=_clock(sla.first_response_due, responded, received, now),
        response_sla=_clock(sla.response_sla_due, responded, received, now),
        first_response_source=source,
        recorded_breaches=list(sla.breaches),
    )


def _breaches(row: IncidentSla) -> Iterator[Breach]:
    names = {
        "triage": "triage within 15 minutes",
        "first-response": "first response within 30 minutes",
        "response-sla": f"{row.priority} response SLA",
    }
    for clock, result in (
        ("triage", row.triage),
        ("first-response", row.first_response),
        ("response-sla", row.response_sla),
    ):
        if result.state != "breached":
            continue
        late = None
        if result.at:
            late = round(
                (
                    datetime.fromisoformat(result.at.replace("Z", "+00:00"))
                    - datetime.fromisoformat(result.due_at.replace("Z", "+00:00"))
                ).total_seconds(),
                3,
            )
        detail = (
            f"{names[clock]} missed by {late:.0f} s"
            if late is not None
            else f"{names[clock]}: no response recorded by {result.due_at}"
        )
        yield Breach(
            incident_id=row.incident_id,
            partner_id=row.partner_id,
            priority=row.priority,
            clock=clock,
            due_at=result.due_at,
            at=result.at,
            late_by_seconds=late,
            detail=detail,
        )
    for text in row.recorded_breaches:
        yield Breach(
            incident_id=row.incident_id,
            partner_id=row.partner_id,
            priority=row.priority,
            clock="recorded",
            detail=f"recorded by the SLA watchdog: {text}",
        )


def _summary(results: list[ClockResult]) -> ClockSummary:
    secs = sorted(r.seconds for r in results if r.seconds is not None)
    p90 = secs[math.ceil(0.9 * len(secs)) - 1] if secs else None  # nearest rank
    return ClockSummary(
        incidents=len(results),
        met=sum(r.state == "met" for r in results),
        breached=sum(r.state == "breached" for r in results),
        pending=sum(r.state == "pending" for r in results),
        median_seconds=statistics.median(secs) if secs else None,
        p90_seconds=p90,
    )


def _partner_summary(partner_id: str | None, name: str, rows: list[IncidentSla]) -> PartnerSla:
    by_priority = {
        p.value: _summary([r.response_sla for r in rows if r.priority == p.value])
        for p in Priority
        if any(r.priority == p.value for r in rows)
    }
    return PartnerSla(
        partner_id=partner_id,
        partner_name=name,
        incidents=len(rows),
        triage=_summary([r.triage for r in rows]),
        first_response=_summary([r.first_response for r in rows]),
        response_sla=by_priority,
    )


def targets() -> dict[str, Any]:
    """The service commitments the report measures against."""
    return {
        "triageSeconds": TRIAGE_TARGET.total_seconds(),
        "firstResponseSeconds": FIRST_RESPONSE_TARGET.total_seconds(),
        "responseSla": {
            **{p.value: f"{int(d.total_seconds())} s" for p, d in RESPONSE_SLA.items()},
            "P4": "next business day (close of business, partner time zone)",
        },
    }


def build_report(
    rows: list[IncidentSla],
    period_from: datetime,
    period_to: datetime,
    partner: str | None,
    registry: PartnerRegistry | None,
    now: datetime,
) -> SlaReport:
    """Summaries per partner and overall, and the breach list (pure)."""
    groups: dict[str | None, list[IncidentSla]] = {}
    for r in rows:
        groups.setdefault(r.partner_id, []).append(r)

    def name(pid: str | None) -> str:
        p = registry.get(pid) if registry else None
        if p:
            return p.name
        if pid:
            return next((r.partner_name for r in groups.get(pid, []) if r.partner_name), pid)
        return registry.soc.name if registry else "SOC (no partner)"

    partners = [_partner_summary(pid, name(pid), groups[pid]) for pid in sorted(groups, key=lambda k: k or "")]
    return SlaReport(
        period_from=isoformat(period_from),
        period_to=isoformat(period_to),
        partner=partner,
        generated_at=isoformat(now),
        targets=targets(),
        totals=_partner_summary(None, "all", rows),
        partners=partners,
        breaches=[b for r in rows for b in _breaches(r)],
        incidents=rows,
    )


class SlaReporter:
    """Reads incidents received in a period and reports their SLA clocks."""

    def __init__(self, store: EvidenceStore, partners: PartnerRegistry, clock: Callable[[], datetime] = now_ms):
        self.store, self.partners, self.clock = store, partners, clock

    def report(self, period_from: datetime, period_to: datetime, partner: str | None = None) -> SlaReport:
        """Incidents received in [from, to), optionally of one partner (``""`` = no partner)."""
        now = self.clock()
        rows: list[IncidentSla] = []
        for inc in self.store.find_incidents(
            partner_id=partner,
            created_from=isoformat(period_from - _MARGIN),
            created_before=isoformat(period_to + _MARGIN),
        ):
            received = inc.sla.received_at.astimezone(UTC)
            if not period_from <= received < period_to:
                continue
            responded, source = None, "incident"
            if inc.sla.first_response_at is None:
                responded = first_response_from_timeline(self.store.list_events(inc.id))
                source = "timeline"
            rows.append(incident_sla(inc, now, responded, source))
        rows.sort(key=lambda r: (r.received_at, r.incident_id))
        return build_report(rows, period_from, period_to, partner, self.partners, now)


CSV_COLUMNS = (
    "incidentId",
    "partner",
    "priority",
    "status",
    "receivedAt",
    "triageAt",
    "triageSeconds",
    "triage",
    "firstResponseAt",
    "firstResponseSeconds",
    "firstResponse",
    "responseSlaDue",
    "responseSla",
    "firstResponseSource",
    "breaches",
)


def report_csv_rows(report: SlaReport) -> Iterator[list[str]]:
    """The per-incident rows of a report as neutralised CSV cells (header first)."""
    yield list(CSV_COLUMNS)
    breaches: dict[str, list[str]] = {}
    for b in report.breaches:
        breaches.setdefault(b.incident_id, []).append(b.detail)
    for r in report.incidents:
        cells = [
            r.incident_id,
            r.partner_id or "",
            r.priority,
            r.status,
            r.received_at,
            r.triage.at or "",
            "" if r.triage.seconds is None else str(r.triage.seconds),
            r.triage.state,
            r.first_response.at or "",
            "" if r.first_response.seconds is None else str(r.first_response.seconds),
            r.first_response.state,
            r.response_sla.due_at,
            r.response_sla.state,
            r.first_response_source,
            "; ".join(breaches.get(r.incident_id, [])),
        ]
        yield [neutralise_cell(c) for c in cells]
