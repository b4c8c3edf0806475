"""The source closed an incident after we recorded it (docs/spec/triage.md, source lifecycle)."""

from __future__ import annotations

from datetime import datetime

from shared import source_lifecycle as lifecycle
from shared.ingest.records import (
    IngestOutcome,
)
from shared.models import (
    IncidentStatus,
    Priority,
)
from shared.store import EvidenceStore


def close_at_source(
    store: EvidenceStore, incident_id: str, reason: str, actor: str, at: datetime, alert_key: str = ""
) -> IngestOutcome:
    """The source closed the incident later (docs/spec/triage.md, ``shared/source_lifecycle.py``): ours closes
    and its phone escalation stops (``stop_escalation``); containment stays in place."""
    closed, current = lifecycle.close_incident(store, incident_id, reason, actor, at, alert_key)
    if current is None:
        return IngestOutcome(incident_id, Priority.P4, IncidentStatus.CLOSED.value, "duplicate", 0, alert_key=alert_key)
    if not closed:  # already closed: nothing more to do
        return IngestOutcome(
            incident_id, current.priority, current.status.value, "duplicate", current.score, alert_key=alert_key
        )
    return IngestOutcome(
        incident_id,
        current.priority,
        current.status.value,
        "closed",
        current.score,
        alert_key=alert_key,
        notes=[f"closed at the source: {reason}"],
        stop_escalation=True,
    )
