"""The write-ahead record of containment: ContainmentActions rows read, claimed and saved under their ETag.

Every row is written under the ETag it was read with (or create-only), so duplicate deliveries,
activity re-runs after a host crash and concurrent operators converge instead of overwriting each
other. Crash safety rests on *when* a row is saved, which the use cases decide:

- the before-state (each NIC's NSG, the account's ``accountEnabled``) is saved ``in-progress`` before
  the first change in Azure (``outcome.Outcomes.write_ahead``), so the next attempt finishes a half-done
  action instead of repeating it, and release always knows what to put back;
- evidence is appended before the row is saved: a crash in between can duplicate an event, never lose one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

from shared.containment.records import TABLE, ActionRecord, ActionStatus, summary
from shared.errors import ConcurrencyError, ConflictError
from shared.etag import Versioned, update_under_etag
from shared.models import isoformat
from shared.store import EvidenceStore

# Lost races on one row before an operator is told to retry (each one means someone else moved it).
CONTENTION_TRIES = 8


def list_actions(store: EvidenceStore, incident_id: str) -> list[dict[str, Any]]:
    """Every containment action of an incident with its status and a one-line ``result``
    (what the notification email lists as "every action taken and its result")."""
    return [summary(r) for r in store.list_records(TABLE, incident_id)]


class Ledger:
    """Typed access to the ContainmentActions table."""

    def __init__(self, store: EvidenceStore, clock: Callable[[], datetime]):
        self.store, self.clock = store, clock

    def read(self, incident_id: str, action_id: str) -> Versioned[ActionRecord] | None:
        got = self.store.get_record(TABLE, incident_id, action_id)
        if got is None:
            return None
        return Versioned(ActionRecord.from_row(got[0]), got[1])

    def list(self, incident_id: str) -> list[ActionRecord]:
        return [ActionRecord.from_row(r) for r in self.store.list_records(TABLE, incident_id)]

    def save(self, incident_id: str, record: ActionRecord, etag: str | None, at: datetime | None = None) -> str:
        """Write the row stamped ``at`` (default now): under ``etag``, or create-only when it was never
        stored (``ConcurrencyError`` / ``ConflictError`` when someone else wrote it first)."""
        record.updated_at = isoformat(at or self.clock())
        row = record.to_row()
        if etag is None:
            return self.store.put_record(TABLE, incident_id, record.action_id, row, create_only=True)
        return self.store.put_record(TABLE, incident_id, record.action_id, row, etag=etag)

    def transition(
        self,
        incident_id: str,
        action_id: str,
        allowed: Collection[ActionStatus],
        change: Callable[[ActionRecord], ActionRecord],
    ) -> ActionRecord | None:
        """``change`` applied to the row if its status is still one of ``allowed`` (None otherwise, or if
        there is no row). ``change`` returns a new record from the one it is given (it may run again on a
        fresh read after a lost race). ConflictError (→ 409) if the row keeps changing."""

        def apply(record: ActionRecord) -> ActionRecord | None:
            return change(record) if record.status in allowed else None

        def write(record: ActionRecord, etag: str | None) -> str:
            return self.save(incident_id, record, etag)

        try:
            updated = update_under_etag(
                lambda: self.read(incident_id, action_id),
                write,
                apply,
                what=f"containment action {action_id}",
                tries=CONTENTION_TRIES,
            )
        except ConcurrencyError:
            raise ConflictError("the action is changing; retry") from None
        return updated.after if updated is not None and updated.written else None
