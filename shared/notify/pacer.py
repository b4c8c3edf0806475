"""Issue 14: the mail pacer — the sending mailbox stays within its per-minute limit; nothing is dropped, P1 first.

Exchange Online accepts 30 messages a minute from one mailbox; more are refused with throttling. Every email
the app sends asks the pacer first (``EmailNotifier``):

- **Budget**: one row per mailbox (``~pacer`` partition of Notifications) holds when each send of the last
  60 seconds went (a rolling minute, as Exchange counts it). Taking a send is an ETag-guarded change (``update_under_etag``): instances
  scale out and the row decides, no lock. A few sends of each minute (``p1_reserve``) are kept for P1 emails, so a
  P1 is not queued behind a minute of P3s. A Graph 429 holds every send for the next 60 seconds.
- **Queue**: an email that does not fit waits as a row in the mailbox's queue partition (``~mailq-…``),
  holding everything needed to send it (recipients, subject, HTML, the incidents to evidence it on). Its
  RowKey starts with the priority rank and the time it was queued, so listing the partition gives the order
  it is sent in: P1 first, then oldest first. An email is also queued when an email of the same or a higher
  priority is already waiting, so nothing overtakes what waits before it.
- The ``mail_pacer`` timer (every minute, ``functions/mail_pacing.py``) sends the queue as the new minute's
  budget allows. A timer rather than an orchestration per mailbox: a send frees up 60 seconds after it went,
  so a minute tick finds a full budget again after any burst; the queue is in the table (it survives restarts and is
  read by every instance anyway), and the host runs one timer at a time and catches up a missed run
  (``use_monitor``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import Field

from shared.errors import ConcurrencyError, ConflictError
from shared.models import isoformat
from shared.notify.context import NotifyContext
from shared.notify.records import NOTIFICATIONS, NotificationRecord
from shared.store import key_hash

PACER_PARTITION = "~pacer"
# HTTP statuses of a mailbox that is busy, not of a refused email: the email waits for a later minute.
THROTTLED = (429, 503, 504)


WINDOW = timedelta(seconds=60)


def p1_reserve(limit: int) -> int:
    """Sends of each minute kept for P1 emails (30 → 5); none when the limit is too small to share."""
    return limit // 6


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


class MailBudget(NotificationRecord):
    """The mailbox's sends in the last 60 seconds, and how many emails wait per priority (``~pacer`` / hash)."""

    CHANNEL: ClassVar[str | None] = "pacer"

    mailbox: str | None = None
    recent: list[str] = Field(default_factory=list)
    """When each send of the last 60 seconds went (at most the limit): Exchange counts a rolling minute, so a
    calendar minute would let 30 go at :59 and 30 more at :00."""
    throttled_until: str | None = None
    """After a 429 nothing goes out before this moment."""
    waiting: list[int] = Field(default_factory=lambda: [0, 0, 0, 0])
    """Emails in the queue per priority (P1..P4): an email may not overtake one as urgent that waits."""

    def sent_since(self, now: datetime) -> list[str]:
        """The sends still inside the rolling minute that ends at ``now``."""
        return [s for s in self.recent if now - _at(s) < WINDOW]


def _waiting(budget: MailBudget, rank: int, delta: int) -> list[int]:
    counts = (list(budget.waiting) + [0, 0, 0, 0])[:4]
    i = min(max(rank, 1), 4) - 1
    counts[i] = max(0, counts[i] + delta)
    return counts


def take_send(budget: MailBudget, now: datetime, rank: int, limit: int, queued: bool = False) -> MailBudget | None:
    """The budget after one more send of priority ``rank`` at ``now``, or None when it may not go now. Pure.

    At most ``limit`` sends in any 60 seconds, of which ``p1_reserve`` are for P1 only. A new email
    (``queued`` False) waits when an email of the same or a higher priority is in the queue; the queue's
    own sends (``queued``) go in the queue's order and leave it.
    """
    if budget.throttled_until and now < _at(budget.throttled_until):
        return None
    if not queued and any(n > 0 for n in budget.waiting[: max(rank, 1)]):
        return None
    recent = budget.sent_since(now)
    allowed = limit if rank <= 1 else limit - p1_reserve(limit)
    if len(recent) >= allowed:
        return None
    return budget.changed(
        recent=[*recent, isoformat(now)],
        throttled_until=None,
        waiting=_waiting(budget, rank, -1) if queued else budget.waiting,
    )


def throttle(budget: MailBudget, now: datetime) -> MailBudget | None:
    """The budget after a 429 at ``now``: nothing more for a minute (None: already held that long). Pure."""
    until = isoformat(now + WINDOW)
    if budget.throttled_until and budget.throttled_until >= until:
        return None
    return budget.changed(throttled_until=until)


