"""Post-incident review (docs/spec/lifecycle.md Review, docs/spec/evidence.md): built from the incident and its timeline.

The review is never stored as a document: it is derived on demand from the
evidence (incident row, timeline, containment and notification records), so
it always agrees with the hash-chained timeline. What only a person knows —
root cause, impact, eradication, recovery, customer notification, action
items — is submitted with ``POST /api/incidents/{id}/review``; each
submission is itself an evidence event (``review.submitted``, Review phase,
CC7.5) and a later submission overrides the fields it names.

Due date: 5 business days (Mon–Fri, the partner's time zone) after the
incident was resolved, or after it was detected while it is still open. A
review is complete once a root cause and at least one action item are
recorded; an incomplete review past its due date is overdue, and the daily
``review_overdue_watch`` timer flags it once (``review.overdue``).

Rendering: Markdown and HTML from one document model. Every value from the
evidence (titles, summaries, actors, analyst text) is escaped for the target
format — nothing a caller wrote can add markup, links or HTML.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import pydantic
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from shared.errors import ValidationError
from shared.evidence import ChainVerdict, EventDraft, EvidenceEvent, now_ms, verify_chain
from shared.models import ActorType, Incident, Phase, SocModel, isoformat
from shared.notify.incidents import load_incident
from shared.partners import PartnerRegistry
from shared.sla import add_business_days
from shared.store import EvidenceStore

log = logging.getLogger("soc_responder.review")

REVIEW_DUE_BUSINESS_DAYS = 5
SUBMITTED = "review.submitted"
OVERDUE = "review.overdue"
# IngestState partition holding one row per incident the overdue watch is done with.
WATCH_PARTITION = "review-watch"
# The watch looks at incidents created or updated within this many days (it runs daily; the margin
# covers missed runs). Older incidents were settled by earlier runs.
WATCH_LOOKBACK = timedelta(days=60)
ANALYST_FIELDS = ("rootCause", "impact", "eradication", "recovery", "customerNotification", "actionItems")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_TEXT = 20_000


# -- what analysts submit -----------------------------------------------------------------------
class _Strict(SocModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


def _clean(value: str | None, limit: int, name: str) -> str | None:
    if value is None:
        return None
    text = _CONTROL.sub("", value).strip()
    if len(text) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return text or None


class ActionItem(_Strict):
    """Something to do so the incident does not happen again."""

    description: str = Field(min_length=1)
    owner: str | None = None
    due: date | None = None
    status: Literal["open", "done"] = "open"

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        text = _clean(v, 2000, "description")
        if not text:
            raise ValueError("description must not be blank")
        return text

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str | None) -> str | None:
        return _clean(v, 256, "owner")


class ReviewSubmission(_Strict):
    """Body of ``POST /api/incidents/{id}/review``: who, and the fields they fill in."""

    actor: str
    root_cause: str | None = None
    impact: str | None = None
    eradication: str | None = None
    recovery: str | None = None
    customer_notification: str | None = None
    action_items: list[ActionItem] | None = Field(default=None, max_length=100)

    @field_validator("actor")
    @classmethod
    def _actor(cls, v: str) -> str:
        text = _CONTROL.sub("", v).strip()
        if not text:
            raise ValueError("actor must name the person submitting (UPN or email)")
        if len(text) > 256:
            raise ValueError("actor is longer than 256 characters")
        return text

    @field_validator("root_cause", "impact", "eradication", "recovery", "customer_notification")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return _clean(v, _MAX_TEXT, "text")

    @field_validator("action_items", mode="before")
    @classmethod
    def _items(cls, v: Any) -> Any:
        # A plain string is shorthand for {"description": ...}.
        if isinstance(v, list):
            return [{"description": i} if isinstance(i, str) else i for i in v]
        return v

    @model_validator(mode="after")
    def _something(self) -> ReviewSubmission:
        if not self.fields():
            raise ValueError("give at least one of " + ", ".join(ANALYST_FIELDS))
        return self

    def fields(self) -> dict[str, Any]:
        """The submitted review fields (camelCase), without the actor."""
        doc = self.wire()
        return {k: doc[k] for k in ANALYST_FIELDS if doc.get(k) is not None}

    @classmethod
    def parse(cls, body: Any) -> ReviewSubmission:
        """Validate a request body; ValidationError (400) names each bad field."""
        if not isinstance(body, dict):
            raise ValidationError(
                "the body must be a JSON object", [{"field": "body", "message": "expected an object"}]
            )
        try:
            return cls.model_validate(body)
        except pydantic.ValidationError as exc:
            details = []
            for err in exc.errors(include_input=False, include_url=False):
                loc = ".".join(str(x) for x in err["loc"]) or "body"
                msg = err["msg"].removeprefix("Value error, ")
                details.append({"field": loc, "message": "unknown field" if err["type"] == "extra_forbidden" else msg})
            raise ValidationError("invalid review submission", details) from None


# -- the review -------------------------------------------------------------------------------
class ReviewEntry(SocModel):
    """One line of a review section, from the timeline or a record."""

    at: str | None = None
    seq: int | None = None
    phase: str | None = None
    criterion: str | None = None
    actor: str | None = None
    event_type: str | None = None
    summary: str


class SeverityChange(SocModel):
    at: str
    from_priority: str | None = None
    to_priority: str | None = None
    actor: str
    reason: str | None = None


class Contribution(SocModel):
    at: str
    actor: str
    seq: int
    fields: list[str]


class ChainStamp(SocModel):
    valid: bool
    events: int
    broken_at: int | None = None


class PostIncidentReview(SocModel):
    """The review a SOC files for an incident (docs/spec/evidence.md)."""

    incident_id: str
    title: str
    partner_id: str | None = None
    partner_name: str | None = None
    status: str
    priority: str
    priority_label: str
    partner_severity: str
    initial_priority: str | None = None
    severity_changes: list[SeverityChange] = Field(default_factory=list)
    first_activity_at: str
    detected_at: str
    triaged_at: str | None = None
    first_response_at: str | None = None
    acknowledged_at: str | None = None
    acknowledged_by: str | None = None
    resolved_at: str | None = None
    due_at: str
    due_basis: Literal["resolution", "detection"]
    time_zone: str
    complete: bool
    overdue: bool
    missing: list[str] = Field(default_factory=list)
    root_cause: str | None = None
    impact: str | None = None
    eradication: str | None = None
    recovery: str | None = None
    customer_notification: str | None = None
    action_items: list[ActionItem] = Field(default_factory=list)
    containment: list[ReviewEntry] = Field(default_factory=list)
    containment_state: list[ReviewEntry] = Field(default_factory=list)
    recovery_events: list[ReviewEntry] = Field(default_factory=list)
    investigation: list[ReviewEntry] = Field(default_factory=list)
    notifications: list[ReviewEntry] = Field(default_factory=list)
    sla: dict[str, Any] = Field(default_factory=dict)
    contributions: list[Contribution] = Field(default_factory=list)
    timeline: list[ReviewEntry] = Field(default_factory=list)
    chain: ChainStamp
    overdue_flagged_at: str | None = None
    generated_at: str


def review_due(incident: Incident, tz: str) -> tuple[datetime, str]:
    """(due date, basis): 5 business days after resolution, or after detection while open."""
    resolved = resolution_time(incident)
    if resolved is not None:
        return add_business_days(resolved, REVIEW_DUE_BUSINESS_DAYS, tz), "resolution"
    return add_business_days(incident.created_at, REVIEW_DUE_BUSINESS_DAYS, tz), "detection"


def resolution_time(incident: Incident) -> datetime | None:
    if incident.resolved_at is not None:
        return incident.resolved_at
    return None if incident.status.is_open else incident.updated_at


def _entry(ev: EvidenceEvent) -> ReviewEntry:
    return ReviewEntry(
        at=ev.occurred_at,
        seq=ev.seq,
        phase=ev.phase.value,
        criterion=ev.criterion,
        actor=ev.actor,
        event_type=ev.event_type,
        summary=ev.summary,
    )


def _record_entry(rec: dict[str, Any]) -> ReviewEntry:
    what = rec.get("kind") or rec.get("channel") or "record"
    target = rec.get("targetDisplay") or rec.get("target") or rec.get("recipient") or ""
    status = rec.get("status") or "unknown"
    return ReviewEntry(
        at=rec.get("updatedAt") or rec.get("createdAt"),
        event_type=str(what),
        summary=f"{what} {target}: {status}".strip(),
    )


def build_review(
    incident: Incident,
    events: list[EvidenceEvent],
    containment_records: list[dict[str, Any]],
    tz: str,
    now: datetime,
    verdict: ChainVerdict | None = None,
) -> PostIncidentReview:
    """The review from the evidence (pure)."""
    fields: dict[str, Any] = {}
    contributions: list[Contribution] = []
    changes: list[SeverityChange] = []
    initial = None
    flagged_at = None
    sections: dict[Phase, list[ReviewEntry]] = {p: [] for p in Phase}
    for ev in events:
        sections[ev.phase].append(_entry(ev))
        if ev.event_type == SUBMITTED:
            submitted = ev.data.get("fields") or {}
            fields.update({k: v for k, v in submitted.items() if k in ANALYST_FIELDS})
            contributions.append(
                Contribution(
                    at=ev.occurred_at, actor=ev.actor, seq=ev.seq, fields=[k for k in ANALYST_FIELDS if k in submitted]
                )
            )
        elif ev.event_type == "incident.triaged" and initial is None:
            initial = (ev.data.get("triage") or {}).get("priority")
        elif ev.event_type == "priority.changed":
            changes.append(
                SeverityChange(
                    at=ev.occurred_at,
                    from_priority=ev.data.get("from"),
                    to_priority=ev.data.get("to"),
                    actor=ev.actor,
                    reason=ev.data.get("reason"),
                )
            )
        elif ev.event_type == OVERDUE and flagged_at is None:
            flagged_at = ev.occurred_at
    due, basis = review_due(incident, tz)
    items = [ActionItem.model_validate(i) for i in fields.get("actionItems") or []]
    missing = [
        name for name, ok in (("root cause", bool(fields.get("rootCause"))), ("action items", bool(items))) if not ok
    ]
    verdict = verdict or verify_chain(events)  # the caller's stored-head + anchor check when given (issue 12)
    resolved = resolution_time(incident)
    sla = incident.sla
    return PostIncidentReview(
        incident_id=incident.id,
        title=incident.title,
        partner_id=incident.partner_id,
        partner_name=incident.partner_name,
        status=incident.status.value,
        priority=incident.priority.value,
        priority_label=incident.priority.label,
        partner_severity=incident.priority.partner_severity,
        initial_priority=initial or (changes[0].from_priority if changes else incident.priority.value),
        severity_changes=changes,
        first_activity_at=isoformat(incident.first_seen_at),
        detected_at=isoformat(incident.created_at),
        triaged_at=isoformat(sla.triaged_at),
        first_response_at=isoformat(sla.first_response_at) if sla.first_response_at else None,
        acknowledged_at=isoformat(incident.acknowledged_at) if incident.acknowledged_at else None,
        acknowledged_by=incident.acknowledged_by,
        resolved_at=isoformat(resolved) if resolved else None,
        due_at=isoformat(due),
        due_basis=basis,
        time_zone=tz,
        complete=not missing,
        overdue=bool(missing) and now > due,
        missing=missing,
        root_cause=fields.get("rootCause"),
        impact=fields.get("impact"),
        eradication=fields.get("eradication"),
        recovery=fields.get("recovery"),
        customer_notification=fields.get("customerNotification"),
        action_items=items,
        containment=sections[Phase.CONTAIN],
        containment_state=[_record_entry(r) for r in containment_records],
        recovery_events=sections[Phase.RECOVER],
        investigation=sections[Phase.INVESTIGATE],
        notifications=sections[Phase.NOTIFY],
        sla={
            "triageDue": isoformat(sla.triage_due),
            "firstResponseDue": isoformat(sla.first_response_due),
            "responseSlaDue": isoformat(sla.response_sla_due),
            "breaches": list(sla.breaches),
        },
        contributions=contributions,
        timeline=[_entry(ev) for ev in events],
        chain=ChainStamp(
            valid=verdict.valid, events=verdict.events, broken_at=verdict.broken_at, reason=verdict.reason
        ),
        overdue_flagged_at=flagged_at,
        generated_at=isoformat(now),
    )


# -- rendering -----------------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&\"'$])")
_MD_LINE_START = re.compile(r"^([-=>])|^(\d+)([.)])")


def md_inline(value: Any) -> str:
    """A value as Markdown text on one line: every character Markdown (or HTML in it) reacts to is escaped."""
    text = _CONTROL.sub("", "" if value is None else str(value))
    text = re.sub(r"[\r\n\t]+", " ", text).strip()
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_block(value: Any) -> str:
    """Multi-line text as Markdown paragraphs: lines kept, each escaped, none able to start a block construct."""
    out = []
    for line in _CONTROL.sub("", "" if value is None else str(value)).replace("\r\n", "\n").split("\n"):
        escaped = _MD_SPECIAL.sub(r"\\\1", line.strip())
        # "-", "=", ">" and "1." open lists, headings, quotes; a backslash before the punctuation keeps them text.
        out.append(
            _MD_LINE_START.sub(lambda m: "\\" + m.group(1) if m.group(1) else m.group(2) + "\\" + m.group(3), escaped)
        )
    return "  \n".join(out)


@dataclass
class _Section:
    title: str
    kind: str  # kv | text | table | list
    rows: list[list[Any]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    text: str | None = None
    empty: str = "Nothing recorded."


def _sections(r: PostIncidentReview) -> list[_Section]:
    due_note = f"{REVIEW_DUE_BUSINESS_DAYS} business days after {r.due_basis} ({r.time_zone})"
    state = "complete" if r.complete else "incomplete — missing " + " and ".join(r.missing)
    if r.overdue:
        state += " — OVERDUE"
    chain = (
        f"intact ({r.chain.events} events)"
        if r.chain.valid
        else f"BROKEN at event {r.chain.broken_at} — see GET /api/incidents/{r.incident_id}/verify"
    )
    facts = [
        ["Incident", r.incident_id],
        ["Title", r.title],
        ["Partner", r.partner_name or r.partner_id or "none (SOC's own contacts)"],
        ["Status", r.status],
        ["Priority", f"{r.priority} {r.priority_label} (partner severity {r.partner_severity})"],
        ["First activity", r.first_activity_at],
        ["Detected", r.detected_at],
        ["Triaged", r.triaged_at or "—"],
        ["First response", r.first_response_at or "—"],
        ["Acknowledged", f"{r.acknowledged_at} by {r.acknowledged_by}" if r.acknowledged_at else "—"],
        ["Resolved", r.resolved_at or "not resolved yet"],
        ["Review due", f"{r.due_at} ({due_note})"],
        ["Review", state],
        ["Evidence chain", chain],
    ]
    sev = [["initial", r.initial_priority or "—", "", "triage"]] + [
        [c.at, f"{c.from_priority} → {c.to_priority}", c.actor, c.reason or ""] for c in r.severity_changes
    ]
    items = [
        [i + 1, a.description, a.owner or "", a.due.isoformat() if a.due else "", a.status]
        for i, a in enumerate(r.action_items)
    ]

    def events(entries: list[ReviewEntry]) -> list[list[Any]]:
        return [[e.at or "", e.actor or "", e.event_type or "", e.summary] for e in entries]

    ev_header = ["Time (UTC)", "Actor", "Event", "Summary"]
    return [
        _Section("Summary", "kv", facts),
        _Section("Severity and its changes", "table", sev, ["Time (UTC)", "Priority", "Actor", "Reason"]),
        _Section("Root cause", "text", text=r.root_cause, empty="Not recorded yet (required)."),
        _Section("Impact", "text", text=r.impact, empty="Not recorded yet."),
        _Section("Containment actions", "table", events(r.containment), ev_header),
        _Section(
            "Containment state",
            "table",
            [[e.at or "", e.summary] for e in r.containment_state],
            ["Updated (UTC)", "Action and state"],
        ),
        _Section("Eradication", "text", text=r.eradication, empty="Not recorded yet."),
        _Section("Recovery", "text", text=r.recovery, empty="Not recorded yet."),
        _Section("Recovery events", "table", events(r.recovery_events), ev_header),
        _Section("Investigation", "table", events(r.investigation), ev_header),
        _Section("Notification record", "table", events(r.notifications), ev_header),
        _Section("Customer notification", "text", text=r.customer_notification, empty="Not recorded yet."),
        _Section(
            "Action items",
            "table",
            items,
            ["#", "Action", "Owner", "Due", "Status"],
            empty="None recorded yet (required).",
        ),
        _Section(
            "SLA",
            "kv",
            [
                ["Triage due", r.sla.get("triageDue")],
                ["First response due", r.sla.get("firstResponseDue")],
                ["Response SLA due", r.sla.get("responseSlaDue")],
                ["Breaches recorded", ", ".join(r.sla.get("breaches") or []) or "none"],
            ],
        ),
        _Section(
            "Review contributions",
            "table",
            [[c.at, c.actor, c.seq, ", ".join(c.fields)] for c in r.contributions],
            ["Time (UTC)", "Actor", "Event", "Fields"],
        ),
        _Section(
            "Timeline",
            "table",
            [[e.seq, e.at, e.phase, e.criterion, e.actor, e.event_type, e.summary] for e in r.timeline],
            ["#", "Time (UTC)", "Phase", "SOC 2", "Actor", "Event", "Summary"],
        ),
    ]


def render_markdown(r: PostIncidentReview) -> str:
    """The review as Markdown (every value escaped)."""
    out = [f"# Post-incident review: {md_inline(r.title)}", ""]
    for s in _sections(r):
        out += [f"## {s.title}", ""]
        if s.kind == "text":
            out.append(md_block(s.text) if s.text else f"_{s.empty}_")
        elif s.kind == "kv":
            out += ["| Field | Value |", "|---|---|"] + [f"| {md_inline(k)} | {md_inline(v)} |" for k, v in s.rows]
        elif not s.rows:
            out.append(f"_{s.empty}_")
        else:
            out += ["| " + " | ".join(s.header) + " |", "|" + "---|" * len(s.header)]
            out += ["| " + " | ".join(md_inline(c) for c in row) + " |" for row in s.rows]
        out.append("")
    out.append(
        f"_Generated {md_inline(r.generated_at)} from the incident's evidence timeline "
        f"(SOC 2 CC7.3 evaluation, CC7.4 response, CC7.5 recovery)._"
    )
    return "\n".join(out) + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#1b1b1b}table{border-collapse:collapse;"
    "margin:.5em 0 1.5em}th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}.empty{color:#666;font-style:italic}.text{white-space:pre-wrap}"
)


def render_html(r: PostIncidentReview) -> str:
    """The review as a standalone HTML page (every value escaped; no script, no external resources)."""
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Post-incident review {e(r.incident_id)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Post-incident review: {e(r.title)}</h1>",
    ]
    for s in _sections(r):
        out.append(f"<h2>{e(s.title)}</h2>")
        if s.kind == "text":
            out.append(f'<div class="text">{e(s.text)}</div>' if s.text else f'<p class="empty">{e(s.empty)}</p>')
        elif s.kind == "kv":
            out.append(
                "<table>"
                + "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>" for k, v in s.rows)
                + "</table>"
            )
        elif not s.rows:
            out.append(f'<p class="empty">{e(s.empty)}</p>')
        else:
            head = "".join(f"<th>{e(h)}</th>" for h in s.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{e('' if c is None else str(c))}</td>" for c in row) + "</tr>" for row in s.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append(
        f'<p class="empty">Generated {e(r.generated_at)} from the incident\'s evidence timeline '
        "(SOC 2 CC7.3 evaluation, CC7.4 response, CC7.5 recovery).</p></body></html>"
    )
    return "\n".join(out) + "\n"


# -- the service ----------------------------------------------------------------------------------
@dataclass
class OverdueWatchReport:
    checked: int = 0
    flagged: list[str] = field(default_factory=list)
    complete: int = 0
    not_due: int = 0
    errors: list[str] = field(default_factory=list)


class ReviewService:
    """Builds reviews, records analyst submissions, flags overdue reviews."""

    def __init__(
        self,
        store: EvidenceStore,
        partners: PartnerRegistry,
        clock: Callable[[], datetime] = now_ms,
        integrity: Callable[[str, list[EvidenceEvent]], ChainVerdict] | None = None,
    ):
        self.store, self.partners, self.clock = store, partners, clock
        # The same check as GET /verify: chain, stored head and the latest anchor (wired by shared/runtime.py).
        self.integrity = integrity

    def _tz(self, incident: Incident) -> str:
        partner = self.partners.get(incident.partner_id)
        return partner.timezone if partner else self.partners.soc.timezone

    def _build(self, incident: Incident, events: list[EvidenceEvent]) -> PostIncidentReview:
        records = self.store.list_records("ContainmentActions", incident.id)
        verdict = self.integrity(incident.id, events) if self.integrity else None
        return build_review(incident, events, records, self._tz(incident), self.clock(), verdict)

    def review(self, incident_id: str) -> PostIncidentReview:
        """The current review of an incident (IncidentNotFoundError if unknown)."""
        incident = load_incident(self.store, incident_id)
        return self._build(incident, self.store.list_events(incident_id))

    def submit(self, incident_id: str, submission: ReviewSubmission) -> tuple[PostIncidentReview, EvidenceEvent]:
        """Record an analyst's review fields as an evidence event; returns the updated review and the event."""
        load_incident(self.store, incident_id)
        fields = submission.fields()
        names = ", ".join(fields)
        [event] = self.store.append_events(
            incident_id,
            [
                EventDraft(
                    event_type=SUBMITTED,
                    phase=Phase.REVIEW,
                    occurred_at=self.clock(),
                    actor=submission.actor,
                    actor_type=ActorType.ANALYST,
                    summary=f"Post-incident review updated by {submission.actor[:256]}: {names}",
                    data={"fields": fields},
                )
            ],
        )
        review = self.review(incident_id)
        if review.complete:
            self._settle(incident_id, "complete")
        return review, event

    def _settle(self, incident_id: str, state: str) -> None:
        self.store.put_record(
            "IngestState", WATCH_PARTITION, incident_id, {"state": state, "updatedAt": isoformat(self.clock())}
        )

    def flag_overdue(self) -> OverdueWatchReport:
        """Flag, once, every review past its due date and still incomplete (daily timer)."""
        report = OverdueWatchReport()
        since = isoformat(self.clock() - WATCH_LOOKBACK)
        for row in self.store.iter_incident_index(touched_since=since):
            report.checked += 1
            try:
                marker = self.store.get_record("IngestState", WATCH_PARTITION, row.incident_id)
                if marker and marker[0].get("state") in ("complete", "flagged"):
                    continue
                review = self.review(row.incident_id)
                if review.complete:
                    report.complete += 1
                    self._settle(row.incident_id, "complete")
                elif not review.overdue:
                    report.not_due += 1
                else:
                    # The timer is a singleton: checking the timeline first is enough to flag once, also
                    # after a run that stopped between the event and the marker.
                    if review.overdue_flagged_at is None:
                        self.store.append_events(
                            row.incident_id,
                            [
                                EventDraft(
                                    event_type=OVERDUE,
                                    phase=Phase.REVIEW,
                                    occurred_at=self.clock(),
                                    summary=(
                                        f"Post-incident review overdue: due {review.due_at}, missing "
                                        + " and ".join(review.missing)
                                    ),
                                    data={
                                        "dueAt": review.due_at,
                                        "dueBasis": review.due_basis,
                                        "missing": review.missing,
                                    },
                                )
                            ],
                        )
                        report.flagged.append(row.incident_id)
                    self._settle(row.incident_id, "flagged")
            except Exception as exc:
                log.warning("review watch: %s failed: %s", row.incident_id, exc)
                report.errors.append(f"{row.incident_id}: {type(exc).__name__}")
        return report
