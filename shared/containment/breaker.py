"""The blast-radius breaker: a deployment-wide budget of automatic containments (docs/spec/containment.md).

The budget is one ``IngestState`` row (``containment-breaker``) holding the slots taken in the sliding
window, updated under its ETag, so it holds across scaled-out instances without a lock. Which slot
may be taken is the pure ``guardrails.breaker_reserve``; this module only reads and writes the row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.containment.guardrails import BREAKER_STATE, breaker_reserve
from shared.errors import ConcurrencyError, ConflictError, TransientError
from shared.etag import Versioned, update_under_etag
from shared.response_plan import ActionDecision, ActionKind, ContainmentAction
from shared.settings import Settings
from shared.store import EvidenceStore

Slots = list[dict[str, str]]

# Every automatic containment of a storm may race for the row; past this many lost races the
# activity is retried later by the orchestration rather than spinning.
_TRIES = 30


# Kinds that change something in Azure automatically, so take a slot (docs/spec/containment.md).
SLOT_KINDS = frozenset({ActionKind.ISOLATE_VM, ActionKind.DISABLE_USER, ActionKind.DISABLE_SERVICE_PRINCIPAL})


def slot_keys(incident_id: str, actions: list[ContainmentAction]) -> list[str]:
    """The breaker keys of a plan's automatic actions, in plan order (what ``reserve`` takes)."""
    return [
        f"{incident_id}/{a.action_id}" for a in actions if a.decision == ActionDecision.EXECUTE and a.kind in SLOT_KINDS
    ]


class BlastRadiusBreaker:
    """Takes one automatic-containment slot per action (a re-run of the same action takes none)."""

    def __init__(self, store: EvidenceStore, settings: Settings, clock: Callable[[], datetime]):
        self.store, self.settings, self.clock = store, settings, clock

    def take_slot(self, key: str) -> bool:
        """Whether ``key`` (incident/action) may contain automatically now; the slot is recorded if so."""
        limit = self.settings.blast_radius_max
        window = timedelta(minutes=self.settings.blast_radius_window_minutes)

        def read() -> Versioned[Slots]:
            got = self.store.get_state(BREAKER_STATE)
            if got is None:
                return Versioned([], None)
            return Versioned(list(got[0].get("slots") or []), got[1])

        def change(current: Slots) -> Slots | None:
            _, slots = breaker_reserve(current, key, self.clock(), limit, window)
            return None if slots == current else slots

        def write(slots: Slots, etag: str | None) -> str:
            doc = {"slots": slots, "limit": limit, "windowMinutes": self.settings.blast_radius_window_minutes}
            try:
                if etag is None:
                    return self.store.put_record("IngestState", "state", BREAKER_STATE, doc, create_only=True)
                return self.store.set_state(BREAKER_STATE, doc, etag)
            except ConflictError:  # created by another instance meanwhile: read theirs
                raise ConcurrencyError(BREAKER_STATE) from None

        try:
            updated = update_under_etag(read, write, change, what="the blast-radius breaker", tries=_TRIES)
        except ConcurrencyError:
            raise TransientError("the blast-radius breaker is contended; will retry") from None
        # The key holds a live slot after the update exactly when it was allowed one.
        return updated is not None and any(s["key"] == key for s in updated.after)

    # -- issue 15: holds decided before the fan-out ------------------------------------------------
    def reserve(self, keys: list[str]) -> list[str]:
        """Take slots for ``keys`` in the order given, in ONE update of the row; → the keys holding one.

        A P1's actions run in parallel; reserving first, in plan order, makes which of them the breaker
        holds the same as when they ran one after another (the first ones in the plan win), instead of
        whichever activity reaches the row first. Each action's own ``take_slot`` then finds its slot."""
        limit = self.settings.blast_radius_max
        window = timedelta(minutes=self.settings.blast_radius_window_minutes)

        def change(current: Slots) -> Slots | None:
            slots = current
            for key in keys:
                _, slots = breaker_reserve(slots, key, self.clock(), limit, window)
            return None if slots == current else slots

        updated = self._update(change)
        held = {s["key"] for s in (updated.after if updated is not None else [])}
        return [k for k in keys if k in held]

    def give_back(self, key: str) -> None:
        """Return a reserved slot its action did not use (it changed nothing: already contained, held by a
        tag, skipped): the breaker counts containments carried out, not containments planned."""

        def change(current: Slots) -> Slots | None:
            kept = [s for s in current if s["key"] != key]
            return None if len(kept) == len(current) else kept

        self._update(change)

    def _update(self, change: Callable[[Slots], Slots | None]) -> Any:
        limit = self.settings.blast_radius_max

        def read() -> Versioned[Slots]:
            got = self.store.get_state(BREAKER_STATE)
            if got is None:
                return Versioned([], None)
            return Versioned(list(got[0].get("slots") or []), got[1])

        def write(slots: Slots, etag: str | None) -> str:
            doc = {"slots": slots, "limit": limit, "windowMinutes": self.settings.blast_radius_window_minutes}
            try:
                if etag is None:
                    return self.store.put_record("IngestState", "state", BREAKER_STATE, doc, create_only=True)
                return self.store.set_state(BREAKER_STATE, doc, etag)
            except ConflictError:
                raise ConcurrencyError(BREAKER_STATE) from None

        try:
            return update_under_etag(read, write, change, what="the blast-radius breaker", tries=_TRIES)
        except ConcurrencyError:
            raise TransientError("the blast-radius breaker is contended; will retry") from None
