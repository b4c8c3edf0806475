"""Issue 14: storm summaries — a partner flooded with notifications gets a summary every few minutes instead.

When one partner gets more than ``STORM_THRESHOLD`` emails within ``STORM_WINDOW_MINUTES``, it is in a storm:
its further incident emails (new incident, priority changed, containment held or failed, released …) are
*folded*: each becomes a pending item of the partner's storm summary, sent every ``STORM_SUMMARY_MINUTES``
by the ``mail_pacer`` timer (counts by priority, top rules, top hosts, every P1's containment result, a
console link per incident). The partner's first P1 email of each window still goes at once, so the SOC's
P1 promise holds inside a storm. A storm goes on while each window crosses the threshold, and ends after a
window that does not; what is still pending then goes in a last summary.

Nothing is lost, and each step is on the incident's own timeline: a folded email's row says ``folded``
(with the summary it is due in) and the incident gets ``notification.email.folded``; the summary's send is
evidenced on every incident it carries (``notification.email.sent``, kind ``storm-summary``, naming the
summary), with the first-response stamp when it was the incident's first notification.

Rows (Notifications table, partition ``~storm``): ``state~{partner}`` — the partner's counted window, an
ETag-guarded counter (``update_under_etag``), so concurrent emails of one partner are counted exactly;
``item~{partner}~…`` — one pending folded email (create-only: a replay folds it once), deleted once a
summary carries it. An item written after a summary listed the items simply goes in the next one: the
timer sends a summary whenever items are pending and one is due.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import Field

from shared.errors import ConcurrencyError, ConflictError
from shared.etag import Versioned
from shared.models import Incident, Priority, isoformat
from shared.notify.context import NotifyContext
from shared.notify.records import NOTIFICATIONS, EmailRecord, NotificationRecord
from shared.settings import Settings
from shared.store import key_hash

STORM_PARTITION = "~storm"
STORM_SUMMARY = "storm-summary"  # the summary email's kind (evidence, rows)
SOC_KEY = "_soc"  # incidents that matched no partner: the SOC's own storm


class Decision(StrEnum):
    SEND = "send"
    FOLD = "fold"


@dataclass(frozen=True)
class StormRules:
    """The storm settings, as numbers (``STORM_THRESHOLD`` 0: never a storm)."""

    threshold: int
    window: timedelta
    summary_every: timedelta

    @classmethod
    def of(cls, settings: Settings) -> StormRules:
        return cls(
            settings.storm_threshold,
            timedelta(minutes=settings.storm_window_minutes),
            timedelta(minutes=settings.storm_summary_minutes),
        )


class StormState(NotificationRecord):
    """One partner's counted window and storm (``~storm`` / ``state~{partner}``)."""

    CHANNEL: ClassVar[str | None] = "storm"

    partner_key: str | None = None
    window_start: str | None = None
    count: int = 0
    p1_sent: bool = False
    """A P1 email of this partner went out individually in this window."""
    storming_since: str | None = None
    next_summary_at: str | None = None
    summary_seq: int = 0
    """Summaries sent so far; the next one is ``summary-{summary_seq + 1}``."""
    p1_card_window: str | None = None
    """The window (its ``window_start``) whose first P1 Teams card went out on its own (issue 14, Teams)."""


