"""Release an incident's containment (docs/spec/operator-api.md): restore exactly what it changed, withdraw what never ran.

Harmless to repeat. Refused (409) while a run that could still contain the incident is alive — the
rest of that run would undo the release. Each action's prior state is put back by ``restore.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.containment.guardrails import status_after_release
from shared.containment.incident_status import IncidentUpdates, attention_of
from shared.containment.ledger import Ledger, list_actions
from shared.containment.names import approval_instance_id, containment_instance_id
from shared.containment.outcome import analyst_event
from shared.containment.records import ActionRecord, ActionStatus, by_status
from shared.containment.restore import STILL_RUNNING, Restorer, is_stuck
from shared.errors import ConflictError
from shared.models import Phase, isoformat
from shared.store import EvidenceStore

_MESSAGES = {
    "released": "prior state restored",
    "partially-released": "some actions could not be released: see failures (retry is safe)",
    "release-failed": "nothing could be released: see failures (retry is safe)",
}


class Release:
    """The operator's release of one incident."""

    def __init__(
        self,
        store: EvidenceStore,
        ledger: Ledger,
        incidents: IncidentUpdates,
        restorer: Restorer,
        clock: Callable[[], datetime],
    ):
        self.store, self.ledger, self.incidents, self.restorer, self.clock = store, ledger, incidents, restorer, clock

    def runs(self, incident_id: str) -> list[str]:
        """Durable instance ids whose run could still change this incident's containment: the current
        epoch's runbook and containment runs, the containment run of each in-progress row's epoch, and the
        approval runs of approved / in-progress rows. The release route asks the host about each."""
        incident = self.incidents.get(incident_id)
        records = self.ledger.list(incident_id)
        epochs = {incident.runbook_epoch} | {r.epoch for r in by_status(records, ActionStatus.IN_PROGRESS)}
        ids = [incident.runbook_instance_id] + [containment_instance_id(incident_id, e) for e in sorted(epochs)]
        for record in by_status(records, ActionStatus.APPROVED, ActionStatus.IN_PROGRESS):
            if record.approved and record.approval and record.approval.approval_id:
                ids.append(approval_instance_id(incident_id, record.approval.approval_id))
        return list(dict.fromkeys(ids))

    def release(
        self,
        incident_id: str,
        actor: str,
        reason: str,
        running: list[str] | None = None,
        checked_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Restore exactly what this incident's containment changed; harmless to repeat.

        ``running``: runs of ``runs`` the durable host reports Pending/Running (any → 409: what they are
        about to do would undo the release). ``checked_at``: when the host was asked — an ``in-progress``
        row last written before then has no live run left (terminated, or its failure could not be
        recorded) and is treated as failed and restored. Without a check, only a row in progress for
        longer than ``IN_PROGRESS_STUCK_AFTER`` is."""
        incident = self.incidents.get(incident_id)
        now = self.clock()
        records = self.ledger.list(incident_id)
        requested = analyst_event(
            actor, "release.requested", Phase.RECOVER, now, f"{actor} asked to release: {reason}", {"reason": reason}
        )
        busy = [r for r in by_status(records, ActionStatus.IN_PROGRESS) if not is_stuck(r, now, checked_at)]
        if running or busy:
            refused = analyst_event(
                actor,
                "release.refused",
                Phase.RECOVER,
                now,
                "Release refused: containment is still running",
                {"running": [r.action_id for r in busy], "runs": list(running or [])},
            )
            self.store.append_events(incident_id, [requested, refused])
            raise ConflictError(STILL_RUNNING)
        self.store.append_events(incident_id, [requested])
        results: list[ActionRecord] = []
        failures: list[dict[str, Any]] = []
        for record in records:
            # Restore first: a held / approved row of a later epoch can still carry an earlier epoch's
            # change (next_cycle keeps it); then withdraw what has not run.
            if record.changed_by_us:
                done, failure = self.restorer.restore(incident, record.action_id, actor, reason, checked_at)
                if done is not None:
                    results.append(done)
                if failure is not None:
                    failures.append(failure)
            if record.status in (ActionStatus.HELD, ActionStatus.APPROVED):
                withdrawn = self._withdraw(incident_id, record, actor, reason)
                if withdrawn is not None:
                    results.append(withdrawn)
        if not results and not failures:
            return self._nothing_to_release(incident_id, records, actor, incident.status.value)
        status = incident.status.value
        if results:
            status, drafts = self.incidents.change(
                incident_id,
                status=lambda i: status_after_release(i.status),
                actor=actor,
                reason=f"released by {actor}: {reason}",
                attention=attention_of(self.ledger.list(incident_id)),  # issue 16: held rows were withdrawn
            )
            if drafts:
                self.store.append_events(incident_id, drafts)
        outcome = "released" if not failures else ("partially-released" if results else "release-failed")
        return {
            "incidentId": incident_id,
            "status": outcome,
            "message": _MESSAGES[outcome],
            "incidentStatus": status,
            "releasedAt": isoformat(now),
            "actions": list_actions(self.store, incident_id),
            "failures": failures,
        }

    def _nothing_to_release(
        self, incident_id: str, records: list[ActionRecord], actor: str, incident_status: str
    ) -> dict[str, Any]:
        already = bool(by_status(records, ActionStatus.RELEASED))
        before_us = by_status(records, ActionStatus.ALREADY_CONTAINED)
        outcome = "already-released" if already else "nothing-contained"
        message = (
            "already released: nothing left to restore"
            if already
            else "nothing is contained for this incident: nothing to release"
        )
        if before_us:
            message += (
                f"; {len(before_us)} target(s) were already contained before this incident and are "
                "left as they are (release them where they were contained)"
            )
        noop = analyst_event(
            actor, "release.noop", Phase.RECOVER, self.clock(), f"Release: {message}", {"outcome": outcome}
        )
        self.store.append_events(incident_id, [noop])
        return {
            "incidentId": incident_id,
            "status": outcome,
            "message": message,
            "incidentStatus": incident_status,
            "actions": list_actions(self.store, incident_id),
            "failures": [],
        }

    def _withdraw(self, incident_id: str, record: ActionRecord, actor: str, reason: str) -> ActionRecord | None:
        """A held or approved action that has not run: withdrawn, so no later approval runs it."""
        now = self.clock()

        def withdraw(current: ActionRecord) -> ActionRecord:
            kept = {k: v for k, v in (current.release or {}).items() if k in ("notes", "error")}
            release = {**kept, "actor": actor, "reason": reason, "at": isoformat(now), "state": "withdrawn"}
            return dataclasses.replace(current, status=ActionStatus.WITHDRAWN, release=release)

        updated = self.ledger.transition(
            incident_id, record.action_id, {ActionStatus.HELD, ActionStatus.APPROVED}, withdraw
        )
        if updated is None:
            return None
        self.store.append_events(
            incident_id,
            [
                analyst_event(
                    actor,
                    "containment.withdrawn",
                    Phase.RECOVER,
                    now,
                    f"{record.kind} {record.target_display}: withdrawn before it ran (released by {actor})",
                    {
                        "actionId": record.action_id,
                        "previousStatus": record.status.value if record.status else None,
                        "reason": reason,
                    },
                )
            ],
        )
        return updated
