"""Teams cards (issue 16): queued where the email goes out, posted apart from it, retried and evidenced.

Where an email about a new P1/P2, a held approval, a containment failure or an acknowledgement is sent,
``queue`` claims one ``Notifications`` row per Teams channel (the partner's and the SOC's, each a Key
Vault secret named in the registry) with a conditional insert, so a replayed step never posts twice,
plus a pointer in the hour's outbox partition. Nothing is posted there: a slow or failing Teams webhook
can never hold up, fail or repeat the email, and calls are placed by their own activity.

Posting (``deliver``) is done by the runbook's own activity after the email and the call start
(``post_teams_cards``, immediate for new incidents and held / failed containment) and by the
``teams_delivery`` timer every minute (acknowledgements, failures of approval runs, and every retry).
A post takes the row under its ETag (``queued`` or ``failed`` and due → ``sending``, tries + 1), so two
deliverers never post the same card; a failure is evidenced and retried with back-off (the channel's
Retry-After when longer) up to ``MAX_TRIES`` times, a final refusal at once; a row left ``sending`` by
a crash is taken over after ``STALE_SENDING``.

Evidence on the incident: ``notification.teams.sent|failed|skipped`` with the channel, the secret's
name, the SHA-256 of the webhook URL and of the card — never the URL.

Issue 14: a storming partner's cards are folded into one summary card per interval (``teams_storm``),
posted here and evidenced on every incident it carries; each channel keeps a pace (``teams_pace``): a card
over it stays queued, and the timer posts waiting cards P1 first, then oldest first.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta
from typing import Any

from shared.errors import ConflictError
from shared.etag import Versioned
from shared.models import Incident, Priority, isoformat
from shared.notify.context import NotifyContext
from shared.notify.email import EmailNotifier
from shared.notify.incidents import load_incident
from shared.notify.storm import STORM_SUMMARY, Decision
from shared.notify.teams_cards import CardContext, CardKind, build_card, headline
from shared.notify.teams_pace import TeamsPace
from shared.notify.teams_ports import TeamsDeliveryError, TeamsPoster
from shared.notify.teams_records import TeamsOutboxRecord, TeamsRecord, outbox_partition
from shared.notify.teams_storm import TeamsStorm
from shared.notify.templates import NotifyEvent

log = logging.getLogger("soc_responder.notify.teams")

MAX_TRIES = 5
BACKOFF = (timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8))
MAX_WAIT = timedelta(minutes=15)  # the longest a Retry-After may push a retry (the outbox is scanned 2 hours back)
STALE_SENDING = timedelta(minutes=5)
OUTBOX_HOURS = 2
DONE = ("sent", "skipped", "gave-up", "folded")  # folded (issue 14): its summary card is posted instead


def card_for(event: NotifyEvent, priority: Priority, previous: str | None = None) -> CardKind | None:
    """Which card an email event gets in Teams, if any: new P1/P2 (or raised to P1/P2), held, failed, acknowledged."""
    if event == NotifyEvent.CONTAINMENT_HELD:
        return CardKind.HELD
    if event == NotifyEvent.CONTAINMENT_FAILED:
        return CardKind.FAILED
    if priority not in (Priority.P1, Priority.P2):
        return None
    if event == NotifyEvent.ACKNOWLEDGED:
        return CardKind.ACKNOWLEDGED
    if event == NotifyEvent.NEW_INCIDENT:
        return CardKind.NEW
    if event == NotifyEvent.PRIORITY_CHANGED and previous is not None and previous in Priority.__members__:
        return CardKind.NEW if Priority(previous).rank > priority.rank else None
    return None


def _at(stamp: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else None
    except ValueError:
        return None


def _rank(priority: str | None) -> int:
    return Priority(str(priority)).rank if priority in Priority.__members__ else 4


class TeamsNotifier:
    """Queues and posts Teams cards (``poster`` None: KEY_VAULT_URL unset, every card evidenced as skipped)."""

    def __init__(self, context: NotifyContext, email: EmailNotifier, poster: TeamsPoster | None):
        self.context, self.email, self.poster = context, email, poster
        self.storm = TeamsStorm(context, email)  # issue 14: storm summaries in Teams
        self.pace = TeamsPace(context, context.settings.teams_posts_per_minute)  # issue 14: per channel

    # -- where the card goes ----------------------------------------------------------------
    def channels(self, incident: Incident) -> list[tuple[str, str]]:
        """(target, secret name) of the channels told about the incident: its partner's, and the SOC's."""
        out: list[tuple[str, str]] = []
        partner = self.context.partners.get(incident.partner_id)
        if partner is not None and partner.teamsWebhookSecret:
            out.append(("partner", partner.teamsWebhookSecret))
        soc = self.context.partners.soc.teamsWebhookSecret
        if soc and all(secret != soc for _, secret in out):
            out.append(("soc", soc))
        return out

    # -- queue (called where the email is sent; never posts) ----------------------------------------
    def after_email(
        self,
        incident: Incident,
        event: NotifyEvent,
        key: str,
        *,
        previous_priority: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any] | None:
        """The hook of the email steps: queue the card this email event gets in Teams, if any.

        Never raises: the email has gone out and its step must not fail or be retried because of Teams.
        """
        kind = card_for(event, incident.priority, previous_priority)
        if kind is None:
            return None
        try:
            return self.queue(
                incident,
                kind,
                key,
                raised_from=previous_priority if kind == CardKind.NEW else None,
                actor=actor,
                reason=reason,
            )
        except Exception as exc:
            log.exception("queueing the Teams card %s for %s failed", key, incident.id)
            return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}

    def queue(
        self,
        incident: Incident,
        kind: CardKind,
        key: str,
        *,
        raised_from: str | None = None,
        actor: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Claim one row per channel for this card (at most once per ``key``); nothing is posted here."""
        ctx = self.context
        channels = self.channels(incident)
        if not channels:
            return {"status": "no-channel"}
        if self.poster is not None:  # issue 14: a storming partner's card waits for its summary card
            decision, state = self.storm.decide(incident, kind)
            if decision == Decision.FOLD:
                return self.storm.fold(incident, kind, key, channels, state)
        at = ctx.clock()
        stamp = isoformat(at)
        out: dict[str, Any] = {}
        for target, secret in channels:
            record_id = f"teams-{key}-{target}"
            skip = None if self.poster is not None else "Teams disabled: KEY_VAULT_URL is not set"
            row = TeamsRecord.parse(
                {
                    "channel": "teams",
                    "kind": kind.value,
                    "status": "skipped" if skip else "queued",
                    "recordId": record_id,
                    "recipient": f"{target}:{secret}",
                    "target": target,
                    "secretName": secret,
                    "incidentId": incident.id,
                    "event": kind.value,
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "tries": 0,
                    "nextTryAt": stamp,
                    "outbox": None if skip else outbox_partition(at),
                    "priority": incident.priority.value,
                    **({"raisedFrom": raised_from} if raised_from else {}),
                    **({"actor": actor} if actor else {}),
                    **({"reason": reason[:2000]} if reason else {}),
                    **({"error": skip} if skip else {}),
                }
            )
            try:
                ctx.rows.create(incident.id, record_id, row)
            except ConflictError:
                out[target] = {"recordId": record_id, "duplicate": True}
                continue
            if skip:
                ctx.record_evidence(
                    incident.id,
                    "notification.teams.skipped",
                    f"Teams card '{kind.value}' to the {target} channel not posted: {skip}",
                    {
                        "recordId": record_id,
                        "event": kind.value,
                        "target": target,
                        "secretName": secret,
                        "reason": skip,
                    },
                    at=at,
                )
                out[target] = {"recordId": record_id, "status": "skipped"}
                continue
            pointer = TeamsOutboxRecord.parse(
                {
                    "channel": "teams-outbox",
                    "status": "queued",
                    "incidentId": incident.id,
                    "recordId": record_id,
                    "priority": incident.priority.value,
                    "secretName": secret,
                    "createdAt": stamp,
                    "updatedAt": stamp,
                }
            )
            try:
                ctx.rows.create(outbox_partition(at), f"{incident.id}~{record_id}", pointer)
            except ConflictError:
                pass
            out[target] = {"recordId": record_id, "status": "queued"}
        return out

    # -- post ------------------------------------------------------------------------------
    def deliver_incident(self, incident_id: str) -> list[dict[str, Any]]:
        """Post the incident's cards that are due (the runbook's step, after the email and the call start)."""
        rows = [r for r in self.context.rows.all_of(incident_id) if r.get("channel") == "teams" and r.get("recordId")]
        return [self.deliver(incident_id, str(r["recordId"])) for r in rows]

    def deliver_due(self, now: datetime | None = None, limit: int = 200) -> dict[str, Any]:
        """The timer: post every due card of the last ``OUTBOX_HOURS`` hours' outboxes (at most ``limit``)."""
        ctx = self.context
        now = now or ctx.clock()  # the notification clock, as the mail_pacer timer's
        report: dict[str, Any] = {"posted": 0, "failed": 0, "waiting": 0, "done": 0}
        tried = 0
        pointers: list[TeamsOutboxRecord] = []
        for hours in range(OUTBOX_HOURS, -1, -1):
            partition = outbox_partition(now - timedelta(hours=hours))
            for doc in ctx.rows.all_of(partition):
                pointer = TeamsOutboxRecord.parse(doc)
                if pointer.status == "queued" and pointer.incident_id and pointer.record_id:
                    pointers.append(pointer)
        # issue 14: P1 first, then oldest first; a channel over its pace is not asked again in this run,
        # so its cards keep their order for the next minute
        pointers.sort(key=lambda p: (_rank(p.priority), p.created_at or ""))
        full: set[str] = set()
        for pointer in pointers:
            assert pointer.incident_id and pointer.record_id
            if tried >= limit or (pointer.secret_name and pointer.secret_name in full):
                report["waiting"] += 1
                continue
            tried += 1
            try:
                result = self.deliver(pointer.incident_id, pointer.record_id)
            except Exception:  # one card's trouble (its row unreadable, the store busy) never stops the others
                log.exception("Teams card %s of %s", pointer.record_id, pointer.incident_id)
                result = {"status": "failed"}
            status = result.get("status")
            if status == "paced" and pointer.secret_name:
                full.add(pointer.secret_name)
            report["posted"] += status == "sent"
            report["failed"] += status in ("failed", "gave-up")
            report["waiting"] += status in ("not-due", "busy", "paced")
        return report

    def deliver(self, incident_id: str, record_id: str) -> dict[str, Any]:
        """Post one card if it is due and nobody else is posting it; record and evidence the outcome."""
        ctx = self.context
        now = ctx.clock()
        stamp = isoformat(now)
        state: dict[str, str] = {}

        def take(row: TeamsRecord) -> TeamsRecord | None:
            state["was"] = str(row.status)
            if row.status in DONE or row.tries >= MAX_TRIES:
                return None
            if row.status == "sending":
                sending_since = _at(row.updated_at)
                if sending_since is not None and now - sending_since < STALE_SENDING:
                    return None
            due = _at(row.next_try_at)
            if row.status != "sending" and due is not None and due > now:
                return None
            return row.changed(status="sending", tries=row.tries + 1, updated_at=stamp)

        current = ctx.rows.read(TeamsRecord, incident_id, record_id)
        if current is None:
            return {"recordId": record_id, "status": "missing"}
        if take(current.value) is not None and not self.pace.take(
            str(current.value.secret_name), _rank(current.value.priority)
        ):
            return {"recordId": record_id, "status": "paced"}  # issue 14: the channel's minute is full
        done = ctx.rows.update(TeamsRecord, incident_id, record_id, take, first=current)
        if done is None:
            return {"recordId": record_id, "status": "missing"}
        if not done.written:
            was = state.get("was")
            if was in DONE or done.before.tries >= MAX_TRIES:
                self._close_pointer(done.before, record_id)
                return {"recordId": record_id, "status": was}
            return {"recordId": record_id, "status": "busy" if was == "sending" else "not-due"}
        row, held = done.after, Versioned(done.after, done.etag)
        try:
            incident, card = self._card(incident_id, row)
        except Exception as exc:  # the card could not even be built (incident purged …): a failed try, not "sending"
            log.exception("Teams card %s of %s", record_id, incident_id)
            failure = TeamsDeliveryError(f"the card could not be built ({type(exc).__name__})")
            base = {"recordId": record_id, "event": row.event, "target": row.target, "secretName": row.secret_name}
            return self._failed(incident_id, record_id, row, held, failure, {**base, "try": row.tries})
        return self._post_row(incident_id, record_id, row, held, incident, card)

    def _card(self, incident_id: str, row: TeamsRecord) -> tuple[Incident | None, dict[str, Any]]:
        """The card, from the incident and its containment as they are now (a retry shows the latest)."""
        ctx = self.context
        if row.kind == STORM_SUMMARY:  # issue 14: built when the summary was claimed, stored on its row
            return None, json.loads(str(row.card_json))
        incident = load_incident(ctx.store, incident_id)
        kind = CardKind(str(row.kind))
        card = build_card(
            CardContext(
                incident=incident,
                kind=kind,
                actions=self.email.incident_actions(incident_id) if kind != CardKind.ACKNOWLEDGED else [],
                console_base_url=ctx.settings.console_base_url,
                timezone=ctx.timezone_of(incident),
                raised_from=row.raised_from,
                actor=row.actor,
                reason=row.reason,
            )
        )
        return incident, card

    def _post_row(
        self,
        incident_id: str,
        record_id: str,
        row: TeamsRecord,
        held: Versioned[TeamsRecord],
        incident: Incident | None,
        card: dict[str, Any],
    ) -> dict[str, Any]:
        """Post the card, record and evidence the outcome."""
        ctx = self.context
        card_hash = hashlib.sha256(json.dumps(card, sort_keys=True).encode("utf-8")).hexdigest()
        base = {
            "recordId": record_id,
            "event": row.event,
            "target": row.target,
            "secretName": row.secret_name,
            "cardSha256": card_hash,
            "headline": row.headline
            if incident is None
            else headline(CardContext(incident, CardKind(str(row.kind)), raised_from=row.raised_from)),
            "try": row.tries,
            **({"summary": row.summary, "incidentCount": len(row.incidents or [])} if row.incidents else {}),
        }
        try:
            posted = self._post(str(row.secret_name), card)
        except TeamsDeliveryError as exc:
            if exc.status == 429:  # issue 14: the channel said slow down: nothing more to it for a minute
                self.pace.throttled(str(row.secret_name))
            return self._failed(incident_id, record_id, row, held, exc, base)
        sent_at = ctx.clock()
        sent = isoformat(sent_at)
        ctx.rows.update(
            TeamsRecord,
            incident_id,
            record_id,
            lambda r: r.changed(
                status="sent",
                posted_at=sent,
                updated_at=sent,
                card_sha256=card_hash,
                url_sha256=posted.url_sha256,
                http_status=posted.status,
                error=None,
            ),
            first=held,
        )
        for iid in row.incidents or [incident_id]:  # issue 14: a summary card, on every incident it carries
            ctx.record_evidence(
                iid,
                "notification.teams.sent",
                f"Teams card '{row.event}' posted to the {row.target} channel"
                + (f" ({row.summary})" if row.incidents else ""),
                {**base, "urlSha256": posted.url_sha256, "httpStatus": posted.status, "postedAt": sent},
                at=sent_at,
            )
        self._close_pointer(row, record_id)
        return {"recordId": record_id, "status": "sent"}

    def _post(self, secret_name: str, card: dict[str, Any]):
        if self.poster is None:  # queue() skipped such rows; a row queued before KEY_VAULT_URL was removed
            raise TeamsDeliveryError("Teams disabled: KEY_VAULT_URL is not set", final=True)
        try:
            return self.poster.post(secret_name, card)
        except TeamsDeliveryError:
            raise
        except Exception as exc:  # anything unexpected is a failed try, never a row left "sending"
            raise TeamsDeliveryError(f"posting the card failed ({type(exc).__name__})") from exc

    def _failed(
        self,
        incident_id: str,
        record_id: str,
        row: TeamsRecord,
        held: Versioned[TeamsRecord],
        exc: TeamsDeliveryError,
        base: dict[str, Any],
    ) -> dict[str, Any]:
        ctx = self.context
        failed_at = ctx.clock()
        error = exc.evidence()
        give_up = exc.final or row.tries >= MAX_TRIES
        wait = BACKOFF[min(row.tries, len(BACKOFF)) - 1] if row.tries else BACKOFF[0]
        if exc.retry_after:
            wait = max(wait, timedelta(seconds=exc.retry_after))
        retry_at = None if give_up else isoformat(failed_at + min(wait, MAX_WAIT))
        ctx.rows.update(
            TeamsRecord,
            incident_id,
            record_id,
            lambda r: r.changed(
                status="gave-up" if give_up else "failed",
                error=error,
                next_try_at=retry_at,
                url_sha256=exc.url_sha256 or r.url_sha256,
                http_status=exc.status,
                updated_at=isoformat(failed_at),
            ),
            first=held,
        )
        then = "no further try" if give_up else f"next try at {retry_at}"
        for iid in row.incidents or [incident_id]:  # issue 14: a summary card, on every incident it carries
            ctx.record_evidence(
                iid,
                "notification.teams.failed",
                f"Teams card '{row.event}' to the {row.target} channel FAILED (try {row.tries} of {MAX_TRIES}): "
                f"{str(exc)[:200]}; {then}",
                {**base, "error": error, "final": give_up, "nextTryAt": retry_at},
                at=failed_at,
            )
        if give_up:
            self._close_pointer(row, record_id)
        return {"recordId": record_id, "status": "gave-up" if give_up else "failed", "nextTryAt": retry_at}

    def _close_pointer(self, row: TeamsRecord, record_id: str) -> None:
        """The card needs no further post: its outbox pointer is marked done (the timer skips it)."""
        if not row.outbox or not row.incident_id:
            return
        self.context.rows.set_status(
            TeamsOutboxRecord,
            row.outbox,
            f"{row.incident_id}~{record_id}",
            "done",
            isoformat(self.context.clock()),
            ("queued",),
        )