def _at(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None


def admit(state: StormState, now: datetime, priority: Priority, rules: StormRules) -> tuple[StormState, Decision]:
    """Count one email of the partner at ``now``: send it on its own, or fold it into the storm summary. Pure.

    Windows follow each other from the first email after the last window closed. A storm starts with the
    email that makes the window's count exceed the threshold; the next window starts in the storm when the
    window before crossed the threshold, and the storm ends with a window that does not.
    """
    start = _at(state.window_start)
    storming = state.storming_since
    count, p1_sent = state.count, state.p1_sent
    if start is None or now >= start + rules.window:
        carried = start is not None and now < start + 2 * rules.window and count > rules.threshold
        storming = storming if carried else None
        start, count, p1_sent = now, 0, False
    count += 1
    next_summary = state.next_summary_at
    if rules.threshold > 0 and storming is None and count > rules.threshold:
        storming = isoformat(now)
        due = _at(next_summary)
        if due is None or due < now:  # the first summary of a storm: one interval from its start
            next_summary = isoformat(now + rules.summary_every)
    decision = Decision.SEND
    if storming is not None:
        decision = Decision.SEND if priority == Priority.P1 and not p1_sent else Decision.FOLD
    if decision == Decision.SEND and priority == Priority.P1:
        p1_sent = True
    after = state.changed(
        window_start=isoformat(start),
        count=count,
        p1_sent=p1_sent,
        storming_since=storming,
        next_summary_at=next_summary,
    )
    return after, decision


def storming(state: StormState | None, now: datetime, rules: StormRules) -> bool:
    """Is the partner in a storm at ``now``, as ``admit`` would count its next email? Pure.

    Teams cards (``shared.notify.teams_storm``) follow this without counting: the email steps count.
    """
    if state is None or rules.threshold <= 0 or state.storming_since is None:
        return False
    start = _at(state.window_start)
    if start is None:
        return False
    if now < start + rules.window:
        return True
    return now < start + 2 * rules.window and state.count > rules.threshold


def summary_due(state: StormState | None, now: datetime) -> bool:
    """Is a summary of the pending items due at ``now`` (none sent yet in this interval)? Pure."""
    due = _at(state.next_summary_at) if state else None
    return due is None or now >= due


def partner_key(partner_id: str | None) -> str:
    """The partner's part of storm row keys (the registry's id when it is table-key safe)."""
    if not partner_id:
        return SOC_KEY
    return partner_id if re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", partner_id) else key_hash(partner_id)[:32]


class FoldedItem(NotificationRecord):
    """What every folded notification (an email or a Teams card) keeps for its partner's storm summary."""

    row_key: str | None = None
    partner_key: str | None = None
    record_id: str | None = None
    incident_id: str | None = None
    priority: str | None = None
    title: str | None = None
    rules: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)
    folded_at: str | None = None

    @classmethod
    def pending(
        cls, incident: Incident, kind: str, row_key: str, partner: str, record_id: str, at: str, **extra: Any
    ) -> Self:
        """A new item, pending its partner's next summary, folded at ``at`` (``extra``: the subclass's fields)."""
        return cls(
            channel=cls.CHANNEL,
            kind=kind,
            status="pending",
            created_at=at,
            row_key=row_key,
            partner_key=partner,
            record_id=record_id,
            **about_incident(incident),
            folded_at=at,
            **extra,
        )


def keep_pending(context: NotifyContext, item: FoldedItem) -> None:
    """Write the item once (create-only: a replayed fold finds it there and leaves it)."""
    try:
        context.rows.create(STORM_PARTITION, str(item.row_key), item)
    except ConflictError:
        pass


class StormItem(FoldedItem):
    """One folded email waiting for its partner's next storm summary (``~storm`` / ``item~…``)."""

    CHANNEL: ClassVar[str | None] = "storm-item"

    partition: str | None = None
    recipients: list[str] = Field(default_factory=list)
    evidence_for: list[str] = Field(default_factory=list)


def about_incident(incident: Incident) -> dict[str, Any]:
    """What a folded item keeps of its incident for the summary: id, priority, title, rules fired, hosts."""
    kinds = {"host", "azureResource"}
    hosts = dict.fromkeys(e.display.rsplit("/", 1)[-1] for e in incident.entities if e.kind.value in kinds)
    return {
        "incident_id": incident.id,
        "priority": incident.priority.value,
        "title": incident.title[:300],
        "rules": [h.rule_id for h in incident.triage.rules_fired[:8]],
        "hosts": list(hosts)[:5],
    }


