"""What every notification step shares: who to tell, on whose clock, and how it is evidenced.

The steps (email, calls, call events, acknowledgement, digest, the runbook's notify step) each get
one ``NotifyContext``; it holds no adapter: the mail sender and the phone caller are handed to the
steps that use them by ``shared.runtime``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.evidence import APP_ACTOR, EventDraft, now_ms
from shared.models import ActorType, Incident, Phase, Priority, isoformat
from shared.notify.incidents import update_incident
from shared.notify.records import NotificationRows
from shared.partners import PartnerRegistry
from shared.response_plan import plan_response
from shared.settings import Settings
from shared.store import EvidenceStore


@dataclass
class NotifyContext:
    """The store, the partner registry, the settings and the clock every notification step works with."""

    store: EvidenceStore
    partners: PartnerRegistry
    settings: Settings
    clock: Callable[[], datetime] = now_ms
    rows: NotificationRows = field(init=False)

    def __post_init__(self) -> None:
        self.rows = NotificationRows(self.store)

    # -- contacts ------------------------------------------------------------------------------
    def timezone_of(self, incident: Incident) -> str:
        """The clock the incident's people live on: its partner's, or the SOC's when no partner matched."""
        partner = self.partners.get(incident.partner_id)
        return partner.timezone if partner else self.partners.soc.timezone

    def email_recipients(self, incident: Incident, *priorities: Priority) -> list[str]:
        """Who is emailed about the incident at these priorities (default: its own), per docs/spec/notification.md."""
        out: list[str] = []
        for p in priorities or (incident.priority,):
            plan = plan_response(incident.model_copy(update={"priority": p}), self.partners, self.settings)
            out += [e for e in plan.notification.email_to if e not in out]
        return out

    def phone_contacts(self, incident: Incident) -> list[tuple[str, str]]:
        """(name, E.164 number) of the emergency contacts phoned for the incident."""
        contacts = self.partners.get(incident.partner_id) or self.partners.soc
        return [(c.name, c.phone) for c in contacts.emergencyContacts if c.phone]

    def soc_phone_contacts(self) -> list[tuple[str, str]]:
        """issue 14: (name, E.164 number) of the SOC's own duty contacts (the registry's ``soc.emergencyContacts``)."""
        return [(c.name, c.phone) for c in self.partners.soc.emergencyContacts if c.phone]

    def soc_emails(self) -> list[str]:
        """The SOC's own alert and emergency mailboxes (internal escalation)."""
        soc = self.partners.soc
        return list(dict.fromkeys([*soc.socAlertEmails, *(c.email for c in soc.emergencyContacts if c.email)]))

    # -- evidence ------------------------------------------------------------------------------
    def draft(
        self,
        event_type: str,
        summary: str,
        data: dict[str, Any],
        phase: Phase = Phase.NOTIFY,
        actor: str = APP_ACTOR,
        actor_type: ActorType = ActorType.APP,
        at: datetime | None = None,
    ) -> EventDraft:
        return EventDraft(
            event_type=event_type,
            phase=phase,
            summary=summary,
            actor=actor,
            actor_type=actor_type,
            occurred_at=at or self.clock(),
            data=data,
        )

    def record_evidence(
        self,
        incident_id: str,
        event_type: str,
        summary: str,
        data: dict[str, Any],
        phase: Phase = Phase.NOTIFY,
        actor: str = APP_ACTOR,
        actor_type: ActorType = ActorType.APP,
        at: datetime | None = None,
    ) -> None:
        """Append one evidence event to the incident's timeline."""
        self.store.append_events(incident_id, [self.draft(event_type, summary, data, phase, actor, actor_type, at)])

    # -- first response (SLA) --------------------------------------------------------------------
    def first_response(self, incident_id: str, at: datetime, what: str) -> EventDraft | None:
        """Stamp the incident's first response once (ETag-guarded); the evidence draft when this call stamped it.

        The first email sent or call placed is the first response: the caller appends the draft with its
        own evidence, so the timeline shows both in one append.
        """

        def change(incident: Incident) -> Incident | None:
            if incident.sla.first_response_at is not None:
                return None
            return incident.model_copy(update={"sla": incident.sla.model_copy(update={"first_response_at": at})})

        _, after, written = update_incident(self.store, incident_id, change)
        if not written:
            return None
        met = at <= after.sla.first_response_due
        minutes = round((at - after.sla.received_at).total_seconds() / 60, 1)
        return self.draft(
            "sla.first-response",
            f"First response ({what}) {minutes} min after receipt: target {'met' if met else 'missed'}",
            {
                "at": isoformat(at),
                "what": what,
                "minutesAfterReceipt": minutes,
                "met": met,
                "due": isoformat(after.sla.first_response_due),
            },
            at=at,
        )

    def stamp_first_response(self, incident_id: str, at: datetime, what: str) -> bool:
        """Record the incident's first response (the first notification that went out) once, with evidence."""
        stamped = self.first_response(incident_id, at, what)
        if stamped is not None:
            self.store.append_events(incident_id, [stamped])
        return stamped is not None
