"""Issue 14: the pace of one Teams channel — at most ``TEAMS_POSTS_PER_MINUTE`` cards in any 60 seconds.

Teams throttles what one webhook posts to a channel (Microsoft's connector limits: 4 a second, 60 in 30
seconds, 100 an hour, 1,800 a day; a Workflows flow is throttled per connection besides), and a flooded
channel is read by nobody. The budget is the mail pacer's (``shared.notify.pacer``: a rolling minute, a
sixth of it kept for P1, a 429 holding everything for 60 seconds), one row per channel in ``~teams-pace``
(ETag-guarded, keyed by the hash of the secret's name — never the URL). A card that does not fit stays
queued: its row and outbox pointer are untouched, and the ``teams_delivery`` timer posts the waiting cards
P1 first, then oldest first, as the next minute allows (``TeamsNotifier.deliver_due``).
"""

from __future__ import annotations

from shared.errors import ConcurrencyError, ConflictError
from shared.notify.context import NotifyContext
from shared.notify.pacer import MailBudget, take_send, throttle
from shared.store import key_hash

PACE_PARTITION = "~teams-pace"


class TeamsPace:
    """The per-minute budget of each Teams channel (by its Key Vault secret's name)."""

    def __init__(self, context: NotifyContext, limit: int):
        self.context, self.limit = context, max(1, limit)

    def _change(self, secret_name: str, change) -> MailBudget | None:
        rows, row_key = self.context.rows, key_hash(secret_name)[:32]
        for _ in range(2):
            done = rows.update(MailBudget, PACE_PARTITION, row_key, change)
            if done is not None:
                return done.after if done.written else None
            first = change(MailBudget(channel="pacer", mailbox=f"teams:{row_key}"))
            if first is None:
                return None
            try:
                rows.create(PACE_PARTITION, row_key, first)
                return first
            except ConflictError:
                continue
        return None

    def take(self, secret_name: str, rank: int) -> bool:
        """Take one post of this minute for a card of priority ``rank``; False: it waits (stays queued).

        The timer asks in the queue's order (P1 first), so no waiting count is kept here; a budget row too
        contended to update counts as a full minute.
        """
        now = self.context.clock()
        try:
            return self._change(secret_name, lambda b: take_send(b, now, rank, self.limit, queued=True)) is not None
        except ConcurrencyError:
            return False

    def throttled(self, secret_name: str) -> None:
        """The channel answered 429: nothing more goes to it for a minute."""
        now = self.context.clock()
        try:
            self._change(secret_name, lambda b: throttle(b, now))
        except ConcurrencyError:
            pass
