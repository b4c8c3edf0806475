"""Issue 14: which caller number a call comes from — never more than two calls in progress per caller number.

ACS places at most two concurrent PSTN calls per caller number by default; a third is refused. A SOC with many
partners pages many numbers at once in a storm, so the app takes a pool of caller numbers (``ACS_CALLER_ID``
then ``ACS_CALLER_IDS``) and each call holds one of two *call slots* of one number while it is in progress:
a Notifications row per slot (``~caller-ids`` / ``{number key}-s0|s1``) taken with a conditional insert or an
ETag-guarded replace, released when ACS says the call ended (or when the pager gives up waiting for that).
A slot nobody released (lost events) is free again after ``CALLER_LEASE``. No slot free anywhere: the call waits
(the pager retries shortly) rather than being refused by ACS.

A contact prefers the same caller number every time (its key picks the first number tried), so people see
one familiar number unless it is busy.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from shared.errors import ConflictError
from shared.models import isoformat
from shared.notify.contact_schedule import CALLER_LEASE, contact_key
from shared.notify.context import NotifyContext
from shared.notify.records import NotificationRecord

LEASES = "~caller-ids"
SLOTS_PER_NUMBER = 2  # ACS's default concurrent PSTN calls per caller number


class CallerLeaseRecord(NotificationRecord):
    """One call slot of one caller number: who holds it (a call row), until when at most."""

    CHANNEL: ClassVar[str | None] = "caller-lease"

    holder: str | None = None
    until: str | None = None


class CallerPool:
    """Leases call slots of the caller numbers."""

    def __init__(self, context: NotifyContext):
        self.context = context

    def numbers(self) -> tuple[str, ...]:
        s = self.context.settings
        return s.acs_caller_ids or ((s.acs_caller_id,) if s.acs_caller_id else ())

    def acquire(self, holder: str, prefer: str) -> str | None:
        """A caller number with a free call slot, now held by ``holder`` (the same one again on a replay); None
        when every slot of every number is busy. ``prefer``: the contact key, which picks the first number."""
        pool = self.numbers()
        if not pool:
            return None
        now = self.context.clock()
        start = int(prefer, 16) % len(pool) if prefer else 0
        for i in range(len(pool)):
            number = pool[(start + i) % len(pool)]
            for slot in range(SLOTS_PER_NUMBER):
                if self._take(f"{contact_key(number)}-s{slot}", holder, now):
                    return number
        return None

    def _take(self, slot_id: str, holder: str, now: datetime) -> bool:
        rows, stamp = self.context.rows, isoformat(now)
        until = isoformat(now + CALLER_LEASE)
        fresh = CallerLeaseRecord(channel="caller-lease", holder=holder, until=until, updated_at=stamp)
        try:
            rows.create(LEASES, slot_id, fresh)
            return True
        except ConflictError:
            pass

        def take(r: CallerLeaseRecord) -> CallerLeaseRecord | None:
            if r.holder == holder or (r.holder and (r.until or "") > stamp):
                return None  # ours already, or held by a call still in progress
            return r.changed(holder=holder, until=until, updated_at=stamp)

        done = rows.update(CallerLeaseRecord, LEASES, slot_id, take)
        return done is not None and (done.written or done.after.holder == holder)

    def release(self, number: str | None, holder: str) -> None:
        """Free the slot ``holder`` holds on ``number`` (nothing if it holds none)."""
        if not number:
            return
        stamp = isoformat(self.context.clock())

        def free(r: CallerLeaseRecord) -> CallerLeaseRecord | None:
            return r.changed(holder=None, until=None, updated_at=stamp) if r.holder == holder else None

        for slot in range(SLOTS_PER_NUMBER):
            self.context.rows.update(CallerLeaseRecord, LEASES, f"{contact_key(number)}-s{slot}", free)

    def in_use(self) -> dict[str, int]:
        """Calls in progress per caller number (for tests and benchmarks)."""
        now = isoformat(self.context.clock())
        out: dict[str, int] = {}
        for number in self.numbers():
            held = 0
            for slot in range(SLOTS_PER_NUMBER):
                got = self.context.rows.read(CallerLeaseRecord, LEASES, f"{contact_key(number)}-s{slot}")
                if got and got.value.holder and (got.value.until or "") > now:
                    held += 1
            out[number] = held
        return out