@dataclass(frozen=True)
class QueuedMail:
    """One email waiting in the mailbox queue: everything needed to send it and evidence it."""

    row_key: str
    partition: str
    record_id: str
    event: str
    rank: int
    to: list[str]
    subject: str
    html: str
    importance: str
    evidence_for: list[str]
    base: dict[str, Any]
    queued_at: str

    def wire(self) -> dict[str, Any]:
        return {
            "channel": "mailq",
            "rowKey": self.row_key,
            "partition": self.partition,
            "recordId": self.record_id,
            "kind": self.event,
            "rank": self.rank,
            "to": self.to,
            "subject": self.subject,
            "html": self.html,
            "importance": self.importance,
            "evidenceFor": self.evidence_for,
            "base": self.base,
            "queuedAt": self.queued_at,
            "status": "queued",
        }

    @classmethod
    def parse(cls, doc: dict[str, Any]) -> QueuedMail:
        return cls(
            row_key=str(doc["rowKey"]),
            partition=str(doc["partition"]),
            record_id=str(doc["recordId"]),
            event=str(doc.get("kind") or ""),
            rank=int(doc.get("rank") or 4),
            to=list(doc.get("to") or []),
            subject=str(doc.get("subject") or ""),
            html=str(doc.get("html") or ""),
            importance=str(doc.get("importance") or "normal"),
            evidence_for=list(doc.get("evidenceFor") or []),
            base=dict(doc.get("base") or {}),
            queued_at=str(doc.get("queuedAt") or ""),
        )


class MailPacer:
    """The per-minute budget and the queue of one sending mailbox."""

    def __init__(self, context: NotifyContext, mailbox: str, limit: int):
        self.context, self.mailbox, self.limit = context, mailbox, max(1, limit)
        self.budget_id = key_hash(mailbox.lower())[:32]
        self.queue_partition = f"~mailq-{self.budget_id}"

    # -- the budget ---------------------------------------------------------------------------------
    def _change_budget(self, change) -> MailBudget | None:
        """Apply ``change`` to the budget row under its ETag (creating the row on first use)."""
        rows = self.context.rows
        for _ in range(2):
            done = rows.update(MailBudget, PACER_PARTITION, self.budget_id, change)
            if done is not None:
                return done.after if done.written else None
            first = change(MailBudget(channel="pacer", mailbox=self.mailbox))
            if first is None:
                return None
            try:
                rows.create(PACER_PARTITION, self.budget_id, first)
                return first
            except ConflictError:
                continue  # created meanwhile: take the send on the row that won
        return None

    def take(self, rank: int, *, queued: bool = False) -> bool:
        """Take one send of this minute for an email of priority ``rank`` (1 = P1); False: it must wait.

        ``queued``: an email of the queue (the timer sends them in order). A budget row too contended to
        update counts as a full minute: the email waits in the queue rather than risk the limit.
        """
        now = self.context.clock()
        try:
            return self._change_budget(lambda b: take_send(b, now, rank, self.limit, queued)) is not None
        except ConcurrencyError:
            return False

    def throttled(self) -> None:
        """The mailbox answered 429 (or was unavailable): nothing more goes out this minute."""
        now = self.context.clock()
        self._change_budget(lambda b: throttle(b, now))

    def recount(self, queue: list[QueuedMail]) -> None:
        """The timer's listing of the queue is the truth: the waiting counts follow it (a crash between a
        queue row and its count, or a deleted row, is corrected within a minute)."""
        counts = [sum(q.rank == r for q in queue) for r in (1, 2, 3, 4)]
        self._change_budget(lambda b: None if b.waiting == counts else b.changed(waiting=counts))

    # -- the queue ----------------------------------------------------------------------------------
    def waiting(self) -> list[QueuedMail]:
        """The mailbox queue in the order it is sent: P1 first, then oldest first."""
        docs = self.context.store.list_records(NOTIFICATIONS, self.queue_partition)
        return [QueuedMail.parse(d) for d in docs if d.get("channel") == "mailq"]

    def enqueue(self, mail: QueuedMail, again: bool = False) -> None:
        """Add the email to the queue (``again``: its row is there already, the timer put it back) and count it."""
        if not again:
            try:
                self.context.store.put_record(
                    NOTIFICATIONS, self.queue_partition, mail.row_key, mail.wire(), create_only=True
                )
            except ConflictError:
                return  # queued and counted already (a replay)
        try:
            self._change_budget(lambda b: b.changed(waiting=_waiting(b, mail.rank, +1)))
        except ConcurrencyError:
            pass  # the timer's recount puts it right within a minute

    def done(self, mail: QueuedMail) -> None:
        """The email left the queue (sent, refused for good, or found sent already)."""
        self.context.store.delete_record(NOTIFICATIONS, self.queue_partition, mail.row_key)

    def queue_key(self, rank: int, partition: str, record_id: str, at: datetime) -> str:
        """Priority, then the time it was queued (the wall clock's nanoseconds break a tie within a millisecond)."""
        return f"{rank}~{isoformat(at)}~{time.time_ns():020d}~{partition}~{record_id}"
