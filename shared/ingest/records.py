"""What ingest records: the outcome of one delivery, an incident opened from an alert, an alert merged into
an incident, and the evidence of an alert (pure: plain functions of data and time)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.etag import Versioned
from shared.models import (
    Alert,
    AlertSummary,
    Incident,
    Priority,
    RunbookStart,
    TriageDecision,
    isoformat,
)
from shared.partners import Partner
from shared.sla import reprioritise, start_clocks
from shared.sources import alert_refs
from shared.store import AlertClaim

SOC_PARTITION = "_soc"
# A claim whose incident is still missing after this long belongs to a delivery that died.
STALE_CLAIM = timedelta(minutes=2)


def is_stale(claim: AlertClaim, now: datetime) -> bool:
    try:
        at = datetime.fromisoformat(claim.received_at.replace("Z", "+00:00"))
    except ValueError:
        return True
    return now - at > STALE_CLAIM


@dataclass
class IngestOutcome:
    incident_id: str
    priority: Priority
    incident_status: str
    outcome: str  # created | grouped | duplicate
    score: int
    runbook: RunbookStart | None = None
    alert_key: str = ""
    notes: list[str] = field(default_factory=list)
    # The priority was lowered (e.g. in Sentinel): pending phone calls must stop now.
    stop_escalation: bool = False
    # issue 14: a redelivery of an open incident's alert — the trigger starts this runbook if it never started
    # (a delivery that failed between the incident write and the runbook start), instead of the SLA watchdog.
    repair: RunbookStart | None = None

    def response(self) -> dict:
        """The 202 body (docs/spec/ingest.md), extended with the outcome."""
        return {
            "incidentId": self.incident_id,
            "priority": self.priority.value,
            "status": self.incident_status,
            "outcome": self.outcome,
            "score": self.score,
        }


def alert_summary(alert: Alert, decision: TriageDecision, received: datetime) -> AlertSummary:
    return AlertSummary(
        key=alert.primary_key,
        source=alert.source,
        source_id=alert.source_id,
        title=alert.title,
        alert_type=alert.alert_type,
        severity=alert.severity,
        score=decision.score,
        priority=decision.priority,
        observed_at=alert.observed_at,
        received_at=received,
        link=alert.link,
    )


def open_incident(
    incident_id: str,
    alert: Alert,
    decision: TriageDecision,
    partner: Partner | None,
    tz: str,
    received: datetime,
    triaged: datetime,
) -> Incident:
    """A new incident opened by its first alert."""
    return Incident(
        id=incident_id,
        partner_id=partner.id if partner else None,
        partner_name=partner.name if partner else None,
        title=alert.title,
        priority=decision.priority,
        score=decision.score,
        created_at=received,
        updated_at=triaged,
        first_seen_at=alert.observed_at,
        last_seen_at=alert.observed_at,
        alerts=[alert_summary(alert, decision, received)],
        alert_count=1,
        entities=list(alert.entities),
        triage=decision,
        sla=start_clocks(decision.priority, received, triaged, tz),
        tactics=list(alert.tactics),
    )


def merge_alert(
    incident: Incident, alert: Alert, decision: TriageDecision, tz: str, received: datetime
) -> tuple[Incident, Priority | None]:
    """The incident with one more alert; its priority is the highest of its alerts.

    Returns (updated incident, new priority if it was raised). A raise starts a
    new runbook epoch: the runbook notifies the change, and on reaching P1 runs
    the P1 runbook (containment, phone escalation) again.
    """
    known = {e.merge_key() for e in incident.entities}
    entities = incident.entities + [e for e in alert.entities if e.merge_key() not in known]
    tactics = incident.tactics + [t for t in alert.tactics if t not in incident.tactics]
    update: dict = {
        "alerts": incident.alerts + [alert_summary(alert, decision, received)],
        "alert_count": incident.alert_count + 1,
        "entities": entities[:200],
        "tactics": tactics,
        "first_seen_at": min(incident.first_seen_at, alert.observed_at),
        "last_seen_at": max(incident.last_seen_at, alert.observed_at),
        "updated_at": received,
    }
    raised = None
    if decision.priority.rank < incident.priority.rank:
        raised = decision.priority
        update.update(
            priority=decision.priority,
            score=max(incident.score, decision.score),
            triage=decision,
            sla=reprioritise(incident.sla, decision.priority, tz),
        )
        update["runbook_epoch"] = incident.runbook_epoch + 1
    elif decision.score > incident.score and decision.priority == incident.priority:
        update["score"] = decision.score
    return incident.model_copy(update=update), raised


# (known incident, the update, received at) → the outcome, or None to record it as a duplicate after all.
SourceUpdateHandler = Callable[[Incident, Alert, datetime], "IngestOutcome | None"]


def versioned(got: tuple[Incident, str] | None) -> Versioned[Incident] | None:
    return Versioned(got[0], got[1]) if got else None


def alert_keys_of(event) -> list[str]:
    """Every key of the alert an ``alert.received`` / ``alert.grouped`` event records (a Sentinel
    incident's keys include the ids of the alerts inside it)."""
    if event.event_type not in ("alert.received", "alert.grouped"):
        return []
    alert = event.data.get("alert") if isinstance(event.data, dict) else None
    if not isinstance(alert, dict):
        return []
    return [k for k in (alert.get("keys") or [alert.get("key")]) if isinstance(k, str)]


def triage_summary(d: TriageDecision) -> str:
    fired = ", ".join(h.rule_id for h in d.rules_fired)
    return f"Scored {d.score}/10 → {d.priority.value} {d.priority.label} (rules: {fired})"


def alert_evidence(alert: Alert) -> dict:
    return {
        "key": alert.primary_key,
        "keys": alert.dedupe_keys,
        "source": alert.source,
        "sourceId": alert.source_id,
        "title": alert.title,
        "alertType": alert.alert_type,
        "severity": alert.severity,
        "explicitScore": alert.explicit_score,
        "tactics": alert.tactics,
        "observedAt": isoformat(alert.observed_at),
        "entities": [e.wire() for e in alert.entities[:50]],
        "link": alert.link,
        "product": alert.product,
        # Where the write-back goes (the Sentinel incident's / Defender alert's ARM id), when the source has one.
        **({"refs": refs} if (refs := alert_refs(alert.extended_properties)) else {}),
    }
