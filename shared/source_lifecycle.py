"""The source's lifecycle of an incident (docs/spec/triage.md, issue 13): what ingest records for an alert that
arrives already closed or is a test, and what it does when the source closes an incident later.

Kept apart from ``shared/ingest.py`` (which decides *when*); this module decides *what is written*: the
incident's status and marks, and the evidence. Every write is under the incident's ETag.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shared.etag import Versioned, update_under_etag
from shared.evidence import EventDraft
from shared.models import Incident, IncidentStatus, Phase
from shared.source_judgement import SourceJudgement
from shared.store import EvidenceStore

RECORDED_ONLY = "incident.recorded-only"


def recorded_only(incident: Incident, judgement: SourceJudgement, received: datetime) -> Incident:
    """An incident the source already closed, or a test: kept as evidence, never worked.

    Closed at the source → ``closed``; a test or sample → ``resolved`` (P4 by scoring), marked ``test``.
    Neither is open, so the SLA watchdog neither flags nor re-drives it and no later alert groups into it.
    """
    status = IncidentStatus.CLOSED if judgement.closed else IncidentStatus.RESOLVED
    return incident.model_copy(
        update={"status": status, "resolved_at": received, "extra": {**incident.extra, **judgement.wire()}}
    )


def recorded_only_evidence(judgement: SourceJudgement, at: datetime) -> list[EventDraft]:
    """``incident.recorded-only``: why nothing was started (none when something will be)."""
    if not judgement.starts_nothing:
        return []
    window = judgement.suppressed_by or {}
    suppressed = f"maintenance window {window.get('id')} until {window.get('until')}: {window.get('reason')}"
    why = "; ".join(r for r in (judgement.closed_reason, judgement.test_reason, suppressed if window else None) if r)
    kind = "closed at the source" if judgement.closed else "a test alert" if judgement.test else "suppressed"
    return [
        EventDraft(
            event_type=RECORDED_ONLY,
            phase=Phase.TRIAGE,
            occurred_at=at,
            summary=f"Recorded only, {kind}: no runbook, containment or notification ({why})",
            data=judgement.wire(),
        )
    ]


def left_at_the_source(incident: Incident, events: Iterable[Any]) -> bool:
    """Write-back leaves this incident alone: recorded only (closed at the source on arrival, or a test) and
    not worked since. The source's own state is the record there: a comment, our labels or a resolve on a
    sample alert would only change what the source's owner sees (issue 13). Once reopened and worked, it is
    projected like any other incident."""
    if incident.status.is_open:
        return False
    return any(getattr(e, "event_type", "") == RECORDED_ONLY for e in events)


def close_incident(
    store: EvidenceStore, incident_id: str, reason: str, actor: str, at: datetime, alert_key: str = ""
) -> tuple[bool, Incident | None]:
    """Close an open incident because its source closed it; (closed by this call, the incident now).

    Containment is left as it is (``"containment": "kept"``): a release is its own, deliberate request.
    """

    def close(incident: Incident) -> Incident | None:
        if not incident.status.is_open:
            return None
        return incident.model_copy(
            update={
                "status": IncidentStatus.CLOSED,
                "resolved_at": at,
                "updated_at": at,
                "extra": {**incident.extra, "closedAtSource": True, "closedReason": reason},
            }
        )

    def read() -> Versioned[Incident] | None:
        got = store.get_incident(incident_id)
        return Versioned(got[0], got[1]) if got else None

    result = update_under_etag(
        read,
        lambda incident, etag: store.replace_incident(incident, etag or ""),
        close,
        what=f"incident {incident_id}",
    )
    if result is None:
        return False, None
    if not result.written:
        return False, result.after
    store.append_events(
        incident_id,
        [
            EventDraft(
                event_type="incident.closed-at-source",
                phase=Phase.RECOVER,
                occurred_at=at,
                summary=f"Closed because the source closed it ({reason}); phone escalation stops, containment stays",
                data={"reason": reason, "source": actor, "alertKey": alert_key, "containment": "kept"},
            )
        ],
    )
    return True, result.after


def record_one_alert_closed(
    store: EvidenceStore, incident: Incident, alert_key: str, source: str, reason: str, at: datetime
) -> None:
    """One alert of a multi-alert incident closed at its source: evidenced; the incident stays open."""
    store.append_events(
        incident.id,
        [
            EventDraft(
                event_type="alert.closed-at-source",
                phase=Phase.DETECT,
                occurred_at=at,
                summary=f"One of the incident's {incident.alert_count} alerts was closed at the source ({reason}); "
                "the incident stays open for the others",
                data={"alertKey": alert_key, "reason": reason, "source": source},
            )
        ],
    )
