"""NotificationService: emails, escalation calls, call events, acknowledgement, first response, P4 digest.

Idempotency (an activity may run twice after a host crash; ACS may post an
event twice): every email and every call is a ``Notifications`` row with a
deterministic id, claimed with a conditional insert before anything is sent.
A row that exists was sent (or is being sent) by someone else, so a replay
never sends twice; only a row whose earlier send *failed* is retried, under
its ETag. Every send and every call attempt is an evidence event with its
outcome.

Call events are trusted only when they carry the per-call secret that was
put in the callback URL (stored hashed in the call's row) and name the call
connection (and correlation id) ACS gave that call. Anything else is
rejected and logged — never acknowledged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.errors import ConflictError, UnauthorizedError, ValidationError
from shared.evidence import APP_ACTOR, EventDraft, now_ms
from shared.models import ActorType, Incident, IncidentStatus, Phase, Priority, isoformat
from shared.notify.incidents import load_incident, update_incident
from shared.notify.names import escalation_instance_id
from shared.notify.templates import (
    SPOKEN_ACKNOWLEDGED,
    SPOKEN_GOODBYE,
    SPOKEN_RETRY,
    ActionLine,
    MessageContext,
    NotifyEvent,
    RenderedMail,
    action_lines,
    render,
    render_digest,
    spoken_summary,
)
from shared.partners import PartnerRegistry
from shared.response_plan import plan_response
from shared.settings import Settings
from shared.store import ConcurrencyError, EvidenceStore

log = logging.getLogger("soc_responder.notify")

NOTIFICATIONS = "Notifications"
DIGEST_QUEUE_RECORD = "digest-queue"
MAX_SEND_TRIES = 3
MAX_PROMPTS = 3
MAX_RECORD_TRIES = 25
BUSINESS_START, BUSINESS_END = time(8, 0), time(18, 0)
# A call row in one of these states may still have a live call to hang up.
LIVE_CALL_STATES = ("placed", "connected", "prompting", "closing")


STALE_SENDING = timedelta(minutes=10)


def _older_than(stamp: Any, age: timedelta, now: datetime) -> bool:
    try:
        return now - datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) > age
    except ValueError:
        return True


def mask_phone(number: str | None) -> str:
    """A phone number as evidence shows it: country and area prefix, last four digits."""
    if not number:
        return ""
    return number if len(number) <= 8 else f"{number[:5]}***{number[-4:]}"


def out_of_hours(moment: datetime, tz: str) -> bool:
    """True outside 08:00–18:00 Monday to Friday on the clock of ``tz``."""
    local = moment.astimezone(ZoneInfo(tz))
    return local.weekday() >= 5 or not (BUSINESS_START <= local.time() < BUSINESS_END)


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


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

    def response(self) -> dict:
        return {
            "accepted": len(self.accepted),
            "events": self.accepted,
            "acknowledged": self.acknowledged_by is not None,
        }


class NotificationService:
    """Notification and escalation steps; adapters are built from settings on first use unless injected."""

    def __init__(
        self,
        store: EvidenceStore,
        partners: PartnerRegistry,
        settings: Settings,
        mailer=None,
        caller=None,
        clock: Callable[[], datetime] = now_ms,
    ):
        self.store, self.partners, self.settings, self.clock = store, partners, settings, clock
        self._mailer, self._caller = mailer, caller

    # -- adapters ------------------------------------------------------------------------------
    @property
    def mailer(self):
        """The mail sender, or None when MAIL_SENDER is not set (email disabled)."""
        if self._mailer is None and self.settings.mail_sender:
            from shared.adapters.graph_mail import GraphMailer

            self._mailer = GraphMailer(self.settings)
        return self._mailer

    @property
    def caller(self):
        """The phone caller, or None when ACS_ENDPOINT / ACS_CALLER_ID are not set (calls disabled)."""
        if self._caller is None and self.settings.acs_endpoint and self.settings.acs_caller_id:
            from shared.adapters.acs_calls import AcsCaller

            self._caller = AcsCaller(self.settings)
        return self._caller

    # -- contacts ------------------------------------------------------------------------------
    def timezone_of(self, incident: Incident) -> str:
        partner = self.partners.get(incident.partner_id)
        return partner.timezone if partner else self.partners.soc.timezone

    def email_recipients(self, incident: Incident, *priorities: Priority) -> list[str]:
        """Who is emailed about the incident at these priorities (default: its own), per SPEC 5."""
        out: list[str] = []
        for p in priorities or (incident.priority,):
            plan = plan_response(incident.model_copy(update={"priority": p}), self.partners, self.settings)
            out += [e for e in plan.notification.email_to if e not in out]
        return out

    def phone_contacts(self, incident: Incident) -> list[tuple[str, str]]:
        """(name, E.164 number) of the emergency contacts phoned for the incident."""
        contacts = self.partners.get(incident.partner_id) or self.partners.soc
        return [(c.name, c.phone) for c in contacts.emergencyContacts if c.phone]

    def soc_emails(self) -> list[str]:
        """The SOC's own alert and emergency mailboxes (internal escalation)."""
        soc = self.partners.soc
        return list(dict.fromkeys([*soc.socAlertEmails, *(c.email for c in soc.emergencyContacts if c.email)]))

    # -- evidence and rows ------------------------------------------------------------------------
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

    def _update_record(
        self, partition: str, record_id: str, change: Callable[[dict], dict | None]
    ) -> tuple[dict | None, bool]:
        """ETag-guarded change of a Notifications row: (row after, written)."""
        for _ in range(MAX_RECORD_TRIES):
            got = self.store.get_record(NOTIFICATIONS, partition, record_id)
            if got is None:
                return None, False
            doc, etag = got
            new = change(dict(doc))
            if new is None:
                return doc, False
            try:
                self.store.put_record(NOTIFICATIONS, partition, record_id, new, etag=etag)
            except ConcurrencyError:
                continue
            return new, True
        raise ConcurrencyError(f"notification {record_id} is changing too fast to update")

    def _finish(
        self, partition: str, record_id: str, row: dict, etag: str | None, change: Callable[[dict], dict]
    ) -> None:
        """Update a row this call owns: one write under the ETag it holds, else read-modify-write."""
        if etag is not None:
            try:
                self.store.put_record(NOTIFICATIONS, partition, record_id, change(dict(row)), etag=etag)
                return
            except ConcurrencyError:
                pass  # a call event bound the row meanwhile
        self._update_record(partition, record_id, change)

    def _claim(self, partition: str, record_id: str, doc: dict) -> tuple[dict, bool, str | None]:
        """Create the row, or take over a row whose earlier send failed: (row, owned by this call, etag)."""
        try:
            return doc, True, self.store.put_record(NOTIFICATIONS, partition, record_id, doc, create_only=True)
        except ConflictError:
            pass
        taken = {"ok": False}

        def retry_failed(existing: dict) -> dict | None:
            if int(existing.get("tries", 1)) >= MAX_SEND_TRIES:
                return None
            # A row left "sending" by a crash mid-send is taken over once it is old: sending twice
            # beats never telling anyone about an incident.
            abandoned = existing.get("status") == "sending" and _older_than(
                existing.get("updatedAt"), STALE_SENDING, self.clock()
            )
            if existing.get("status") != "failed" and not abandoned:
                return None
            taken["ok"] = True
            return {
                **existing,
                **{k: v for k, v in doc.items() if k not in ("createdAt", "tries")},
                "status": doc["status"],
                "tries": int(existing.get("tries", 1)) + 1,
            }

        row, written = self._update_record(partition, record_id, retry_failed)
        return (row or doc), written and taken["ok"], None

    # -- first response ------------------------------------------------------------------------
    def first_response(self, incident_id: str, at: datetime, what: str) -> EventDraft | None:
        """Stamp the incident's first response once (ETag-guarded); the evidence draft when this call stamped it."""

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

    # -- email ---------------------------------------------------------------------------------
    def render_for(
        self, incident: Incident, event: NotifyEvent, actions: list[ActionLine] | None = None, **context: Any
    ) -> RenderedMail:
        """The email for ``event`` about ``incident`` (its partner, time zone and evidence links filled in)."""
        return render(
            MessageContext(
                incident=incident,
                event=event,
                base_url=self.settings.callback_base_url,
                actions=actions if actions is not None else self.incident_actions(incident.id),
                routed_to_soc=self.partners.get(incident.partner_id) is None,
                timezone=self.timezone_of(incident),
                **context,
            )
        )

    def incident_actions(self, incident_id: str, containment: Mapping[str, Any] | None = None) -> list[ActionLine]:
        """The incident's containment actions and their results, for messages."""
        try:
            from shared.containment import records as containment_records
        except ImportError:  # pragma: no cover - containment not deployed
            rows = self.store.list_records("ContainmentActions", incident_id)
        else:
            rows = [
                containment_records.summary(r) for r in self.store.list_records(containment_records.TABLE, incident_id)
            ]
        containment = containment or {}
        if not rows:
            rows = [a for a in containment.get("actions") or [] if isinstance(a, dict)]
        return action_lines(rows, containment.get("failures") or [])

    def _deliver(
        self,
        partition: str,
        record_id: str,
        event: str,
        mail: RenderedMail,
        recipients: list[str],
        evidence_for: list[str],
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Claim the row, send once, record and evidence the outcome (on every incident in ``evidence_for``)."""
        from shared.adapters.graph_mail import MailDeliveryError, OutgoingMail

        at = self.clock()
        meta = dict(meta or {})
        doc = {
            "channel": "email",
            "kind": event,
            "status": "sending",
            "recipients": recipients,
            "recipient": ", ".join(recipients)[:1000],
            "subject": mail.subject,
            "importance": mail.importance,
            "text": mail.text[:60_000],
            "htmlSha256": hashlib.sha256(mail.html.encode("utf-8")).hexdigest(),
            "createdAt": isoformat(at),
            "updatedAt": isoformat(at),
            "tries": 1,
            **meta,
        }
        skip = None
        if not recipients:
            skip = "no email recipients configured"
        elif self.mailer is None:
            skip = "email disabled: MAIL_SENDER is not set"
        if skip:
            doc.update(status="skipped", error=skip)
        row, owned, etag = self._claim(partition, record_id, doc)
        if not owned:
            return {"recordId": record_id, "status": row.get("status"), "duplicate": True}
        base = {"recordId": record_id, "event": event, "recipients": recipients, "subject": mail.subject, **meta}
        if skip:
            for iid in evidence_for:
                self.record_evidence(
                    iid,
                    "notification.email.skipped",
                    f"Email '{event}' not sent: {skip}",
                    {**base, "reason": skip},
                    at=at,
                )
            return {"recordId": record_id, "status": "skipped", "reason": skip}
        try:
            try:
                self.mailer.send(
                    OutgoingMail(to=recipients, subject=mail.subject, html=mail.html, importance=mail.importance)
                )
            except MailDeliveryError:
                raise
            except Exception as other:
                raise MailDeliveryError(
                    f"{type(other).__name__}: {str(other).splitlines()[0][:300] if str(other) else ''}"
                ) from other
        except MailDeliveryError as exc:
            failed_at = self.clock()
            self._finish(
                partition,
                record_id,
                row,
                etag,
                lambda r: {**r, "status": "failed", "error": exc.evidence(), "updatedAt": isoformat(failed_at)},
            )
            for iid in evidence_for:
                self.record_evidence(
                    iid,
                    "notification.email.failed",
                    f"Email '{event}' to {len(recipients)} recipient(s) FAILED: {str(exc)[:200]}",
                    {**base, "error": exc.evidence(), "try": int(row.get("tries", 1))},
                    at=failed_at,
                )
            return {"recordId": record_id, "status": "failed", "error": exc.evidence()}
        sent_at = self.clock()
        self._finish(
            partition,
            record_id,
            row,
            etag,
            lambda r: {**r, "status": "sent", "sentAt": isoformat(sent_at), "updatedAt": isoformat(sent_at)},
        )
        for iid in evidence_for:
            drafts = [
                self.draft(
                    "notification.email.sent",
                    f"Email '{event}' sent to {len(recipients)} recipient(s)",
                    {**base, "sentAt": isoformat(sent_at)},
                    at=sent_at,
                )
            ]
            drafts += [d for d in [self.first_response(iid, sent_at, f"email {event}")] if d]
            self.store.append_events(iid, drafts)
        return {"recordId": record_id, "status": "sent", "recipients": recipients}

    def send_email(
        self,
        incident: Incident,
        record_id: str,
        event: NotifyEvent,
        mail: RenderedMail,
        recipients: list[str],
        meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send one email about one incident, at most once per ``record_id``."""
        return self._deliver(incident.id, record_id, event.value, mail, recipients, [incident.id], meta)

    def notify_event(
        self,
        incident_id: str,
        event: NotifyEvent,
        key: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        previous_priority: str | None = None,
        breaches: Iterable[str] = (),
        escalation: dict | None = None,
        extra_recipients: Iterable[str] = (),
        include_partner: bool = True,
    ) -> dict[str, Any]:
        """Email ``event`` about the incident to its contacts (at most once per ``key``).

        For other steps of the app (release, approval outcomes …):
        ``notify_event(id, NotifyEvent.RELEASED, f"released-{n}", actor=..., reason=...)``.
        """
        incident = load_incident(self.store, incident_id)
        priorities = [incident.priority]
        if previous_priority and previous_priority != incident.priority.value:
            priorities.append(Priority(previous_priority))  # whoever was told before hears about the change
        recipients = self.email_recipients(incident, *priorities) if include_partner else []
        recipients += [r for r in extra_recipients if r not in recipients]
        mail = self.render_for(
            incident,
            event,
            actor=actor,
            reason=reason,
            previous_priority=previous_priority,
            breaches=list(breaches),
            escalation=escalation or {},
        )
        return self.send_email(
            incident,
            f"email-{key}",
            event,
            mail,
            recipients,
            {"actor": actor, "reason": reason} if actor or reason else None,
        )

    # -- the runbook's notification step -----------------------------------------------------------
    def p2_call_reason(self, incident: Incident) -> str | None:
        """Why the P2 call rule phones for this incident, or None."""
        rule = self.settings.p2_call_rule
        if incident.priority != Priority.P2 or rule == "never":
            return None
        if rule == "always":
            return "P2 call rule: always"
        if out_of_hours(incident.sla.received_at, self.timezone_of(incident)):
            return "P2 call rule: received out of hours"
        return None

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
        incident = load_incident(self.store, incident_id)
        if incident.runbook_epoch > epoch:
            self.record_evidence(
                incident_id,
                "notification.superseded",
                f"Runbook epoch {epoch} notification skipped: epoch {incident.runbook_epoch} runs",
                {"epoch": epoch, "current": incident.runbook_epoch},
            )
            return {"skipped": "superseded by a newer runbook run", "escalate": False}
        actions = self.incident_actions(incident_id, containment)
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
            and self.settings.p4_digest_hour is not None
            and event in (NotifyEvent.NEW_INCIDENT, NotifyEvent.PRIORITY_CHANGED)
        ):
            out["email"] = self.queue_for_digest(incident)
            return out
        mail = self.render_for(
            incident, event, actions, previous_priority=previous_priority, actor=actor, reason=reason
        )
        recipients = self.email_recipients(incident)
        if event in (NotifyEvent.CONTAINMENT_FAILED, NotifyEvent.CONTAINMENT_HELD):
            # People must act (contain by hand, or approve): the SOC's own desk is told as well.
            recipients += [e for e in self.soc_emails() if e not in recipients]
        out["email"] = self.send_email(incident, f"email-e{epoch}-runbook", event, mail, recipients, {"epoch": epoch})
        if incident.priority == Priority.P1:
            out.update(escalate=True, escalationTrigger="p1", escalationReason="P1: phone escalation required")
        else:
            why = self.p2_call_reason(incident)
            if why:
                out.update(escalate=True, escalationTrigger="p2-rule", escalationReason=why)
        return out

    # -- phone escalation ----------------------------------------------------------------------------
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
        return {
            "incidentId": incident.id,
            "requestKey": request_key,
            "requestedAt": isoformat(self.clock()),
            "priority": incident.priority.value,
            "timezone": self.timezone_of(incident),
            "maxAttempts": self.settings.escalation_max_attempts,
            "trigger": trigger,
            "reason": reason,
            "actor": actor,
            "epoch": epoch,
        }

    def _stop_reason(self, incident: Incident, request: Mapping[str, Any]) -> str | None:
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

    def place_escalation_call(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Call attempt ``request["attempt"]``: one call to each emergency contact, each at most once.

        Returns ``{"stop": reason}`` when the escalation must end instead
        (acknowledged, lowered, closed, or calls impossible).
        """
        from shared.adapters.acs_calls import CallError

        incident_id, attempt = request["incidentId"], int(request["attempt"])
        got = self.store.get_incident(incident_id)
        if got is None:
            return {"attempt": attempt, "stop": "incident not found"}
        incident = got[0]
        stop = self._stop_reason(incident, request)
        if stop:
            return {"attempt": attempt, "stop": stop}
        contacts = self.phone_contacts(incident)
        impossible = None
        if self.caller is None:
            impossible = "calls disabled: ACS_ENDPOINT or ACS_CALLER_ID is not set"
        elif not self.settings.callback_base_url:
            impossible = "calls disabled: CALLBACK_BASE_URL is not set (ACS needs it for call events)"
        elif not contacts:
            impossible = "no emergency contact has a phone number"
        if impossible:
            self.record_evidence(
                incident_id,
                "call.skipped",
                f"Call attempt {attempt} not placed: {impossible}",
                {"attempt": attempt, "reason": impossible, "requestKey": request.get("requestKey")},
            )
            return {"attempt": attempt, "stop": impossible, "impossible": True}
        key = request["requestKey"]
        calls: list[dict] = []
        drafts: list[EventDraft] = []
        owned: list[tuple[str, dict, str, Callable[[dict], dict]]] = []
        for i, (name, phone) in enumerate(contacts):
            record_id = f"call-{key}-a{attempt:02d}-c{i}"
            token = secrets.token_urlsafe(32)
            at = self.clock()
            doc = {
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
                "tokenHash": _hash_token(token),
                "scheduledAt": request.get("scheduledAt"),
                "createdAt": isoformat(at),
                "updatedAt": isoformat(at),
                "prompts": 0,
                "partnerContact": incident.partner_id is not None,
            }
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
                etag = self.store.put_record(NOTIFICATIONS, incident_id, record_id, doc, create_only=True)
            except ConflictError:
                calls.append(self._replayed_call(incident_id, record_id, evidence, drafts))
                continue
            callback = (
                f"{self.settings.callback_base_url}/api/callbacks/acs?incidentId={quote(incident_id, safe='')}"
                f"&callId={quote(record_id, safe='')}&token={token}"
            )
            try:
                placed = self.caller.place_call(phone, callback, record_id)
            except CallError as exc:
                failed_at = self.clock()
                error = exc.evidence()
                owned.append(
                    (
                        record_id,
                        doc,
                        etag,
                        lambda r, e=error, t=isoformat(failed_at): {
                            **r,
                            "status": "failed",
                            "error": e,
                            "updatedAt": t,
                        },
                    )
                )
                drafts.append(
                    self.draft(
                        "call.failed",
                        f"Call attempt {attempt} to {name} ({mask_phone(phone)}) FAILED: {str(exc)[:200]}",
                        {**evidence, "error": error},
                        at=failed_at,
                    )
                )
                calls.append({"recordId": record_id, "status": "failed"})
                continue
            placed_at = self.clock()

            def bind(r: dict, placed=placed, stamp=isoformat(placed_at)) -> dict:
                r = {
                    **r,
                    "callConnectionId": r.get("callConnectionId") or placed.call_connection_id,
                    "correlationId": r.get("correlationId") or placed.correlation_id,
                    "placedAt": stamp,
                    "updatedAt": stamp,
                }
                if r.get("status") == "placing":
                    r["status"] = "placed"
                return r

            owned.append((record_id, doc, etag, bind))
            drafts.append(
                self.draft(
                    "call.placed",
                    f"Call attempt {attempt} to {name} ({mask_phone(phone)}) placed",
                    {**evidence, "callConnectionId": placed.call_connection_id},
                    at=placed_at,
                )
            )
            calls.append({"recordId": record_id, "status": "placed"})
        if any(c["status"] == "placed" for c in calls):
            drafts += [d for d in [self.first_response(incident_id, self.clock(), f"call attempt {attempt}")] if d]
        # Evidence first, then the rows leave "placing": a row still "placing" after a crash is one whose
        # outcome was never evidenced, and a replay says so (see _replayed_call).
        if drafts:
            self.store.append_events(incident_id, drafts)
        for record_id, doc, etag, change in owned:
            self._finish(incident_id, record_id, doc, etag, change)
        return {
            "attempt": attempt,
            "placed": sum(c["status"] == "placed" for c in calls),
            "failed": sum(c["status"] == "failed" for c in calls),
            "calls": calls,
        }

    def _replayed_call(self, incident_id: str, record_id: str, evidence: dict, drafts: list[EventDraft]) -> dict:
        """A call row that already exists (the activity ran before): never dial again; if its outcome was
        never recorded (the host stopped mid-call), evidence that it is unknown, once."""
        flagged = {"now": False}

        def mark(r: dict) -> dict | None:
            if r.get("status") != "placing" or r.get("outcomeUnknown"):
                return None
            flagged["now"] = True
            return {**r, "outcomeUnknown": True}

        row, _ = self._update_record(incident_id, record_id, mark)
        if flagged["now"]:
            drafts.append(
                self.draft(
                    "call.outcome-unknown",
                    f"Call attempt {evidence['attempt']} to {evidence['contact']}: the host stopped "
                    "while the call was being placed; it was not dialled again",
                    evidence,
                )
            )
        return {"recordId": record_id, "status": (row or {}).get("status"), "duplicate": True}

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
        self.record_evidence(incident_id, f"escalation.{outcome}", summary, data)
        result: dict[str, Any] = {"outcome": outcome}
        if outcome in ("exhausted", "impossible"):
            result["email"] = self.notify_event(
                incident_id,
                NotifyEvent.ESCALATION_EXHAUSTED,
                f"escalation-{key}-{outcome}",
                escalation={"attempts": attempts, "startedAt": request.get("startedAt"), "reason": reason},
                extra_recipients=self.soc_emails(),
            )
        else:
            result["hungUp"] = self.hang_up_live_calls(incident_id, key)
        return result

    def hang_up_live_calls(self, incident_id: str, request_key: str) -> int:
        """End calls of this escalation still ringing or connected (best effort; ACS reports the ends)."""
        if self.caller is None:
            return 0
        from shared.adapters.acs_calls import CallError

        ended = 0
        for row in self.store.list_records(NOTIFICATIONS, incident_id):
            if (
                row.get("channel") == "call"
                and row.get("requestKey") == request_key
                and row.get("status") in LIVE_CALL_STATES
                and row.get("callConnectionId")
            ):
                try:
                    self.caller.hang_up(row["callConnectionId"])
                    ended += 1
                except CallError as exc:
                    log.warning("could not hang up call %s of %s: %s", row.get("callConnectionId"), incident_id, exc)
        return ended

    # -- call events (ACS callbacks) --------------------------------------------------------------------
    def handle_call_events(self, params: Mapping[str, str], body: Any) -> CallbackOutcome:
        """Validate and act on a batch of ACS call events posted to a call's callback URL."""
        incident_id, record_id, token = params.get("incidentId"), params.get("callId"), params.get("token")
        if not incident_id or not record_id or not token:
            raise CallbackUnauthorizedError("callback URL without incidentId, callId or token")
        got = self.store.get_record(NOTIFICATIONS, incident_id, record_id)
        if got is None or got[0].get("channel") != "call":
            raise CallbackUnauthorizedError(f"no call {record_id!r} for incident {incident_id!r}")
        row = got[0]
        if not hmac.compare_digest(_hash_token(token), str(row.get("tokenHash") or "")):
            raise CallbackUnauthorizedError(f"wrong token for call {record_id}")
        events = body if isinstance(body, list) else [body]
        if not events or len(events) > 50:
            raise CallbackRejectedError("empty or oversized event batch")
        outcome = CallbackOutcome(incident_id, record_id, row.get("escalationId"))
        rejected = []
        for ev in events:
            problem = self._event_problem(ev, row, record_id)
            if problem:
                rejected.append(problem)
                continue
            row = self._bind_connection(incident_id, record_id, ev["data"]) or row
            kind = ev["type"].rsplit(".", 1)[-1]
            row = self._on_call_event(incident_id, record_id, row, kind, ev["data"], outcome) or row
            outcome.accepted.append(kind)
        if rejected:
            log.warning(
                "rejected %d call event(s) for %s/%s: %s", len(rejected), incident_id, record_id, "; ".join(rejected)
            )
            if not outcome.accepted:
                raise CallbackRejectedError("; ".join(rejected))
        return outcome

    @staticmethod
    def _event_problem(ev: Any, row: dict, record_id: str) -> str | None:
        if not isinstance(ev, dict) or not isinstance(ev.get("data"), dict) or not isinstance(ev.get("type"), str):
            return "not a CloudEvent with type and data"
        if not ev["type"].startswith("Microsoft.Communication."):
            return f"unexpected event type {ev['type'][:80]!r}"
        data = ev["data"]
        cid = data.get("callConnectionId")
        if not cid or not isinstance(cid, str):
            return "event without callConnectionId"
        if row.get("callConnectionId") and cid != row["callConnectionId"]:
            return f"unknown call connection {cid[:64]!r}"
        corr = data.get("correlationId")
        if row.get("correlationId") and corr and corr != row["correlationId"]:
            return "correlation id does not match the call"
        ctx = data.get("operationContext")
        if ctx is not None and ctx != record_id:
            return "operation context does not match the call"
        return None

    def _bind_connection(self, incident_id: str, record_id: str, data: dict) -> dict | None:
        """Events may outrun the activity that records the call connection: the secret proved the sender."""

        def bind(r: dict) -> dict | None:
            if r.get("callConnectionId"):
                return None
            return {
                **r,
                "callConnectionId": data["callConnectionId"],
                "correlationId": r.get("correlationId") or data.get("correlationId"),
            }

        row, _ = self._update_record(incident_id, record_id, bind)
        return row

    def _set_status(
        self, incident_id: str, record_id: str, status: str, allowed_from: Iterable[str] | None = None, **fields: Any
    ) -> tuple[dict | None, bool]:
        allowed = set(allowed_from) if allowed_from is not None else None
        at = isoformat(self.clock())

        def change(r: dict) -> dict | None:
            if allowed is not None and r.get("status") not in allowed:
                return None
            return {**r, **fields, "status": status, "updatedAt": at}

        return self._update_record(incident_id, record_id, change)

    def _on_call_event(
        self, incident_id: str, record_id: str, row: dict, kind: str, data: dict, outcome: CallbackOutcome
    ) -> dict | None:
        from shared.adapters.acs_calls import CallError

        cid = row.get("callConnectionId") or data["callConnectionId"]
        target, attempt = row.get("target"), row.get("attempt")
        who = f"{row.get('contactName') or 'contact'} ({mask_phone(target)})"
        base = {
            "attempt": attempt,
            "recordId": record_id,
            "callConnectionId": cid,
            "contact": row.get("contactName"),
            "number": mask_phone(target),
        }
        result_info = data.get("resultInformation") if isinstance(data.get("resultInformation"), dict) else {}
        try:
            if kind == "CallConnected":
                new, moved = self._set_status(
                    incident_id,
                    record_id,
                    "prompting",
                    ("placing", "placed"),
                    connectedAt=isoformat(self.clock()),
                    prompts=1,
                )
                if moved:
                    self.record_evidence(
                        incident_id, "call.answered", f"Call attempt {attempt} answered by {who}", base
                    )
                    incident = load_incident(self.store, incident_id)
                    self.caller.prompt_for_key(cid, target, spoken_summary(incident, int(attempt or 1)), record_id)
                return new
            if kind == "RecognizeCompleted":
                tones = [str(t).lower() for t in ((data.get("dtmfResult") or {}).get("tones") or [])]
                if tones and tones[0] in ("one", "1"):
                    new, moved = self._set_status(
                        incident_id,
                        record_id,
                        "acknowledged",
                        ("placing", "placed", "prompting", "connected"),
                        acknowledgedAt=isoformat(self.clock()),
                    )
                    if moved:
                        self.record_evidence(
                            incident_id,
                            "call.acknowledged",
                            f"{who} pressed 1 on call attempt {attempt}: acknowledged",
                            base,
                            actor=who,
                            actor_type=ActorType.PARTNER if row.get("partnerContact") else ActorType.ANALYST,
                        )
                        self.acknowledge(
                            incident_id,
                            who,
                            ActorType.PARTNER if row.get("partnerContact") else ActorType.ANALYST,
                            via="phone",
                            call_record=record_id,
                        )
                        self.caller.say(cid, SPOKEN_ACKNOWLEDGED, record_id)
                    outcome.acknowledged_by = who
                    return new
                return self._reprompt(
                    incident_id,
                    record_id,
                    row,
                    cid,
                    target,
                    SPOKEN_RETRY,
                    base,
                    f"key {tones[0] if tones else 'none'} pressed",
                )
            if kind == "RecognizeFailed":
                return self._reprompt(
                    incident_id, record_id, row, cid, target, None, base, result_info.get("message") or "no key pressed"
                )
            if kind in ("PlayCompleted", "PlayFailed"):
                if row.get("status") in ("acknowledged", "closing"):
                    self.caller.hang_up(cid)
                return None
            if kind == "CallDisconnected":
                final = {
                    "acknowledged": "acknowledged",
                    "prompting": "answered-no-ack",
                    "closing": "answered-no-ack",
                    "connected": "answered-no-ack",
                }.get(row.get("status"), "not-answered")
                new, moved = self._set_status(
                    incident_id,
                    record_id,
                    final,
                    ("placing", "placed", "prompting", "connected", "closing", "acknowledged"),
                    endedAt=isoformat(self.clock()),
                    outcome=final,
                )
                if moved:
                    self.record_evidence(
                        incident_id,
                        "call.ended",
                        f"Call attempt {attempt} to {who} ended: {final}",
                        {**base, "outcome": final},
                    )
                return new
            if kind in ("CreateCallFailed", "CallConnectionFailed", "AnswerFailed", "ConnectFailed"):
                new, moved = self._set_status(
                    incident_id, record_id, "failed", ("placing", "placed", "prompting"), error=result_info
                )
                if moved:
                    self.record_evidence(
                        incident_id,
                        "call.failed",
                        f"Call attempt {attempt} to {who} FAILED: {str(result_info.get('message') or kind)[:200]}",
                        {**base, "error": {k: result_info.get(k) for k in ("code", "subCode", "message")}},
                    )
                return new
        except CallError as exc:
            log.warning("call %s of %s: %s while handling %s", cid, incident_id, exc, kind)
            self.record_evidence(
                incident_id,
                "call.media-failed",
                f"Call attempt {attempt} to {who}: {kind} could not be handled ({str(exc)[:200]})",
                {**base, "event": kind, "error": exc.evidence()},
            )
        return None

    def _reprompt(
        self, incident_id: str, record_id: str, row: dict, cid: str, target: str, lead: str | None, base: dict, why: str
    ) -> dict | None:
        prompts = int(row.get("prompts") or 0)
        if row.get("status") not in ("prompting", "connected"):
            return None
        if prompts >= MAX_PROMPTS:
            new, moved = self._set_status(incident_id, record_id, "closing", ("prompting", "connected"))
            if moved:
                self.record_evidence(
                    incident_id,
                    "call.no-ack",
                    f"Call attempt {row.get('attempt')} answered but not acknowledged after "
                    f"{prompts} "
                    f"prompt(s) ({why})",
                    {**base, "prompts": prompts, "reason": why},
                )
                self.caller.say(cid, SPOKEN_GOODBYE, record_id)
            return new
        new, moved = self._set_status(
            incident_id, record_id, "prompting", ("prompting", "connected"), prompts=prompts + 1
        )
        if moved:
            incident = load_incident(self.store, incident_id)
            text = spoken_summary(incident, int(row.get("attempt") or 1))
            self.caller.prompt_for_key(cid, target, f"{lead} {text}" if lead else text, record_id)
        return new

    # -- acknowledgement ------------------------------------------------------------------------------
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
        at = self.clock()

        def change(incident: Incident) -> Incident:
            extra = dict(incident.extra)
            extra.update(
                lastAcknowledgedAt=isoformat(at),
                lastAcknowledgedBy=actor,
                lastAcknowledgedEpoch=incident.runbook_epoch,
                acknowledgements=int(extra.get("acknowledgements") or 0) + 1,
            )
            update: dict[str, Any] = {"extra": extra, "updated_at": at}
            if incident.acknowledged_at is None:
                update.update(acknowledged_at=at, acknowledged_by=actor)
            if incident.status in (IncidentStatus.OPEN, IncidentStatus.CONTAINED, IncidentStatus.HELD):
                update["status"] = IncidentStatus.ACKNOWLEDGED
            return incident.model_copy(update=update)

        before, after, _ = update_incident(self.store, incident_id, change)
        first = before.acknowledged_at is None
        self.record_evidence(
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
            self.notify_event(incident_id, NotifyEvent.ACKNOWLEDGED, "acknowledged", actor=actor)
        return after, first

    # -- P4 daily digest ----------------------------------------------------------------------------------
    def queue_for_digest(self, incident: Incident) -> dict[str, Any]:
        """Hold a P4 incident's email for the partner's daily digest."""
        at = self.clock()
        doc = {
            "channel": "digest",
            "kind": NotifyEvent.DIGEST.value,
            "status": "queued",
            "createdAt": isoformat(at),
            "updatedAt": isoformat(at),
            "partnerId": incident.partner_id,
        }
        try:
            self.store.put_record(NOTIFICATIONS, incident.id, DIGEST_QUEUE_RECORD, doc, create_only=True)
        except ConflictError:
            return {"recordId": DIGEST_QUEUE_RECORD, "status": "queued", "duplicate": True}
        hour = self.settings.p4_digest_hour
        self.record_evidence(
            incident.id,
            "notification.queued",
            f"P4: email held for the daily digest ({hour:02d}:00 {self.timezone_of(incident)})",
            {"recordId": DIGEST_QUEUE_RECORD, "digestHour": hour, "timezone": self.timezone_of(incident)},
            at=at,
        )
        return {"recordId": DIGEST_QUEUE_RECORD, "status": "queued"}

    def send_p4_digests(self, now: datetime) -> dict[str, Any]:
        """Send each partner's digest of queued P4 incidents once per local day, at or after the digest hour."""
        hour = self.settings.p4_digest_hour
        if hour is None:
            return {"disabled": True, "sent": 0}
        groups = [(p.id, p.name, p.timezone) for p in self.partners.partners]
        groups.append(("", self.partners.soc.name, self.partners.soc.timezone))
        report: dict[str, Any] = {"sent": 0, "incidents": 0, "groups": {}}
        since = isoformat(now - timedelta(days=14))
        for partner_id, name, tz in groups:
            local = now.astimezone(ZoneInfo(tz))
            if local.hour < hour:
                continue
            queued = []
            for inc in self.store.find_incidents(
                partner_id=partner_id, priorities=[Priority.P4.value], created_from=since
            ):
                row = self.store.get_record(NOTIFICATIONS, inc.id, DIGEST_QUEUE_RECORD)
                if row and row[0].get("status") == "queued" and inc.priority == Priority.P4:
                    queued.append(inc)
            if not queued:
                continue
            queued.sort(key=lambda i: i.created_at)
            day = local.date().isoformat()
            mail = render_digest(queued, name, day, self.settings.callback_base_url)
            recipients = self.email_recipients(queued[0])
            ids = [i.id for i in queued]
            result = self._deliver(
                f"~digest-{partner_id or '_soc'}",
                f"digest-{day}",
                NotifyEvent.DIGEST.value,
                mail,
                recipients,
                ids,
                {"incidents": ids, "day": day},
            )
            if result.get("duplicate"):
                continue
            final = {"sent": "sent", "skipped": "skipped"}.get(result["status"])
            if final:
                for iid in ids:
                    self._set_status(iid, DIGEST_QUEUE_RECORD, final, ("queued",), digest=f"digest-{day}")
            report["groups"][partner_id or "_soc"] = {"status": result["status"], "incidents": len(ids)}
            report["sent"] += result["status"] == "sent"
            report["incidents"] += len(ids) if result["status"] == "sent" else 0
        return report
