"""Emails about an incident: render, claim the row, send once, evidence the outcome.

Idempotency (an activity may run twice after a host crash): every email is a ``Notifications``
row with a deterministic id, claimed with a conditional insert before anything is sent. A row that
exists was sent (or is being sent) by someone else, so a replay never sends twice; only a row whose
earlier send *failed* (or was abandoned mid-send by a crash) is retried, under its ETag, at most
``MAX_SEND_TRIES`` times. Every send is an evidence event with its outcome.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.etag import Versioned
from shared.models import Incident, Priority, isoformat
from shared.notify.actions import ActionLine, action_lines
from shared.notify.context import NotifyContext
from shared.notify.incidents import load_incident
from shared.notify.pacer import THROTTLED, MailPacer, QueuedMail
from shared.notify.ports import MailDeliveryError, MailSender, OutgoingMail
from shared.notify.records import EmailRecord
from shared.notify.storm import StormGate
from shared.notify.templates import MessageContext, NotifyEvent, RenderedMail, render

MAX_SEND_TRIES = 3
# A row left "sending" this long was abandoned by a crash mid-send.
STALE_SENDING = timedelta(minutes=10)


@dataclass(frozen=True)
class ClaimedEmail:
    """An email whose Notifications row this delivery owns: what is sent, where its row is, whom it is about."""

    partition: str
    record_id: str
    held: Versioned[EmailRecord] | None
    outgoing: OutgoingMail
    event: str
    rank: int
    evidence_for: list[str]
    base: dict[str, Any]


def _older_than(stamp: str | None, age: timedelta, now: datetime) -> bool:
    try:
        return now - datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) > age
    except ValueError:
        return True


class EmailNotifier:
    """Incident emails through the mail sender (None: email disabled, every email evidenced as skipped)."""

    def __init__(self, context: NotifyContext, mailer: MailSender | None):
        self.context, self.mailer = context, mailer
        # issue 14: storm summaries per partner, the per-minute limit of the sending mailbox
        settings = context.settings
        self.storm: StormGate | None = StormGate(context) if settings.storm_threshold > 0 else None
        self.pacer: MailPacer | None = (
            MailPacer(context, settings.mail_sender, settings.mail_max_per_minute) if settings.mail_sender else None
        )

    # -- rendering -----------------------------------------------------------------------------
    def render_for(
        self, incident: Incident, event: NotifyEvent, actions: list[ActionLine] | None = None, **context: Any
    ) -> RenderedMail:
        """The email for ``event`` about ``incident`` (its partner, time zone and evidence links filled in)."""
        ctx = self.context
        return render(
            MessageContext(
                incident=incident,
                event=event,
                base_url=ctx.settings.callback_base_url,
                actions=actions if actions is not None else self.incident_actions(incident.id),
                routed_to_soc=ctx.partners.get(incident.partner_id) is None,
                timezone=ctx.timezone_of(incident),
                console_base_url=ctx.settings.console_base_url,  # issue 16
                **context,
            )
        )

    def incident_actions(self, incident_id: str, containment: Mapping[str, Any] | None = None) -> list[ActionLine]:
        """The incident's containment actions and their results, for messages."""
        store = self.context.store
        try:
            from shared.containment import records as containment_records
        except ImportError:  # pragma: no cover - containment not deployed
            rows = store.list_records("ContainmentActions", incident_id)
        else:
            rows = [containment_records.summary(r) for r in store.list_records(containment_records.TABLE, incident_id)]
        containment = containment or {}
        if not rows:
            rows = [a for a in containment.get("actions") or [] if isinstance(a, dict)]
        elif containment.get("status") == "running":
            # issue 15: containment outlived the notify bound; actions with no row yet are still running
            known = {r.get("actionId") for r in rows}
            rows += [
                a for a in containment.get("actions") or [] if isinstance(a, dict) and a.get("actionId") not in known
            ]
        return action_lines(rows, containment.get("failures") or [])

    # -- delivery ------------------------------------------------------------------------------
    def deliver(
        self,
        partition: str,
        record_id: str,
        event: str,
        mail: RenderedMail,
        recipients: list[str],
        evidence_for: list[str],
        meta: dict[str, Any] | None = None,
        *,
        about: Incident | None = None,
        priority: Priority | None = None,
        row_meta: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Claim the row, send once, record and evidence the outcome (on every incident in ``evidence_for``).

        issue 14: ``about`` (an email about one incident) is counted for its partner's storm and folded into
        the storm summary in a storm (``shared.notify.storm``); every email then asks the mailbox's pacer
        (``shared.notify.pacer``) and waits in the queue when the minute is full. ``priority``: what the
        email is about (default: ``about``'s), its place in the queue. ``row_meta``: kept on the row only.
        """
        ctx = self.context
        at = ctx.clock()
        meta = dict(meta or {})
        priority = priority or (about.priority if about is not None else None)
        skip = None
        if not recipients:
            skip = "no email recipients configured"
        elif self.mailer is None:
            skip = "email disabled: MAIL_SENDER is not set"
        fresh = EmailRecord.parse(
            {
                "channel": "email",
                "kind": event,
                "status": "skipped" if skip else "sending",
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
                **(row_meta or {}),
                **({"priority": priority.value} if priority else {}),
                **({"error": skip} if skip else {}),
            }
        )

        def retry_failed(existing: EmailRecord) -> EmailRecord | None:
            if existing.tries >= MAX_SEND_TRIES:
                return None
            # A row left "sending" by a crash mid-send is taken over once it is old: sending twice
            # beats never telling anyone about an incident.
            abandoned = existing.status == "sending" and _older_than(existing.updated_at, STALE_SENDING, ctx.clock())
            if existing.status != "failed" and not abandoned:
                return None
            redo = {k: v for k, v in fresh.wire().items() if k not in ("createdAt", "tries")}
            return EmailRecord.parse({**existing.wire(), **redo, "status": fresh.status, "tries": existing.tries + 1})

        row, owned, etag = ctx.rows.claim(partition, record_id, fresh, retry_failed)
        if not owned:
            return {"recordId": record_id, "status": row.status, "duplicate": True}
        held = Versioned(row, etag)
        base = {"recordId": record_id, "event": event, "recipients": recipients, "subject": mail.subject, **meta}
        if skip:
            for iid in evidence_for:
                ctx.record_evidence(
                    iid,
                    "notification.email.skipped",
                    f"Email '{event}' not sent: {skip}",
                    {**base, "reason": skip},
                    at=at,
                )
            return {"recordId": record_id, "status": "skipped", "reason": skip}
        if about is not None and self.storm is not None:  # issue 14: a storm folds it into the summary
            folded = self.storm.fold_if_storming(
                about, partition, record_id, held, event, recipients, evidence_for, base
            )
            if folded is not None:
                return folded
        outgoing = OutgoingMail(to=recipients, subject=mail.subject, html=mail.html, importance=mail.importance)
        rank = priority.rank if priority else 4
        claimed = ClaimedEmail(partition, record_id, held, outgoing, event, rank, evidence_for, base)
        if self.pacer is not None and not self.pacer.take(rank):  # issue 14: the minute is full
            return self._queue(claimed, "limit")
        return self._send_and_record(claimed)

    def _send_and_record(self, claimed: ClaimedEmail, from_queue: QueuedMail | None = None) -> dict[str, Any]:
        """Send the claimed email, then record and evidence what happened (``from_queue``: the queue's row)."""
        ctx = self.context
        partition, record_id, held, outgoing = claimed.partition, claimed.record_id, claimed.held, claimed.outgoing
        event, evidence_for, base = claimed.event, claimed.evidence_for, claimed.base
        recipients = outgoing.to
        try:
            self._send(outgoing)
        except MailDeliveryError as exc:
            if self.pacer is not None and exc.status in THROTTLED:
                # issue 14: the mailbox is busy, the email is fine: it waits for a later minute (never dropped)
                self.pacer.throttled()
                return self._queue(claimed, "throttled", from_queue)
            failed_at, error = ctx.clock(), exc.evidence()
            done = ctx.rows.update(
                EmailRecord,
                partition,
                record_id,
                lambda r: r.changed(status="failed", error=error, updated_at=isoformat(failed_at)),
                first=held,
            )
            tries = done.after.tries if done is not None else 1
            for iid in evidence_for:
                ctx.record_evidence(
                    iid,
                    "notification.email.failed",
                    f"Email '{event}' to {len(recipients)} recipient(s) FAILED: {str(exc)[:200]}",
                    {**base, "error": error, "try": tries},
                    at=failed_at,
                )
            return {"recordId": record_id, "status": "failed", "error": error}
        sent_at = ctx.clock()
        stamp = isoformat(sent_at)
        ctx.rows.update(
            EmailRecord,
            partition,
            record_id,
            lambda r: r.changed(status="sent", sent_at=stamp, updated_at=stamp),
            first=held,
        )
        for iid in evidence_for:
            drafts = [
                ctx.draft(
                    "notification.email.sent",
                    f"Email '{event}' sent to {len(recipients)} recipient(s)",
                    {**base, "sentAt": stamp},
                    at=sent_at,
                )
            ]
            drafts += [d for d in [ctx.first_response(iid, sent_at, f"email {event}")] if d]
            ctx.store.append_events(iid, drafts)
        return {"recordId": record_id, "status": "sent", "recipients": recipients}

    # -- issue 14: the mailbox queue -------------------------------------------------------------
    def _queue(self, claimed: ClaimedEmail, why: str, again: QueuedMail | None = None) -> dict[str, Any]:
        """Put the email in the mailbox queue (the queue row first: it holds what is sent), then say so.

        ``again``: the queue's own row, sent and throttled: it stays where it was (its place in the order)."""
        ctx, pacer = self.context, self.pacer
        partition, record_id, held, outgoing = claimed.partition, claimed.record_id, claimed.held, claimed.outgoing
        event, rank, evidence_for, base = claimed.event, claimed.rank, claimed.evidence_for, claimed.base
        assert pacer is not None
        at = ctx.clock()
        stamp = isoformat(at)
        pacer.enqueue(
            again
            or QueuedMail(
                row_key=pacer.queue_key(rank, partition, record_id, at),
                partition=partition,
                record_id=record_id,
                event=event,
                rank=rank,
                to=outgoing.to,
                subject=outgoing.subject,
                html=outgoing.html,
                importance=outgoing.importance,
                evidence_for=evidence_for,
                base=base,
                queued_at=stamp,
            ),
            again=again is not None,
        )
        ctx.rows.update(
            EmailRecord,
            partition,
            record_id,
            lambda r: r.changed(status="queued", queued_at=stamp, updated_at=stamp),
            first=held,
        )
        words = {
            "limit": f"the mailbox's limit of {pacer.limit} emails a minute is reached, or more urgent email waits",
            "throttled": "the mailbox is throttled (Graph asked to slow down)",
        }[why]
        for iid in evidence_for:
            ctx.record_evidence(
                iid,
                "notification.email.queued",
                f"Email '{event}' queued: {words}; it goes out P{rank}-first in a following minute",
                {**base, "queuedAt": stamp, "reason": why, "rank": rank},
                at=at,
            )
        return {"recordId": record_id, "status": "queued", "reason": why}

    def send_queued(self, mail: QueuedMail) -> dict[str, Any]:
        """Send one email of the mailbox queue (the ``mail_pacer`` timer took a send of the minute for it)."""
        assert self.pacer is not None
        at = isoformat(self.context.clock())
        taken = self.context.rows.set_status(
            EmailRecord, mail.partition, mail.record_id, "sending", at, ("queued", "sending")
        )
        if taken is not None and not taken.written:  # sent (or refused) already: it only leaves the queue
            self.pacer.done(mail)
            return {"recordId": mail.record_id, "status": taken.after.status, "duplicate": True}
        held = Versioned(taken.after, taken.etag) if taken is not None else None
        outgoing = OutgoingMail(to=mail.to, subject=mail.subject, html=mail.html, importance=mail.importance)
        claimed = ClaimedEmail(
            mail.partition, mail.record_id, held, outgoing, mail.event, mail.rank, mail.evidence_for, mail.base
        )
        result = self._send_and_record(claimed, mail)
        if result["status"] != "queued":  # queued again (throttled): the same row stays in the queue
            self.pacer.done(mail)
        return result

    def _send(self, mail: OutgoingMail) -> None:
        """Send through the mail sender; whatever it raises becomes a ``MailDeliveryError`` (the row is marked
        failed and retried on a replay, rather than left "sending" by an unexpected error)."""
        if self.mailer is None:  # pragma: no cover - deliver() skips first
            raise MailDeliveryError("email disabled: MAIL_SENDER is not set")
        try:
            self.mailer.send(mail)
        except MailDeliveryError:
            raise
        except Exception as other:
            raise MailDeliveryError(
                f"{type(other).__name__}: {str(other).splitlines()[0][:300] if str(other) else ''}"
            ) from other

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
        return self.deliver(incident.id, record_id, event.value, mail, recipients, [incident.id], meta, about=incident)

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
        ctx = self.context
        incident = load_incident(ctx.store, incident_id)
        priorities = [incident.priority]
        if previous_priority and previous_priority != incident.priority.value:
            priorities.append(Priority(previous_priority))  # whoever was told before hears about the change
        recipients = ctx.email_recipients(incident, *priorities) if include_partner else []
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
