"""Issue 14 in Teams: a partner in a storm gets one summary card per interval, not one card per incident.

Teams cards follow the partner's email storm (``shared.notify.storm``): the email steps count and decide
the storm; this module only reads the gate's state row (``~storm`` / ``state~{partner}``) and asks
``card_decision`` (pure) whether a card goes on its own or is folded:

- not in a storm (``storm.storming``): the card goes as before (``TeamsNotifier.queue``);
- in a storm: the partner's first P1 new-incident card of each window still goes at once (the window's
  ``p1_card_window`` is set under the row's ETag, so one P1 card per window wins however many instances
  ask); every other card — to the partner's channel and to the SOC's — is folded: its row says ``folded``
  with the summary it is due in, the incident gets ``notification.teams.folded``, and a pending item
  (``~storm`` / ``card~{partner}~…``, create-only) waits for the summary.

The summary card is claimed with the partner's email storm summary (the ``mail_pacer`` timer,
``shared.notify.pacing``): same number, same cadence, one ETag claim, and a summary is claimed as well
when only cards are pending. It is a Teams row like any other (``~storm-{partner}`` /
``teams-summary-{n}-{target}``, one per channel, the card stored on it) and is posted by the Teams
deliverer — the ``teams_delivery`` timer within the minute — never by the mail pacer, so a slow webhook
can never hold up the email queue. Its post is evidenced on every incident it carries; it is retried like
any card. Items leave the pending list once their summary row is written; a summary row found written
already (a rerun) leaves them for the next summary, so nothing is dropped.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, ClassVar

from shared.errors import ConcurrencyError, ConflictError
from shared.models import Incident, Priority, isoformat
from shared.notify.context import NotifyContext
from shared.notify.email import EmailNotifier
from shared.notify.records import NOTIFICATIONS
from shared.notify.storm import (
    SOC_KEY,
    STORM_PARTITION,
    STORM_SUMMARY,
    Decision,
    FoldedItem,
    StormGate,
    StormRules,
    StormState,
    keep_pending,
    partner_key,
    storming,
)
from shared.notify.storm_mail import most_urgent, summary_lines
from shared.notify.teams_cards import CardKind
from shared.notify.teams_records import TeamsOutboxRecord, TeamsRecord, outbox_partition
from shared.notify.teams_storm_card import StormCard, build_storm_card, storm_headline


def card_decision(
    state: StormState | None, now: datetime, rules: StormRules, kind: CardKind, priority: Priority
) -> tuple[Decision, StormState | None]:
    """Send the card on its own, or fold it into the partner's storm summary card. Pure.

    Returns the decision and, when the card takes the window's one P1 card, the state to write (under
    the row's ETag: whoever writes it first sends its card; the others fold).
    """
    if state is None or not storming(state, now, rules):
        return Decision.SEND, None
    if kind == CardKind.NEW and priority == Priority.P1 and state.p1_card_window != state.window_start:
        return Decision.SEND, state.changed(p1_card_window=state.window_start)
    return Decision.FOLD, None


class StormCardItem(FoldedItem):
    """One folded card waiting for its partner's next summary card (``~storm`` / ``card~…``)."""

    CHANNEL: ClassVar[str | None] = "storm-card"

    target: str | None = None
    secret_name: str | None = None


def summary_record_id(number: int, target: str) -> str:
    return f"teams-summary-{number:05d}-{target}"


