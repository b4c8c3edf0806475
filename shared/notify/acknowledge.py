"""Acknowledgement: contact with the incident's people is established (the ack route, or 1 pressed on a call).

Every acknowledgement is evidenced; the first one is also stamped on the incident and stays on record.
The incident's status moves to acknowledged (from open, contained or held: containment state stays in
its own rows). The first acknowledgement of a P1 is emailed to its contacts.
"""

from __future__ import annotations

from typing import Any

from shared.models import ActorType, Incident, IncidentStatus, Priority, isoformat
from shared.notify.context import NotifyContext
from shared.notify.email import EmailNotifier
from shared.notify.incidents import update_incident
from shared.notify.teams import TeamsNotifier
from shared.notify.templates import NotifyEvent


class Acknowledgements:
    """Records acknowledgements (the ack route and the calls' key press both come here)."""

    def __init__(self, context: NotifyContext, email: EmailNotifier, teams: TeamsNotifier | None = None):
        self.context, self.email = context, email
        self.teams = teams  # issue 16: the acknowledgement card (posted by the teams_delivery timer)

    def acknowledge(
        self,
        incident_id: str,
        actor: str,
        actor_type: ActorType,
        via: str,
        note: str | None = None,
        call_record: str | None = None,
    ) -> tuple[Incident, bool]:
        """Contact established: stamp the incident (ETag-guarded) and evidence it. (incident, first ack?)"""
        ctx = self.context
        at = ctx.clock()

        def change(incident: Incident) -> Incident:
            extra = {
                **incident.extra,
                "lastAcknowledgedAt": isoformat(at),
                "lastAcknowledgedBy": actor,
                "lastAcknowledgedEpoch": incident.runbook_epoch,
                "acknowledgements": int(incident.extra.get("acknowledgements") or 0) + 1,
            }
            update: dict[str, Any] = {"extra": extra, "updated_at": at}
            if incident.acknowledged_at is None:
                update.update(acknowledged_at=at, acknowledged_by=actor)
            if incident.status in (IncidentStatus.OPEN, IncidentStatus.CONTAINED, IncidentStatus.HELD):
                update["status"] = IncidentStatus.ACKNOWLEDGED
            return incident.model_copy(update=update)

        before, after, _ = update_incident(ctx.store, incident_id, change)
        first = before.acknowledged_at is None
        ctx.record_evidence(
            incident_id,
            "incident.acknowledged",
            f"Incident acknowledged by {actor} ({via})" + ("" if first else " again"),
            {
                "via": via,
                "note": note,
                "first": first,
                "callRecord": call_record,
                "statusBefore": before.status.value,
                "statusAfter": after.status.value,
            },
            actor=actor,
            actor_type=actor_type,
            at=at,
        )
        if first and after.priority == Priority.P1:
            self.email.notify_event(incident_id, NotifyEvent.ACKNOWLEDGED, "acknowledged", actor=actor)
        if first and self.teams is not None:  # issue 16: P1 and P2 (their new-incident cards went to Teams)
            self.teams.after_email(after, NotifyEvent.ACKNOWLEDGED, "acknowledged", actor=actor)
        return after, first
