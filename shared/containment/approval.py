"""Approve or reject an incident's held containment actions (docs/spec/operator-api.md).

An approval moves each held row to ``approved`` under its ETag and names the run that will execute it
(``approvalId``); the route starts that run. Approved rows whose run may never have started (a crash
after the transition) are offered again under their original approval id, so a retried approval
converges instead of executing twice. A rejection blocks the actions for this incident.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.containment.entries import Approval
from shared.containment.incident_status import IncidentUpdates
from shared.containment.ledger import Ledger
from shared.containment.outcome import analyst_event
from shared.containment.records import ActionRecord, ActionStatus, summary
from shared.evidence import EventDraft
from shared.models import Phase, isoformat
from shared.store import EvidenceStore


class Approvals:
    """The operator's approve / reject decision on one incident."""

    def __init__(self, store: EvidenceStore, ledger: Ledger, incidents: IncidentUpdates, clock: Callable[[], datetime]):
        self.store, self.ledger, self.incidents, self.clock = store, ledger, incidents, clock

    def decide(self, incident_id: str, actor: str, decision: str, reason: str | None) -> dict[str, Any]:
        """Approve (run) or reject (block) the incident's held actions.

        Returns the transitioned actions and, for approvals, the runs the caller
        must start: ``{"runs": [{"approvalId", "epoch", "actions": [...]}]}``. Approved
        rows whose run may never have started (a crash after the transition) are
        offered again under their original approval id, so a retry converges.
        """
        incident = self.incidents.get(incident_id)
        now = self.clock()
        approval_id = "apr-" + hashlib.sha256(f"{incident_id}|{actor}|{isoformat(now)}".encode()).hexdigest()[:12]
        approval = Approval(decision, actor, reason, isoformat(now), approval_id)
        new_status = ActionStatus.APPROVED if decision == "approve" else ActionStatus.REJECTED
        changed: list[ActionRecord] = []
        drafts: list[EventDraft] = []
        runs: dict[str | None, dict[str, Any]] = {}

        def decided(record: ActionRecord) -> ActionRecord:
            return dataclasses.replace(record, status=new_status, approval=approval)

        for record in self.ledger.list(incident_id):
            if record.status == ActionStatus.APPROVED and decision == "approve":
                old = record.approval.approval_id if record.approval else None
                run = runs.setdefault(old, {"approvalId": old, "epoch": record.epoch, "actions": [], "resumed": True})
                run["actions"].append(record.action)
                continue
            if record.status != ActionStatus.HELD:
                continue
            updated = self.ledger.transition(incident_id, record.action_id, {ActionStatus.HELD}, decided)
            if updated is None:
                continue
            changed.append(updated)
            verdict = updated.verdict or {}
            verb = "approved" if decision == "approve" else "rejected"
            drafts.append(
                analyst_event(
                    actor,
                    f"containment.{verb}",
                    Phase.CONTAIN,
                    now,
                    f"{actor} {verb} {updated.kind} {updated.target_display}" + (f": {reason}" if reason else ""),
                    {
                        "actionId": record.action_id,
                        "kind": updated.kind,
                        "target": updated.target,
                        "decision": decision,
                        "reason": reason,
                        "heldBy": verdict.get("guardrail"),
                        "approvalId": approval_id,
                    },
                )
            )
            if decision == "approve":
                run = runs.setdefault(
                    approval_id, {"approvalId": approval_id, "epoch": updated.epoch, "actions": [], "resumed": False}
                )
                run["actions"].append(updated.action)
        if not drafts:
            drafts.append(
                analyst_event(
                    actor,
                    "containment.approval-noop",
                    Phase.CONTAIN,
                    now,
                    f"{actor} asked to {decision}: nothing is held for approval",
                    {"decision": decision, "reason": reason, "pendingRuns": sorted(runs, key=lambda k: k or "")},
                )
            )
        status = incident.status.value
        if decision == "reject" and changed:
            status, more = self.incidents.status_from_records(
                incident_id, actor=actor, reason=f"held containment rejected by {actor}"
            )
            drafts += more
        self.store.append_events(incident_id, drafts)
        message = (
            f"{len(changed)} held action(s) {'approved: executing' if decision == 'approve' else 'rejected'}"
            if changed
            else "nothing is held for approval"
        )
        return {
            "incidentId": incident_id,
            "decision": decision,
            "actions": [summary(r) for r in changed],
            "runs": list(runs.values()),
            "incidentStatus": status,
            "message": message,
        }
