"""The runbook's notify step: which email goes out (or is held for the P4 digest), and whether to phone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.models import Priority
from shared.notify.breaker_page import BreakerPager
from shared.notify.calls import EscalationCalls
from shared.notify.context import NotifyContext
from shared.notify.digest import DigestNotifier
from shared.notify.email import EmailNotifier
from shared.notify.incidents import load_incident
from shared.notify.teams import TeamsNotifier
from shared.notify.templates import NotifyEvent


class RunbookNotifier:
    """One runbook run's notification: the email that fits what containment did, and the call decision."""

    def __init__(
        self,
        context: NotifyContext,
        email: EmailNotifier,
        digest: DigestNotifier,
        calls: EscalationCalls,
        teams: TeamsNotifier | None = None,
    ):
        self.context, self.email, self.digest, self.calls = context, email, digest, calls
        self.teams = teams  # issue 16: the Teams card is queued after the email, posted by its own step
        self.breaker = BreakerPager(context, calls)  # issue 14: breaker trips page the SOC's duty contacts

    def notify_runbook(
        self,
        incident_id: str,
        epoch: int,
        containment: Mapping[str, Any] | None = None,
        reason: str | None = None,
        previous_priority: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Notify step of the runbook: the incident email (or the P4 digest queue) and the call decision."""
        ctx = self.context
        incident = load_incident(ctx.store, incident_id)
        if incident.runbook_epoch > epoch:
            ctx.record_evidence(
                incident_id,
                "notification.superseded",
                f"Runbook epoch {epoch} notification skipped: epoch {incident.runbook_epoch} runs",
                {"epoch": epoch, "current": incident.runbook_epoch},
            )
            return {"skipped": "superseded by a newer runbook run", "escalate": False}
        actions = self.email.incident_actions(incident_id, containment)
        if any(a.failed for a in actions):
            event = NotifyEvent.CONTAINMENT_FAILED
        elif any(a.held for a in actions):
            event = NotifyEvent.CONTAINMENT_HELD
        elif epoch > 1 or previous_priority:
            event = NotifyEvent.PRIORITY_CHANGED
        else:
            event = NotifyEvent.NEW_INCIDENT
        out: dict[str, Any] = {
            "event": event.value,
            "priority": incident.priority.value,
            "escalate": False,
            "actions": [a.wire() for a in actions],
        }
        if (
            incident.priority == Priority.P4
            and ctx.settings.p4_digest_hour is not None
            and event in (NotifyEvent.NEW_INCIDENT, NotifyEvent.PRIORITY_CHANGED)
        ):
            out["email"] = self.digest.queue_for_digest(incident)
            return out
        mail = self.email.render_for(
            incident, event, actions, previous_priority=previous_priority, actor=actor, reason=reason
        )
        recipients = ctx.email_recipients(incident)
        if event in (NotifyEvent.CONTAINMENT_FAILED, NotifyEvent.CONTAINMENT_HELD):
            # People must act (contain by hand, or approve): the SOC's own desk is told as well.
            recipients += [e for e in ctx.soc_emails() if e not in recipients]
        out["email"] = self.email.send_email(
            incident, f"email-e{epoch}-runbook", event, mail, recipients, {"epoch": epoch}
        )
        if self.teams is not None:  # issue 16: never fails or delays the email (posted by post_teams_cards)
            out["teams"] = self.teams.after_email(
                incident, event, f"e{epoch}-runbook", previous_priority=previous_priority, reason=reason
            )
        if event == NotifyEvent.CONTAINMENT_HELD:
            page = self.breaker.page(incident, epoch)
            if page is not None:
                out["socPage"] = page
        if incident.priority == Priority.P1:
            out.update(escalate=True, escalationTrigger="p1", escalationReason="P1: phone escalation required")
        else:
            why = self.calls.p2_call_reason(incident)
            if why:
                out.update(escalate=True, escalationTrigger="p2-rule", escalationReason=why)
        return out