class TeamsStorm:
    """Folds a storming partner's cards and queues its summary cards."""

    def __init__(self, context: NotifyContext, email: EmailNotifier):
        self.context, self.email = context, email

    @property
    def gate(self) -> StormGate | None:
        return self.email.storm

    def decide(self, incident: Incident, kind: CardKind) -> tuple[Decision, StormState | None]:
        """The card's fate, from the partner's storm state as the email steps left it."""
        gate = self.gate
        if gate is None:
            return Decision.SEND, None
        ctx, key, now = self.context, partner_key(incident.partner_id), self.context.clock()
        decided: dict[str, Decision] = {}

        def change(state: StormState) -> StormState | None:
            decided["d"], after = card_decision(state, now, gate.rules, kind, incident.priority)
            return after

        try:
            done = ctx.rows.update(StormState, STORM_PARTITION, f"state~{key}", change)
        except ConcurrencyError:  # as contended as that: a storm by any measure (the gate says the same)
            return (Decision.SEND if incident.priority == Priority.P1 else Decision.FOLD), None
        if done is None:
            return Decision.SEND, None  # no email ever counted for this partner: no storm
        return decided.get("d", Decision.SEND), done.after

    def fold(
        self, incident: Incident, kind: CardKind, key: str, channels: list[tuple[str, str]], state: StormState | None
    ) -> dict[str, Any]:
        """Fold the card for each channel: row ``folded``, a pending item, ``notification.teams.folded``."""
        ctx, now = self.context, self.context.clock()
        stamp, pkey = isoformat(now), partner_key(incident.partner_id)
        number = (state.summary_seq if state else 0) + 1
        summary = f"~storm-{pkey}/summary-{number:05d}"
        due = (state.next_summary_at if state else None) or stamp
        out: dict[str, Any] = {}
        for target, secret in channels:
            record_id = f"teams-{key}-{target}"
            row = TeamsRecord(
                channel="teams",
                kind=kind.value,
                status="folded",
                record_id=record_id,
                recipient=f"{target}:{secret}",
                target=target,
                secret_name=secret,
                incident_id=incident.id,
                event=kind.value,
                priority=incident.priority.value,
                summary=summary,
                created_at=stamp,
                updated_at=stamp,
            )
            try:
                ctx.rows.create(incident.id, record_id, row)
            except ConflictError:
                out[target] = {"recordId": record_id, "duplicate": True}
                continue
            item_key = f"card~{pkey}~{stamp}~{incident.id}~{record_id}"
            keep_pending(
                ctx,
                StormCardItem.pending(
                    incident, kind.value, item_key, pkey, record_id, stamp, target=target, secret_name=secret
                ),
            )
            ctx.record_evidence(
                incident.id,
                "notification.teams.folded",
                f"Teams card '{kind.value}' to the {target} channel gathered into the storm summary "
                f"summary-{number:05d} of {incident.partner_name or pkey} (due {due})",
                {
                    "recordId": record_id,
                    "event": kind.value,
                    "target": target,
                    "secretName": secret,
                    "summary": summary,
                    "summaryDueAt": due,
                    "storm": {"partner": pkey, "since": state.storming_since if state else None},
                },
                at=now,
            )
            out[target] = {"recordId": record_id, "status": "folded", "summary": summary}
        return out

    # -- the summary cards (claimed with the email summary, by the mail_pacer timer) ----------------
    def pending(self) -> dict[str, list[StormCardItem]]:
        """Folded cards not yet in a summary, per partner key, oldest first."""
        out: dict[str, list[StormCardItem]] = {}
        for doc in self.context.store.list_records(NOTIFICATIONS, STORM_PARTITION):
            if doc.get("channel") == "storm-card":
                item = StormCardItem.parse(doc)
                out.setdefault(item.partner_key or SOC_KEY, []).append(item)
        for items in out.values():
            items.sort(key=lambda i: (i.folded_at or "", i.row_key or ""))
        return out

    def queue_summary(
        self, key: str, number: int, since: str | None, items: list[StormCardItem], names: tuple[str, str | None]
    ) -> dict[str, Any]:
        """Queue summary ``number`` to each channel with folded cards (posted by the Teams deliverer)."""
        gate = self.gate
        assert gate is not None
        ctx, now = self.context, self.context.clock()
        stamp, partition = isoformat(now), f"~storm-{key}"
        out: dict[str, Any] = {}
        by_channel: dict[tuple[str, str], list[StormCardItem]] = {}
        for item in items:
            by_channel.setdefault((item.target or "partner", item.secret_name or ""), []).append(item)
        for (target, secret), carried in by_channel.items():
            lines, p1 = summary_lines(carried)
            card = StormCard(
                partner_name=names[0],
                partner_id=names[1],
                number=number,
                lines=lines,
                since=since,
                every_minutes=int(gate.rules.summary_every.total_seconds() // 60),
                containment={iid: self.email.incident_actions(iid) for iid in p1},
                console_base_url=ctx.settings.console_base_url,
            )
            incidents = list(dict.fromkeys(line.incident_id for line in lines if line.incident_id))
            record_id = summary_record_id(number, target)
            top = most_urgent(lines)
            row = TeamsRecord(
                channel="teams",
                kind=STORM_SUMMARY,
                status="queued",
                record_id=record_id,
                recipient=f"{target}:{secret}",
                target=target,
                secret_name=secret,
                incident_id=partition,
                event=STORM_SUMMARY,
                priority=top,
                summary=f"{partition}/summary-{number:05d}",
                incidents=incidents,
                card_json=json.dumps(build_storm_card(card), separators=(",", ":")),
                headline=storm_headline(card),
                created_at=stamp,
                updated_at=stamp,
                tries=0,
                next_try_at=stamp,
                outbox=outbox_partition(now),
            )
            try:
                ctx.rows.create(partition, record_id, row)
            except ConflictError:  # a rerun of this summary: its items wait for the next one (never dropped)
                out[target] = {"recordId": record_id, "duplicate": True}
                continue
            pointer = TeamsOutboxRecord(
                channel="teams-outbox",
                status="queued",
                incident_id=partition,
                record_id=record_id,
                priority=top,
                secret_name=secret,
                created_at=stamp,
                updated_at=stamp,
            )
            try:
                ctx.rows.create(outbox_partition(now), f"{partition}~{record_id}", pointer)
            except ConflictError:
                pass
            for item in carried:
                if item.row_key:
                    ctx.store.delete_record(NOTIFICATIONS, STORM_PARTITION, item.row_key)
            out[target] = {"recordId": record_id, "status": "queued", "incidents": len(incidents)}
        return out
