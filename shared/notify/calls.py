"""Phone escalation: whether to phone, when an escalation must stop, who is phoned, the escalation's end.

Issue 14: the calls themselves are placed by each contact number's pager (``contact_pages``: one call at a
time per number, announcing all its incidents, each call a row claimed with a conditional insert before
dialling); the rules here decide, per incident, whether it is still to be announced (``_stop_reason``), who is
phoned (``_contacts``) and whether calls are possible at all (``_impossible``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from shared.models import Incident, Priority, isoformat
from shared.notify.context import NotifyContext
from shared.notify.email import EmailNotifier
from shared.notify.ports import CallError, PhoneCaller
from shared.notify.records import CallRecord
from shared.notify.templates import NotifyEvent

log = logging.getLogger("soc_responder.notify")

BUSINESS_START, BUSINESS_END = time(8, 0), time(18, 0)
# A call row in one of these states may still have a live call to hang up.
LIVE_CALL_STATES = ("placed", "connected", "prompting", "closing")


def out_of_hours(moment: datetime, tz: str) -> bool:
    """True outside 08:00–18:00 Monday to Friday on the clock of ``tz``."""
    local = moment.astimezone(ZoneInfo(tz))
    return local.weekday() >= 5 or not (BUSINESS_START <= local.time() < BUSINESS_END)


class EscalationCalls:
    """The calls of a phone escalation through the phone caller (None: calls disabled, evidenced as such)."""

    def __init__(self, context: NotifyContext, caller: PhoneCaller | None, email: EmailNotifier):
        self.context, self.caller, self.email = context, caller, email

    def p2_call_reason(self, incident: Incident) -> str | None:
        """Why the P2 call rule phones for this incident, or None."""
        rule = self.context.settings.p2_call_rule
        if incident.priority != Priority.P2 or rule == "never":
            return None
        if rule == "always":
            return "P2 call rule: always"
        if out_of_hours(incident.sla.received_at, self.context.timezone_of(incident)):
            return "P2 call rule: received out of hours"
        return None

    def escalation_request(
        self,
        incident: Incident,
        trigger: str,
        request_key: str,
        reason: str,
        actor: str | None = None,
        epoch: int | None = None,
    ) -> dict[str, Any]:
        """The input of a ``call_escalation`` orchestration for the incident.

        A runbook's escalation carries its ``epoch``: any acknowledgement in that
        epoch stops it, even one that came before the escalation started. An
        operator's request is stopped only by an acknowledgement after it.
        """
        ctx = self.context
        return {
            "incidentId": incident.id,
            "requestKey": request_key,
            "requestedAt": isoformat(ctx.clock()),
            "priority": incident.priority.value,
            "timezone": ctx.timezone_of(incident),
            "maxAttempts": ctx.settings.escalation_max_attempts,
            "trigger": trigger,
            "reason": reason,
            "actor": actor,
            "epoch": epoch,
        }

    @staticmethod
    def _stop_reason(incident: Incident, request: Mapping[str, Any]) -> str | None:
        if not incident.status.is_open:
            return f"incident {incident.status.value}"
        last_ack = incident.extra.get("lastAcknowledgedAt") or (
            isoformat(incident.acknowledged_at) if incident.acknowledged_at else None
        )
        if last_ack and last_ack >= str(request.get("requestedAt") or ""):
            return "acknowledged"
        ack_epoch, epoch = incident.extra.get("lastAcknowledgedEpoch"), request.get("epoch")
        if ack_epoch is not None and epoch is not None and int(ack_epoch) >= int(epoch):
            return "acknowledged"
        wanted = Priority(request.get("priority") or Priority.P1.value)
        if incident.priority.rank > wanted.rank:
            return f"priority lowered to {incident.priority.value}"
        return None

    def _impossible(self, incident: Incident) -> str | None:
        """Why no call can be placed at all, or None."""
        if self.caller is None:
            return "calls disabled: ACS_ENDPOINT or ACS_CALLER_ID is not set"
        if not self.context.settings.callback_base_url:
            return "calls disabled: CALLBACK_BASE_URL is not set (ACS needs it for call events)"
        if not self._contacts(incident, {}):
            return "no emergency contact has a phone number"
        return None

    def _contacts(self, incident: Incident, request: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Who this escalation phones: the incident's emergency contacts, or (issue 14, ``"audience": "soc"``)
        the SOC's own duty contacts — a blast-radius breaker trip only the SOC can approve."""
        if request.get("audience") == "soc":
            return self.context.soc_phone_contacts()
        return self.context.phone_contacts(incident)

    def escalation_ended(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Evidence the end of an escalation; email people when nobody could be reached."""
        incident_id, outcome = request["incidentId"], request["outcome"]
        attempts, reason = int(request.get("attempts") or 0), request.get("reason") or outcome
        key = request.get("requestKey") or "escalation"
        data = {
            "outcome": outcome,
            "attempts": attempts,
            "reason": reason,
            "requestKey": key,
            "startedAt": request.get("startedAt"),
            "instanceId": request.get("instanceId"),
            "skippedSlots": request.get("skippedSlots") or [],
        }
        if outcome == "exhausted":
            summary = f"Phone escalation exhausted: {attempts} attempt(s), nobody acknowledged"
        elif outcome == "acknowledged":
            summary = f"Phone escalation stopped after {attempts} attempt(s): acknowledged"
        else:
            summary = f"Phone escalation ended after {attempts} attempt(s): {reason}"
        self.context.record_evidence(incident_id, f"escalation.{outcome}", summary, data)
        result: dict[str, Any] = {"outcome": outcome}
        if outcome in ("exhausted", "impossible"):
            result["email"] = self.email.notify_event(
                incident_id,
                NotifyEvent.ESCALATION_EXHAUSTED,
                f"escalation-{key}-{outcome}",
                escalation={"attempts": attempts, "startedAt": request.get("startedAt"), "reason": reason},
                extra_recipients=self.context.soc_emails(),
            )
        else:
            result["hungUp"] = self.hang_up_live_calls(incident_id, key)
        return result

    def hang_up_live_calls(self, incident_id: str, request_key: str) -> int:
        """End calls of this escalation still ringing or connected (best effort; ACS reports the ends)."""
        if self.caller is None:
            return 0
        ended = 0
        for doc in self.context.rows.all_of(incident_id):
            if doc.get("channel") != "call":
                continue
            row = CallRecord.parse(doc)
            if row.request_key == request_key and row.status in LIVE_CALL_STATES and row.call_connection_id:
                try:
                    self.caller.hang_up(row.call_connection_id)
                    ended += 1
                except CallError as exc:
                    log.warning("could not hang up call %s of %s: %s", row.call_connection_id, incident_id, exc)
        return ended
