"""ACS call events posted to a call's callback URL: who may post them, and what each one does to the call.

Call events are trusted only when they carry the per-call secret that was put in the callback URL
(stored hashed in the call's row) and name the call connection (and correlation id) ACS gave that
call. Anything else is rejected and logged — never acknowledged. An answered call asks for a key:
1 acknowledges the incident; another key or silence asks again, up to ``MAX_PROMPTS`` times, then
the call says goodbye. Each state change of a call row is ETag-guarded, and only the event that
made it speaks and evidences, however often ACS posts the same event.

Issue 14: a contact's call (``?contact=<key>``, its row in the contact's partition) announces several
incidents; its events are evidenced on each, 1 acknowledges every incident it announced (and no other), and
its end frees the contact's line and the caller number's call slot (``ContactPages.release_line``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.errors import IncidentNotFoundError, UnauthorizedError, ValidationError
from shared.masking import mask_phone
from shared.models import ActorType, isoformat
from shared.notify.acknowledge import Acknowledgements
from shared.notify.contact_pages import ContactPages
from shared.notify.contact_rows import contact_partition, mirror_call
from shared.notify.context import NotifyContext
from shared.notify.incidents import load_incident
from shared.notify.ports import CallError, PhoneCaller
from shared.notify.records import CallRecord, call_token_hash
from shared.notify.spoken_pages import SPOKEN_ALL_ACKNOWLEDGED, spoken_page_summary
from shared.notify.templates import SPOKEN_ACKNOWLEDGED, SPOKEN_GOODBYE, SPOKEN_RETRY, spoken_summary

log = logging.getLogger("soc_responder.notify")

MAX_PROMPTS = 3
MAX_EVENTS = 50
FAILED_EVENTS = ("CreateCallFailed", "CallConnectionFailed", "AnswerFailed", "ConnectFailed")
# How a call ends, by the state its row was in when ACS said it disconnected.
ENDED_AS = {
    "acknowledged": "acknowledged",
    "prompting": "answered-no-ack",
    "closing": "answered-no-ack",
    "connected": "answered-no-ack",
}


class CallbackRejectedError(ValidationError):
    """A call event that is not from ACS for a call we placed (the reason is logged, not returned)."""

    def __init__(self, reason: str):
        super().__init__(
            "call event rejected", [{"field": "callback", "message": "unknown or unauthorised call event"}]
        )
        self.reason = reason


class CallbackUnauthorizedError(UnauthorizedError):
    """A callback URL without the call's secret, or for no call we placed (401; the reason is logged)."""

    def __init__(self, reason: str):
        super().__init__(
            "call event rejected", [{"field": "callback", "message": "unknown or unauthorised call event"}]
        )
        self.reason = reason


@dataclass
class CallbackOutcome:
    """What a batch of call events did."""

    incident_id: str
    record_id: str
    escalation_instance: str | None
    accepted: list[str] = field(default_factory=list)
    acknowledged_by: str | None = None
    # issue 14: a contact's call announces several incidents; 1 acknowledges them all, and its end frees the line
    acknowledged: list[str] = field(default_factory=list)
    pager: str | None = None
    line_free: bool = False

    def response(self) -> dict:
        return {
            "accepted": len(self.accepted),
            "events": self.accepted,
            "acknowledged": self.acknowledged_by is not None,
            **({"incidentsAcknowledged": len(self.acknowledged)} if len(self.acknowledged) > 1 else {}),
        }


def event_problem(ev: Any, row: CallRecord, record_id: str) -> str | None:
    """Why ``ev`` is not an event of this call, or None."""
    if not isinstance(ev, dict) or not isinstance(ev.get("data"), dict) or not isinstance(ev.get("type"), str):
        return "not a CloudEvent with type and data"
    if not ev["type"].startswith("Microsoft.Communication."):
        return f"unexpected event type {ev['type'][:80]!r}"
    data = ev["data"]
    cid = data.get("callConnectionId")
    if not cid or not isinstance(cid, str):
        return "event without callConnectionId"
    if row.call_connection_id and cid != row.call_connection_id:
        return f"unknown call connection {cid[:64]!r}"
    corr = data.get("correlationId")
    if row.correlation_id and corr and corr != row.correlation_id:
        return "correlation id does not match the call"
    ctx = data.get("operationContext")
    if ctx is not None and ctx != record_id:
        return "operation context does not match the call"
    return None


