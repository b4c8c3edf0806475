"""The incident's side of containment: its status (contained / held / released) and first-response stamp.

Updated once per containment run (``conclude``), per rejection and per release, under the incident's
ETag through ``shared.etag.update_under_etag``; the statuses themselves are decided by the pure
``guardrails.status_after_*``. Each change returns the evidence drafts describing it, for the caller
to append with the rest of its evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.containment.guardrails import status_after_containment
from shared.containment.ledger import Ledger
from shared.containment.records import IN_EFFECT, ActionRecord, ActionStatus, by_status
from shared.errors import ConcurrencyError, IncidentNotFoundError, TransientError
from shared.etag import Versioned, update_under_etag
from shared.evidence import EventDraft
from shared.models import ActorType, Incident, IncidentStatus, Phase, isoformat
from shared.store import EvidenceStore

# The incident row is hot during a storm (ingest, notify and containment all update it).
_TRIES = 20

# issue 16: the incident-level marker of containment that needs a person ("failed" beats "held"), kept in
# the incident's ``extra`` (and its index row) so the console's queue puts these first without reading
# every open P1's action rows. Derived from the action rows (their own evidence says what failed or is
# held), so changing it writes no evidence of its own.
ATTENTION = "containmentAttention"
_KEEP: Any = object()


def attention_of(records: list[ActionRecord]) -> str | None:
    """What the incident's containment needs from a person: "failed", "held" (for approval) or nothing."""
    if by_status(records, ActionStatus.FAILED):
        return "failed"
    if by_status(records, ActionStatus.HELD):
        return "held"
    return None


@dataclass(frozen=True)
class FirstResponse:
    """The first action that took effect: when, what, and which action."""

    at: datetime
    what: str
    action_id: str | None


