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

Rendering (``shared/review/render.py``): Markdown and HTML from this one document model. Every value from
the evidence (titles, summaries, actors, analyst text) is escaped for the target format — nothing a caller
wrote can add markup, links or HTML. The workflow (submissions, overdue watch) is ``shared/review/service.py``.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from typing import Any, Literal

import pydantic
from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from shared.errors import ValidationError
from shared.evidence import ChainVerdict, EvidenceEvent, verify_chain
from shared.models import Incident, Phase, SocModel, isoformat
from shared.sla import add_business_days

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
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_TEXT = 20_000


# -- what analysts submit -----------------------------------------------------------------------
class _Strict(SocModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=False, extra="forbid")


def _clean(value: str | None, limit: int, name: str) -> str | None:
    if value is None:
        return None
    text = CONTROL_CHARS.sub("", value).strip()
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
        text = CONTROL_CHARS.sub("", v).strip()
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
