"""Priority changes by an analyst (docs/spec/triage.md): `POST /api/incidents/{id}/priority`.

Rules:
- every change (and every request that changes nothing) is evidenced with
  the actor and the reason;
- raising to P1 starts a new runbook epoch, so the P1 runbook (containment,
  notification, phone escalation) runs again — also after an earlier
  acknowledgement;
- lowering stops pending calls (the trigger sends the escalation its stop
  event) but never releases containment: release is its own, explicit step;
- the response SLA is recomputed for the new priority from the receipt time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from shared.evidence import EventDraft, now_ms
from shared.models import ActorType, Incident, Phase, Priority, RunbookStart, runbook_instance_id
from shared.notify.incidents import update_incident
from shared.partners import PartnerRegistry
from shared.sla import reprioritise
from shared.store import EvidenceStore


@dataclass
class PriorityChange:
    """What a priority request did."""

    incident: Incident
    previous: Priority
    actor: str
    reason: str
    runbook: RunbookStart | None = None

    @property
    def changed(self) -> bool:
        return self.incident.priority != self.previous

    @property
    def raised(self) -> bool:
        return self.incident.priority.rank < self.previous.rank

    @property
    def lowered(self) -> bool:
        return self.incident.priority.rank > self.previous.rank

    def response(self) -> dict:
        return {
            "incidentId": self.incident.id,
            "priority": self.incident.priority.value,
            "previousPriority": self.previous.value,
            "changed": self.changed,
            "status": self.incident.status.value,
            "runbookEpoch": self.incident.runbook_epoch,
            "responseSlaDue": self.incident.sla.wire()["responseSlaDue"],
        }


def change_priority(
    store: EvidenceStore,
    partners: PartnerRegistry,
    incident_id: str,
    priority: Priority,
    actor: str,
    reason: str,
    clock: Callable[[], datetime] = now_ms,
) -> PriorityChange:
    """Set the incident's priority (ETag-guarded) and evidence the request."""
    at = clock()

    def change(incident: Incident) -> Incident | None:
        if incident.priority == priority:
            return None
        partner = partners.get(incident.partner_id)
        tz = partner.timezone if partner else partners.soc.timezone
        update: dict = {"priority": priority, "sla": reprioritise(incident.sla, priority, tz), "updated_at": at}
        if priority == Priority.P1:
            update["runbook_epoch"] = incident.runbook_epoch + 1
        return incident.model_copy(update=update)

    before, after, written = update_incident(store, incident_id, change)

    def by_actor(event_type: str, phase: Phase, summary: str, data: dict) -> EventDraft:
        """Evidence of this change, in the name of the person who asked for it."""
        return EventDraft(
            event_type=event_type,
            phase=phase,
            occurred_at=at,
            actor=actor,
            actor_type=ActorType.ANALYST,
            summary=summary,
            data=data,
        )

    result = PriorityChange(after, before.priority, actor, reason)
    if not written:
        store.append_events(
            incident_id,
            [
                by_actor(
                    "priority.unchanged",
                    Phase.TRIAGE,
                    f"Priority change to {priority.value} requested; it already is",
                    {"from": before.priority.value, "to": priority.value, "reason": reason},
                )
            ],
        )
        return result
    direction = "raised" if result.raised else "lowered"
    data = {
        "from": before.priority.value,
        "to": priority.value,
        "reason": reason,
        "by": actor,
        "responseSlaDue": after.sla.wire()["responseSlaDue"],
    }
    drafts = [
        by_actor(
            "priority.changed",
            Phase.TRIAGE,
            f"Priority {direction} {before.priority.value} → {priority.value} by {actor}",
            data,
        )
    ]
    if priority == Priority.P1:
        result.runbook = RunbookStart(
            runbook_instance_id(incident_id, after.runbook_epoch),
            {
                "incidentId": incident_id,
                "epoch": after.runbook_epoch,
                "reason": f"priority raised to P1 by {actor}: {reason}",
                "previousPriority": before.priority.value,
                "actor": actor,
            },
        )
        drafts.append(
            by_actor(
                "runbook.requested",
                Phase.TRIAGE,
                f"P1 runbook requested again (epoch {after.runbook_epoch})",
                {"instanceId": result.runbook.instance_id, "epoch": after.runbook_epoch},
            )
        )
    if result.lowered:
        drafts.append(
            by_actor(
                "containment.kept",
                Phase.CONTAIN,
                "Priority lowered: any containment stays in place (release is a separate, explicit request)",
                {"from": before.priority.value, "to": priority.value},
            )
        )
    store.append_events(incident_id, drafts)
    return result