class IncidentUpdates:
    """Reads the incident and applies containment's changes to it."""

    def __init__(self, store: EvidenceStore, ledger: Ledger, clock: Callable[[], datetime]):
        self.store, self.ledger, self.clock = store, ledger, clock

    def get(self, incident_id: str) -> Incident:
        return self.read(incident_id).value

    def read(self, incident_id: str) -> Versioned[Incident]:
        got = self.store.get_incident(incident_id)
        if got is None:
            raise IncidentNotFoundError(incident_id)
        return Versioned(got[0], got[1])

    def change(
        self,
        incident_id: str,
        *,
        status: Callable[[Incident], IncidentStatus] | None = None,
        first_response: FirstResponse | None = None,
        known: Versioned[Incident] | None = None,
        actor: str | None = None,
        reason: str = "",
        attention: str | None = _KEEP,
    ) -> tuple[str, list[EventDraft]]:
        """One ETag-guarded update of the incident: its status (``status(incident)`` → new status) and/or
        the first-response stamp (only if not set yet) and/or the containment marker (``attention``: "failed",
        "held" or None; omitted: unchanged). ``known``: the incident as just read (saves a read).
        Returns (status after, the evidence drafts describing what changed)."""
        now = self.clock()

        def change(incident: Incident) -> Incident | None:
            updates: dict[str, Any] = {}
            if status is not None and status(incident) != incident.status:
                updates["status"] = status(incident)
            if attention is not _KEEP and incident.extra.get(ATTENTION) != attention:
                extra = {k: v for k, v in incident.extra.items() if k != ATTENTION}
                updates["extra"] = {**extra, ATTENTION: attention} if attention else extra
            if first_response is not None and incident.sla.first_response_at is None:
                updates["sla"] = incident.sla.model_copy(update={"first_response_at": first_response.at})
            if not updates:
                return None
            return incident.model_copy(update={**updates, "updated_at": max(now, incident.updated_at)})

        def write(incident: Incident, etag: str | None) -> str:
            return self.store.replace_incident(incident, etag or "")

        try:
            updated = update_under_etag(
                lambda: self.read(incident_id), write, change, what=f"incident {incident_id}", tries=_TRIES, first=known
            )
        except ConcurrencyError:
            raise TransientError(f"incident {incident_id} is changing too fast to update") from None
        assert updated is not None  # read() raises rather than answering None
        before, after = updated.before, updated.after
        if not updated.written:
            return before.status.value, []
        drafts = []
        if after.status != before.status:
            drafts.append(
                EventDraft(
                    event_type="incident.status-changed",
                    phase=Phase.RECOVER if after.status.value == "released" else Phase.CONTAIN,
                    occurred_at=now,
                    summary=f"Incident status {before.status.value} → {after.status.value}"
                    + (f" ({reason})" if reason else ""),
                    actor=actor or "soc-responder",
                    actor_type=ActorType.ANALYST if actor else ActorType.APP,
                    data={"from": before.status.value, "to": after.status.value, "reason": reason},
                )
            )
        if first_response is not None and before.sla.first_response_at is None:
            late = first_response.at > after.sla.first_response_due
            drafts.append(
                EventDraft(
                    event_type="sla.first-response",
                    phase=Phase.CONTAIN,
                    occurred_at=now,
                    summary=f"First response: {first_response.what}"
                    + (" (after the 30-minute target)" if late else " (within the 30-minute target)"),
                    data={
                        "firstResponseAt": isoformat(first_response.at),
                        "due": isoformat(after.sla.first_response_due),
                        "withinTarget": not late,
                        "actionId": first_response.action_id,
                    },
                )
            )
        return after.status.value, drafts

    def status_from_records(
        self,
        incident_id: str,
        records: list[ActionRecord] | None = None,
        known: Versioned[Incident] | None = None,
        actor: str | None = None,
        reason: str = "",
    ) -> tuple[str, list[EventDraft]]:
        """Set the incident's status from its action rows (contained beats held), and stamp its first
        response with the time the first action took effect, if nothing answered it before."""
        records = self.ledger.list(incident_id) if records is None else records
        effective = by_status(records, *IN_EFFECT)
        held = bool(by_status(records, ActionStatus.HELD, ActionStatus.APPROVED))
        first = None
        if effective:
            record = min(effective, key=lambda r: _took_effect(r) or "")
            stamp = _took_effect(record) or ""
            first = FirstResponse(
                datetime.fromisoformat(stamp.replace("Z", "+00:00")),
                f"{record.kind} {record.target_display}",
                record.action_id,
            )
        return self.change(
            incident_id,
            status=lambda i: status_after_containment(i.status, bool(effective), held),
            first_response=first,
            known=known,
            actor=actor,
            reason=reason,
            attention=attention_of(records),  # issue 16: the console's "failed / held first" marker
        )

    def conclude(self, request: dict[str, Any]) -> dict[str, Any]:
        """After a containment run: set the incident's status from its actions and evidence the outcome."""
        incident_id = request["incidentId"]
        results = request.get("results") or []
        counts: dict[str, int] = {}
        for r in results:
            counts[r.get("status") or "unknown"] = counts.get(r.get("status") or "unknown", 0) + 1
        status, drafts = self.status_from_records(incident_id, known=self.read(incident_id))
        failures = [r for r in results if r.get("status") == ActionStatus.FAILED]
        drafts.append(
            EventDraft(
                event_type="containment.completed",
                phase=Phase.CONTAIN,
                occurred_at=self.clock(),
                summary=(
                    "Containment run finished: "
                    + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                    + (f"; {len(failures)} failure(s) escalated to people" if failures else "")
                ),
                data={
                    "trigger": request.get("trigger"),
                    "epoch": request.get("epoch"),
                    "counts": counts,
                    "incidentStatus": status,
                    "actions": [r.get("actionId") for r in results],
                },
            )
        )
        self.store.append_events(incident_id, drafts)
        return {"incidentStatus": status, "counts": counts}


def _took_effect(record: ActionRecord) -> str | None:
    """When an action in effect took effect (``containedAt``; else its row's last write)."""
    return record.contained_at or record.updated_at