@dataclass(frozen=True)
class _Call:
    """One call as its events talk about it."""

    incident_id: str
    record_id: str
    partition: str
    incidents: tuple[str, ...]
    """Every incident the call is about (issue 14: all a contact's call announced; else the one incident)."""
    contact_key: str | None
    connection: str
    target: str
    attempt: int | None
    who: str
    base: dict[str, Any]
    """What every evidence event of the call carries."""


class CallEvents:
    """Authenticates call events and moves the call (and the incident, on a 1) along."""

    def __init__(
        self,
        context: NotifyContext,
        caller: PhoneCaller | None,
        acknowledgements: Acknowledgements,
        pages: ContactPages | None = None,
    ):
        self.context, self._caller, self.acknowledgements = context, caller, acknowledgements
        self.pages = pages

    @property
    def caller(self) -> PhoneCaller:
        if self._caller is None:  # calls were disabled after this call was placed
            raise CallError("calls disabled: ACS_ENDPOINT or ACS_CALLER_ID is not set")
        return self._caller

    def handle_call_events(self, params: Mapping[str, str], body: Any) -> CallbackOutcome:
        """Validate and act on a batch of ACS call events posted to a call's callback URL."""
        incident_id, record_id, token = params.get("incidentId"), params.get("callId"), params.get("token")
        contact = params.get("contact")  # issue 14: a contact's call lives in the contact's partition
        if not incident_id or not record_id or not token:
            raise CallbackUnauthorizedError("callback URL without incidentId, callId or token")
        if contact is not None and (len(contact) != 20 or any(c not in "0123456789abcdef" for c in contact)):
            raise CallbackUnauthorizedError("callback URL with a malformed contact")
        partition = contact_partition(contact) if contact else incident_id
        got = self.context.rows.read(CallRecord, partition, record_id)
        if got is None:
            raise CallbackUnauthorizedError(f"no call {record_id!r} for incident {incident_id!r}")
        row = got.value
        if contact and incident_id not in (row.announced or []):
            raise CallbackUnauthorizedError(f"call {record_id} did not announce incident {incident_id!r}")
        if not hmac.compare_digest(call_token_hash(token), str(row.token_hash or "")):
            raise CallbackUnauthorizedError(f"wrong token for call {record_id}")
        if row.ended_at or row.status == "failed":
            # issue 12: a call's secret expires when the call ends; a leaked callback URL is then worthless
            raise CallbackUnauthorizedError(f"call {record_id} has ended: its secret has expired")
        events = body if isinstance(body, list) else [body]
        if not events or len(events) > MAX_EVENTS:
            raise CallbackRejectedError("empty or oversized event batch")
        outcome = CallbackOutcome(incident_id, record_id, row.escalation_id)
        if contact:
            outcome.pager = row.escalation_id
        rejected = []
        for ev in events:
            problem = event_problem(ev, row, record_id)
            if problem:
                rejected.append(problem)
                continue
            row = self._bind_connection(partition, record_id, ev["data"]) or row
            kind = ev["type"].rsplit(".", 1)[-1]
            row = self._on_call_event(incident_id, partition, record_id, row, kind, ev["data"], outcome) or row
            outcome.accepted.append(kind)
        if rejected:
            log.warning(
                "rejected %d call event(s) for %s/%s: %s", len(rejected), incident_id, record_id, "; ".join(rejected)
            )
            if not outcome.accepted:
                raise CallbackRejectedError("; ".join(rejected))
        return outcome

    def _bind_connection(self, partition: str, record_id: str, data: dict) -> CallRecord | None:
        """Events may outrun the activity that records the call connection: the secret proved the sender."""

        def bind(r: CallRecord) -> CallRecord | None:
            if r.call_connection_id:
                return None
            return r.changed(
                call_connection_id=data["callConnectionId"],
                correlation_id=r.correlation_id or data.get("correlationId"),
            )

        done = self.context.rows.update(CallRecord, partition, record_id, bind)
        return done.after if done else None

    def _set_status(
        self, call: _Call, status: str, allowed_from: Iterable[str] | None = None, **fields: Any
    ) -> tuple[CallRecord | None, bool]:
        """(row after, moved by this event)."""
        done = self.context.rows.set_status(
            CallRecord,
            call.partition,
            call.record_id,
            status,
            isoformat(self.context.clock()),
            allowed_from,
            **fields,
        )
        if done is not None and done.written and call.contact_key:
            mirror_call(self.context, done.after, call.record_id)  # issue 14: each announced incident's copy
        return (done.after, done.written) if done else (None, False)

    def _record(self, call: _Call, event_type: str, summary: str, data: dict[str, Any], **kw: Any) -> None:
        """Evidence of the call on each incident it is about (issue 14: every incident a contact's call announced)."""
        for incident_id in call.incidents:
            self.context.record_evidence(incident_id, event_type, summary, data, **kw)

    def _on_call_event(
        self,
        incident_id: str,
        partition: str,
        record_id: str,
        row: CallRecord,
        kind: str,
        data: dict,
        outcome: CallbackOutcome,
    ) -> CallRecord | None:
        number = mask_phone(row.target)
        call = _Call(
            incident_id,
            record_id,
            partition,
            tuple(row.announced or [incident_id]),
            row.contact_key,
            row.call_connection_id or data["callConnectionId"],
            row.target or "",
            row.attempt,
            f"{row.contact_name or 'contact'} ({number})",
            {
                "attempt": row.attempt,
                "recordId": record_id,
                "callConnectionId": row.call_connection_id or data["callConnectionId"],
                "contact": row.contact_name,
                "number": number,
            },
        )
        info = data.get("resultInformation")
        result_info: dict[str, Any] = info if isinstance(info, dict) else {}
        try:
            if kind == "CallConnected":
                return self._answered(call)
            if kind == "RecognizeCompleted":
                tones = [str(t).lower() for t in ((data.get("dtmfResult") or {}).get("tones") or [])]
                if tones and tones[0] in ("one", "1"):
                    return self._pressed_one(call, row, outcome)
                return self._reprompt(call, row, SPOKEN_RETRY, f"key {tones[0] if tones else 'none'} pressed")
            if kind == "RecognizeFailed":
                return self._reprompt(call, row, None, result_info.get("message") or "no key pressed")
            if kind in ("PlayCompleted", "PlayFailed"):
                if row.status in ("acknowledged", "closing"):
                    self.caller.hang_up(call.connection)
                return None
            if kind == "CallDisconnected":
                outcome.line_free = outcome.line_free or call.contact_key is not None
                return self._ended(call, ENDED_AS.get(row.status or "", "not-answered"))
            if kind in FAILED_EVENTS:
                outcome.line_free = outcome.line_free or call.contact_key is not None
                return self._failed(call, kind, result_info)
        except CallError as exc:
            log.warning("call %s of %s: %s while handling %s", call.connection, incident_id, exc, kind)
            self._record(
                call,
                "call.media-failed",
                f"Call attempt {call.attempt} to {call.who}: {kind} could not be handled ({str(exc)[:200]})",
                {**call.base, "event": kind, "error": exc.evidence()},
            )
        return None

    def _answered(self, call: _Call) -> CallRecord | None:
        ctx = self.context
        new, moved = self._set_status(
            call, "prompting", ("placing", "placed"), connected_at=isoformat(ctx.clock()), prompts=1
        )
        if moved:
            self._record(call, "call.answered", f"Call attempt {call.attempt} answered by {call.who}", call.base)
            self.caller.prompt_for_key(call.connection, call.target, self._spoken(call), call.record_id)
        return new

    def _spoken(self, call: _Call) -> str:
        """What the call says: its one incident, or (issue 14) every incident it announced, in that order."""
        if call.contact_key is None:
            return spoken_summary(load_incident(self.context.store, call.incident_id), int(call.attempt or 1))
        incidents = []
        for incident_id in call.incidents:
            got = self.context.store.get_incident(incident_id)
            if got is not None:
                incidents.append(got[0])
        return spoken_page_summary(incidents, int(call.attempt or 1))

    def _pressed_one(self, call: _Call, row: CallRecord, outcome: CallbackOutcome) -> CallRecord | None:
        ctx = self.context
        new, moved = self._set_status(
            call,
            "acknowledged",
            ("placing", "placed", "prompting", "connected"),
            acknowledged_at=isoformat(ctx.clock()),
        )
        if moved:
            actor_type = ActorType.PARTNER if row.partner_contact else ActorType.ANALYST
            many = len(call.incidents) > 1
            # issue 14: exactly the incidents this call announced (stored when it was placed), each on its own
            for incident_id in call.incidents:
                ctx.record_evidence(
                    incident_id,
                    "call.acknowledged",
                    f"{call.who} pressed 1 on call attempt {call.attempt}: acknowledged"
                    + (f" (with the {len(call.incidents) - 1} other incident(s) the call announced)" if many else ""),
                    {**call.base, **({"announced": list(call.incidents)} if many else {})},
                    actor=call.who,
                    actor_type=actor_type,
                )
                try:
                    self.acknowledgements.acknowledge(
                        incident_id, call.who, actor_type, via="phone", call_record=call.record_id
                    )
                except IncidentNotFoundError:
                    log.warning("call %s announced incident %s, which no longer exists", call.record_id, incident_id)
                    continue
                outcome.acknowledged.append(incident_id)
            self.caller.say(call.connection, SPOKEN_ALL_ACKNOWLEDGED if many else SPOKEN_ACKNOWLEDGED, call.record_id)
        outcome.acknowledged_by = call.who
        return new

    def _ended(self, call: _Call, final: str) -> CallRecord | None:
        new, moved = self._set_status(
            call,
            final,
            ("placing", "placed", "prompting", "connected", "closing", "acknowledged"),
            ended_at=isoformat(self.context.clock()),
            outcome=final,
        )
        if moved:
            self._record(
                call,
                "call.ended",
                f"Call attempt {call.attempt} to {call.who} ended: {final}",
                {**call.base, "outcome": final},
            )
        self._line_free(call)
        return new

    def _line_free(self, call: _Call) -> None:
        """issue 14: the contact's line is free again (the caller number's slot too): the pager may call."""
        if call.contact_key and self.pages is not None:
            self.pages.release_line(call.contact_key, call.record_id)

    def _failed(self, call: _Call, kind: str, result_info: dict[str, Any]) -> CallRecord | None:
        new, moved = self._set_status(call, "failed", ("placing", "placed", "prompting"), error=result_info)
        self._line_free(call)
        if moved:
            self._record(
                call,
                "call.failed",
                f"Call attempt {call.attempt} to {call.who} FAILED: {str(result_info.get('message') or kind)[:200]}",
                {**call.base, "error": {k: result_info.get(k) for k in ("code", "subCode", "message")}},
            )
        return new

    def _reprompt(self, call: _Call, row: CallRecord, lead: str | None, why: str) -> CallRecord | None:
        """Ask for the key again, or say goodbye after ``MAX_PROMPTS`` prompts."""
        prompts = int(row.prompts or 0)
        if row.status not in ("prompting", "connected"):
            return None
        if prompts >= MAX_PROMPTS:
            new, moved = self._set_status(call, "closing", ("prompting", "connected"))
            if moved:
                self._record(
                    call,
                    "call.no-ack",
                    f"Call attempt {row.attempt} answered but not acknowledged after {prompts} prompt(s) ({why})",
                    {**call.base, "prompts": prompts, "reason": why},
                )
                self.caller.say(call.connection, SPOKEN_GOODBYE, call.record_id)
            return new
        new, moved = self._set_status(call, "prompting", ("prompting", "connected"), prompts=prompts + 1)
        if moved:
            text = self._spoken(call)
            self.caller.prompt_for_key(call.connection, call.target, f"{lead} {text}" if lead else text, call.record_id)
        return new
