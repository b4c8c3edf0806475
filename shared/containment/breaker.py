"""The blast-radius breaker: a deployment-wide budget of automatic containments (docs/spec/containment.md).

The budget is one ``IngestState`` row (``containment-breaker``) holding the slots taken in the sliding
window, updated under its ETag, so it holds across scaled-out instances without a lock. Which slot
may be taken is the pure ``guardrails.breaker_reserve``; this module only reads and writes the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.containment.guardrails import BREAKER_STATE, breaker_reserve
from shared.errors import ConcurrencyError, ConflictError, TransientError
from shared.etag import Versioned, update_under_etag
from shared.response_plan import ActionKind
from shared.settings import Settings
from shared.store import EvidenceStore

Slots = list[dict[str, str]]

# Every automatic containment of a storm may race for the row; past this many lost races the
# activity is retried later by the orchestration rather than spinning.
_TRIES = 30
# Keys remembered as needing no slot (issue 15), newest kept.
_UNUSED_MAX = 200


# Kinds that change something in Azure automatically, so take a slot (docs/spec/containment.md).
SLOT_KINDS = frozenset({ActionKind.ISOLATE_VM, ActionKind.DISABLE_USER, ActionKind.DISABLE_SERVICE_PRINCIPAL})


def slots_before(incident_id: str, action_id: str, order: list[str] | None) -> tuple[str, ...] | None:
    """The breaker keys of the actions before ``action_id`` in ``order`` (None: no plan order given)."""
    if not order or action_id not in order:
        return None
    return tuple(f"{incident_id}/{a}" for a in order[: order.index(action_id)])


class BlastRadiusBreaker:
    """Takes one automatic-containment slot per action (a re-run of the same action takes none)."""

    def __init__(self, store: EvidenceStore, settings: Settings, clock: Callable[[], datetime]):
        self.store, self.settings, self.clock = store, settings, clock

    def take_slot(self, key: str, before: tuple[str, ...] = ()) -> bool:
        """Whether ``key`` (incident/action) may contain automatically now; the slot is recorded if so.

        ``before`` (issue 15): the keys of the same plan's earlier automatic actions. A P1's actions run
        in parallel; whichever reaches the row first takes the slots of every earlier action in plan
        order with its own, in the same update, so the breaker holds the same actions a one-by-one run
        would (the first ones of the plan win), not whichever activity happened to be fastest. An
        earlier action that already gave its slot back (it needed none) is passed over."""
        limit = self.settings.blast_radius_max
        window = timedelta(minutes=self.settings.blast_radius_window_minutes)

        def change(current: Row) -> Row | None:
            now = self.clock()
            unused = _live(current.unused, now, window)
            slots = current.slots
            for k in (*[b for b in before if b not in {u["key"] for u in unused}], key):
                _, slots = breaker_reserve(slots, k, now, limit, window)
            new = Row(slots, unused)
            return None if new == current else new

        updated = self._update(change)
        # The key holds a live slot after the update exactly when it was allowed one.
        return updated is not None and any(s["key"] == key for s in updated.after.slots)

    def give_back(self, key: str) -> None:
        """Return the slot of an action that changed nothing (already contained, held by a tag, skipped)
        and remember, for the window, that it needs none: the breaker counts containments carried out,
        and a sibling running later in parallel does not take a slot for it again."""
        window = timedelta(minutes=self.settings.blast_radius_window_minutes)

        def change(current: Row) -> Row | None:
            now = self.clock()
            unused = _live(current.unused, now, window)
            if not any(u["key"] == key for u in unused):
                # Bounded: the row must stay small in a storm; a marker dropped costs at most a slot
                # counted for an action that needed none (the safe side).
                unused = [*unused, {"key": key, "at": now.isoformat()}][-_UNUSED_MAX:]
            new = Row([s for s in current.slots if s["key"] != key], unused)
            return None if new == current else new

        self._update(change)

    def _update(self, change: Callable[[Row], Row | None]) -> Any:
        limit = self.settings.blast_radius_max

        def read() -> Versioned[Row]:
            got = self.store.get_state(BREAKER_STATE)
            if got is None:
                return Versioned(Row([], []), None)
            return Versioned(Row(list(got[0].get("slots") or []), list(got[0].get("unused") or [])), got[1])

        def write(row: Row, etag: str | None) -> str:
            doc: dict[str, Any] = {
                "slots": row.slots,
                "limit": limit,
                "windowMinutes": self.settings.blast_radius_window_minutes,
            }
            if row.unused:
                doc["unused"] = row.unused
            try:
                if etag is None:
                    return self.store.put_record("IngestState", "state", BREAKER_STATE, doc, create_only=True)
                return self.store.set_state(BREAKER_STATE, doc, etag)
            except ConflictError:  # created by another instance meanwhile: read theirs
                raise ConcurrencyError(BREAKER_STATE) from None

        try:
            return update_under_etag(read, write, change, what="the blast-radius breaker", tries=_TRIES)
        except ConcurrencyError:
            raise TransientError("the blast-radius breaker is contended; will retry") from None


@dataclass(frozen=True)
class Row:
    """The breaker's row: live slots, and keys that gave theirs back in the window (they need none)."""

    slots: Slots
    unused: Slots


def _live(entries: Slots, now: datetime, window: timedelta) -> Slots:
    return [e for e in entries if now - datetime.fromisoformat(e["at"].replace("Z", "+00:00")) < window]
