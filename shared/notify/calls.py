"""Phone escalation calls: whether to phone, each attempt's calls, the escalation's end, hanging up.

Every call is a ``Notifications`` row ``call-{requestKey}-a{attempt}-c{contact}`` claimed with a
conditional insert before dialling: a replayed activity never dials twice, and a row left
"placing" by a crash is evidenced once as ``call.outcome-unknown``. Each call's callback URL carries
a fresh secret; only its hash is kept in the row (see ``callbacks``). Every call attempt is an
evidence event with its outcome.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.errors import ConflictError
from shared.etag import Versioned
from shared.evidence import EventDraft
from shared.masking import mask_phone
from shared.models import Incident, Priority, isoformat
from shared.notify.context import NotifyContext
from shared.notify.email import EmailNotifier
from shared.notify.names import escalation_instance_id
from shared.notify.ports import CallError, PhoneCaller, PlacedCall
from shared.notify.records import CallRecord, call_token_hash
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

    def place_escalation_call(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Call attempt ``request["attempt"]``: one call to each emergency contact, each at most once.

        Returns ``{"stop": reason}`` when the escalation must end instead
        (acknowledged, lowered, closed, or calls impossible).
        """
        ctx = self.context
        incident_id, attempt = request["incidentId"], int(request["attempt"])
        got = ctx.store.get_incident(incident_id)
        if got is None:
            return {"attempt": attempt, "stop": "incident not found"}
        incident = got[0]
        stop = self._stop_reason(incident, request)
        if stop:
            return {"attempt": attempt, "stop": stop}
        impossible = self._impossible(incident)
        if not impossible and not self._contacts(incident, request):
            impossible = "no SOC duty contact has a phone number"
        caller = self.caller
        if impossible or caller is None:  # (no caller is one of the reasons; tested twice for the type checker)
            impossible = impossible or "calls disabled"
            ctx.record_evidence(
                incident_id,
                "call.skipped",
                f"Call attempt {attempt} not placed: {impossible}",
                {"attempt": attempt, "reason": impossible, "requestKey": request.get("requestKey")},
            )
            return {"attempt": attempt, "stop": impossible, "impossible": True}
        key = request["requestKey"]
        calls: list[dict] = []
        drafts: list[EventDraft] = []
        owned: list[tuple[str, Versioned[CallRecord], Callable[[CallRecord], CallRecord]]] = []
        for i, (name, phone) in enumerate(self._contacts(incident, request)):
            record_id = f"call-{key}-a{attempt:02d}-c{i}"
            token = secrets.token_urlsafe(32)
            at = ctx.clock()
            row = CallRecord.parse(
                {
                    "channel": "call",
                    "kind": "escalation-call",
                    "status": "placing",
                    "incidentId": incident_id,
                    "escalationId": escalation_instance_id(incident_id),
                    "requestKey": key,
                    "attempt": attempt,
                    "contactName": name,
                    "recipient": phone,
                    "target": phone,
                    "tokenHash": call_token_hash(token),
                    "scheduledAt": request.get("scheduledAt"),
                    "createdAt": isoformat(at),
                    "updatedAt": isoformat(at),
                    "prompts": 0,
                    "partnerContact": incident.partner_id is not None and request.get("audience") != "soc",
                }
            )
            evidence = {
                "attempt": attempt,
                "contact": name,
                "number": mask_phone(phone),
                "recordId": record_id,
                "scheduledAt": request.get("scheduledAt"),
                "requestKey": key,
                "escalationId": escalation_instance_id(incident_id),
            }
            try:
                etag = ctx.rows.create(incident_id, record_id, row)
            except ConflictError:
                calls.append(self._replayed_call(incident_id, record_id, evidence, drafts))
                continue
            callback = (
                f"{ctx.settings.callback_base_url}/api/callbacks/acs?incidentId={quote(incident_id, safe='')}"
                f"&callId={quote(record_id, safe='')}&token={token}"
            )
            try:
                placed = caller.place_call(phone, callback, record_id)
            except CallError as exc:
                failed_at, error = ctx.clock(), exc.evidence()
                owned.append((record_id, Versioned(row, etag), _failed(error, isoformat(failed_at))))
                drafts.append(
                    ctx.draft(
                        "call.failed",
                        f"Call attempt {attempt} to {name} ({mask_phone(phone)}) FAILED: {str(exc)[:200]}",
                        {**evidence, "error": error},
                        at=failed_at,
                    )
                )
                calls.append({"recordId": record_id, "status": "failed"})
                continue
            placed_at = ctx.clock()
            owned.append((record_id, Versioned(row, etag), _placed(placed, isoformat(placed_at))))
            drafts.append(
                ctx.draft(
                    "call.placed",
                    f"Call attempt {attempt} to {name} ({mask_phone(phone)}) placed",
                    {**evidence, "callConnectionId": placed.call_connection_id},
                    at=placed_at,
                )
            )
            calls.append({"recordId": record_id, "status": "placed"})
        if any(c["status"] == "placed" for c in calls):
            drafts += [d for d in [ctx.first_response(incident_id, ctx.clock(), f"call attempt {attempt}")] if d]
        # Evidence first, then the rows leave "placing": a row still "placing" after a crash is one whose
        # outcome was never evidenced, and a replay says so (see _replayed_call).
        if drafts:
            ctx.store.append_events(incident_id, drafts)
        for record_id, held, change in owned:
            ctx.rows.update(CallRecord, incident_id, record_id, change, first=held)
        return {
            "attempt": attempt,
            "placed": sum(c["status"] == "placed" for c in calls),
            "failed": sum(c["status"] == "failed" for c in calls),
            "calls": calls,
        }

    def _replayed_call(self, incident_id: str, record_id: str, evidence: dict, drafts: list[EventDraft]) -> dict:
        """A call row that already exists (the activity ran before): never dial again; if its outcome was
        never recorded (the host stopped mid-call), evidence that it is unknown, once."""

        def mark(r: CallRecord) -> CallRecord | None:
            if r.status != "placing" or r.outcome_unknown:
                return None
            return r.changed(outcome_unknown=True)

        done = self.context.rows.update(CallRecord, incident_id, record_id, mark)
        if done is not None and done.written:
            drafts.append(
                self.context.draft(
                    "call.outcome-unknown",
                    f"Call attempt {evidence['attempt']} to {evidence['contact']}: the host stopped "
                    "while the call was being placed; it was not dialled again",
                    evidence,
                )
            )
        return {"recordId": record_id, "status": done.after.status if done else None, "duplicate": True}

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


def _failed(error: dict[str, Any], stamp: str) -> Callable[[CallRecord], CallRecord]:
    """The row of a call ACS refused to place."""
    return lambda r: r.changed(status="failed", error=error, updated_at=stamp)


def _placed(placed: PlacedCall, stamp: str) -> Callable[[CallRecord], CallRecord]:
    """The row of a placed call: the connection ACS gave it, unless a call event already bound it."""

    def bind(r: CallRecord) -> CallRecord:
        return r.changed(
            call_connection_id=r.call_connection_id or placed.call_connection_id,
            correlation_id=r.correlation_id or placed.correlation_id,
            placed_at=stamp,
            updated_at=stamp,
            **({"status": "placed"} if r.status == "placing" else {}),
        )

    return bind