class StormGate:
    """Counts each partner's emails and folds those of a storm into its summary."""

    def __init__(self, context: NotifyContext):
        self.context = context
        self.rules = StormRules.of(context.settings)

    def _state(self, key: str) -> Versioned[StormState] | None:
        return self.context.rows.read(StormState, STORM_PARTITION, f"state~{key}")

    def count(self, key: str, priority: Priority, now: datetime) -> tuple[Decision, StormState]:
        """Count one email of the partner (ETag-guarded; the row is created on its first email)."""
        rows, decided = self.context.rows, {}

        def change(state: StormState) -> StormState:
            after, decided["decision"] = admit(state, now, priority, self.rules)
            return after

        for _ in range(2):
            done = rows.update(StormState, STORM_PARTITION, f"state~{key}", change)
            if done is not None:
                return decided["decision"], done.after
            fresh = change(StormState(channel="storm", partner_key=key, created_at=isoformat(now)))
            try:
                rows.create(STORM_PARTITION, f"state~{key}", fresh)
                return decided["decision"], fresh
            except ConflictError:
                continue
        raise ConflictError(f"storm state of {key} could not be counted")  # pragma: no cover - two lost creates

    def fold_if_storming(
        self,
        incident: Incident,
        partition: str,
        record_id: str,
        held: Versioned[EmailRecord],
        event: str,
        recipients: list[str],
        evidence_for: list[str],
        base: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Count the email; in a storm, fold it (item + row ``folded`` + evidence) and say so. None: send it."""
        if self.rules.threshold <= 0:
            return None
        ctx = self.context
        now = ctx.clock()
        key = partner_key(incident.partner_id)
        try:
            decision, state = self.count(key, incident.priority, now)
        except ConcurrencyError:
            # A partner's counter this contended is in a storm by any measure: fold (a P1 still goes at once).
            current = self._state(key)
            state = current.value if current else StormState(partner_key=key)
            decision = Decision.SEND if incident.priority == Priority.P1 else Decision.FOLD
        if decision == Decision.SEND:
            return None
        summary = f"summary-{state.summary_seq + 1:05d}"
        due = state.next_summary_at or isoformat(now + self.rules.summary_every)
        stamp = isoformat(now)
        item_key = f"item~{key}~{stamp}~{partition}~{record_id}"
        keep_pending(
            ctx,
            StormItem.pending(
                incident,
                event,
                item_key,
                key,
                record_id,
                stamp,
                partition=partition,
                recipients=recipients,
                evidence_for=evidence_for,
            ),
        )
        ctx.rows.update(
            EmailRecord,
            partition,
            record_id,
            lambda r: r.changed(status="folded", summary=f"~storm-{key}/{summary}", updated_at=stamp),
            first=held,
        )
        data = {
            **base,
            "storm": {"partner": key, "since": state.storming_since, "emailsInWindow": state.count},
            "summary": f"~storm-{key}/{summary}",
            "summaryDueAt": due,
        }
        for iid in evidence_for:
            ctx.record_evidence(
                iid,
                "notification.email.folded",
                f"Email '{event}' gathered into the storm summary {summary} of {incident.partner_name or key} "
                f"(due {due}): {state.count} emails to this partner in {self.rules.window.seconds // 60} min",
                data,
                at=now,
            )
        return {"recordId": record_id, "status": "folded", "summary": summary, "summaryDueAt": due}

    # -- the summaries (the mail_pacer timer) ---------------------------------------------------------
    def pending(self) -> dict[str, list[StormItem]]:
        """Folded emails not yet carried by a summary, per partner key, oldest first."""
        out: dict[str, list[StormItem]] = {}
        for doc in self.context.store.list_records(NOTIFICATIONS, STORM_PARTITION):
            if doc.get("channel") == "storm-item":
                item = StormItem.parse(doc)
                out.setdefault(item.partner_key or SOC_KEY, []).append(item)
        for items in out.values():
            items.sort(key=lambda i: (i.folded_at or "", i.row_key or ""))
        return out

    def claim_summary(self, key: str, now: datetime) -> StormState | None:
        """Take the partner's next summary number if one is due (ETag-guarded: one timer run sends it)."""

        def change(state: StormState) -> StormState | None:
            if not summary_due(state, now):
                return None
            return state.changed(
                summary_seq=state.summary_seq + 1, next_summary_at=isoformat(now + self.rules.summary_every)
            )

        done = self.context.rows.update(StormState, STORM_PARTITION, f"state~{key}", change)
        if done is None:  # items without a state row (it was never written): start one
            fresh = StormState(
                channel="storm",
                partner_key=key,
                summary_seq=1,
                next_summary_at=isoformat(now + self.rules.summary_every),
            )
            try:
                self.context.rows.create(STORM_PARTITION, f"state~{key}", fresh)
            except ConflictError:
                return None
            return fresh
        return done.after if done.written else None

    def carried(self, item: StormItem) -> None:
        """A summary carries the item now: it leaves the pending list."""
        if item.row_key:
            self.context.store.delete_record(NOTIFICATIONS, STORM_PARTITION, item.row_key)
