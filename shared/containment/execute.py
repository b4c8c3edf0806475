"""Execute one planned action (a durable activity), or record it failed once its retries ran out.

Idempotent: the row is read first and a row already settled for this epoch is returned as is (no
second write to Azure); an ``in-progress`` row is finished, not repeated. When someone else moves the
row meanwhile (a duplicate run, an operator), the attempt re-reads it and decides again. (This is not
``update_under_etag``: between the read and the write the action changes things in Azure, so the
"change" is not a pure function of the row.)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.containment.breaker import slots_before
from shared.containment.guardrails import Facts, evaluate
from shared.containment.incident_status import IncidentUpdates
from shared.containment.isolate_vm import VmIsolation
from shared.containment.ledger import CONTENTION_TRIES, Ledger
from shared.containment.lockout import AccountLockout
from shared.containment.outcome import ActionRun, Outcomes
from shared.containment.records import STICKY, ActionRecord, ActionStatus, summary
from shared.errors import ConcurrencyError, ConfigurationError, ConflictError, RequestRejectedError, TransientError
from shared.models import Incident
from shared.response_plan import ActionDecision, ActionKind, ContainmentAction

# Outcomes that changed nothing in Azure: a slot taken for them goes back to the breaker.
_UNUSED_SLOT = frozenset(
    {
        ActionStatus.ALREADY_CONTAINED.value,
        ActionStatus.HELD.value,
        ActionStatus.SKIPPED.value,
        ActionStatus.DRY_RUN.value,
        ActionStatus.PARTNER_ACTION.value,
    }
)


class ActionExecutor:
    """``containment_execute`` and ``containment_record_failure``."""

    def __init__(
        self,
        ledger: Ledger,
        incidents: IncidentUpdates,
        outcomes: Outcomes,
        vms: VmIsolation,
        accounts: AccountLockout,
        clock: Callable[[], datetime],
    ):
        self.ledger, self.incidents, self.outcomes = ledger, incidents, outcomes
        self.vms, self.accounts, self.clock = vms, accounts, clock

    def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one planned action: ``{"incidentId", "epoch", "action", "trigger": "runbook"|"approval",
        "approvalId"?}`` → the action's summary. Raises ``TransientError`` to be retried by the orchestration."""
        action = ContainmentAction.model_validate(request["action"])
        incident_id = request["incidentId"]
        epoch = int(request.get("epoch") or 1)
        trigger = request.get("trigger") or "runbook"
        incident = self.incidents.get(incident_id)
        for _ in range(CONTENTION_TRIES):
            got = self.ledger.read(incident_id, action.action_id)
            record, etag = (got.value, got.etag) if got else (None, None)
            prepared = self._prepare(record, incident_id, action, epoch, trigger, request.get("approvalId"))
            if isinstance(prepared, dict):
                return prepared
            record, approved = prepared
            run = ActionRun(incident, action, record, etag, epoch, approved, self.clock())
            run.slot_before = slots_before(incident_id, action.action_id, request.get("slotOrder"))
            try:
                result = self._run(run)
            except (ConcurrencyError, ConflictError):
                continue  # someone else moved the row (duplicate run, operator): re-read and decide again
            if (
                run.slot_before is not None
                and result.get("status") in _UNUSED_SLOT
                and result.get("guardrail") != "blast-radius"  # held by the breaker: it never had a slot
            ):
                # A sibling may have taken this action's slot for it (plan order): it changed nothing, so
                # the slot goes back.
                self.vms.breaker.give_back(run.slot_key)
            return result
        raise TransientError("the action's row kept changing under us; will retry")

    def _prepare(
        self,
        record: ActionRecord | None,
        incident_id: str,
        action: ContainmentAction,
        epoch: int,
        trigger: str,
        approval_id: str | None,
    ) -> dict[str, Any] | tuple[ActionRecord, bool]:
        """(row to work on, approved) — or the settled summary when there is nothing to do."""
        if trigger == "approval":
            if record is None:
                return {"actionId": action.action_id, "status": "unknown", "result": "no such held action"}
            if not record.approved or record.approval is None or record.approval.approval_id != approval_id:
                return summary(record)
            if record.status in (ActionStatus.APPROVED, ActionStatus.IN_PROGRESS):
                return record, True
            return summary(record)
        if record is None:
            return ActionRecord.new(incident_id, action, epoch, self.clock()), False
        if record.status == ActionStatus.IN_PROGRESS or record.status is None:
            return record, record.approved
        if record.epoch >= epoch or record.status in STICKY:
            return summary(record)
        return record.next_cycle(epoch, self.clock()), False

    def _run(self, run: ActionRun) -> dict[str, Any]:
        kind = run.action.kind
        try:
            if run.action.decision == ActionDecision.SKIP:  # protected in the plan: not even read
                return self.outcomes.settle(run, evaluate(Facts(kind=kind, planned=run.action.decision)))
            if kind == ActionKind.ISOLATE_VM:
                return self.vms.run(run)
            if kind == ActionKind.DISABLE_USER:
                return self.accounts.run_user(run)
            if kind == ActionKind.DISABLE_SERVICE_PRINCIPAL:
                return self.accounts.run_service_principal(run)
            verdict = evaluate(Facts(kind=kind, planned=run.action.decision, approved=run.approved))
            return self.outcomes.settle(run, verdict)
        except TransientError as exc:
            self.outcomes.attempt_failed(run, exc)
            raise
        except ConfigurationError as exc:
            return self.outcomes.fail(run, RequestRejectedError(f"configuration: {exc}"))

    def record_failure(self, request: dict[str, Any]) -> dict[str, Any]:
        """The orchestration gave up on an action (retries exhausted): record it failed and escalate."""
        action = ContainmentAction.model_validate(request["action"])
        incident: Incident = self.incidents.get(request["incidentId"])
        error = error_line(str(request.get("error") or "unknown error"))
        attempts = int(request.get("attempts") or 0)
        epoch = int(request.get("epoch") or 1)
        reason = f"gave up after {attempts} attempts: {error}" if attempts else f"gave up: {error}"
        for _ in range(CONTENTION_TRIES):
            got = self.ledger.read(incident.id, action.action_id)
            record, etag = (
                (got.value, got.etag) if got else (ActionRecord.new(incident.id, action, epoch, self.clock()), None)
            )
            if record.status not in (None, ActionStatus.IN_PROGRESS, ActionStatus.APPROVED):
                if record.epoch >= epoch or record.status in STICKY:
                    return summary(record)  # it did settle after all (e.g. finished before a crash)
                record = record.next_cycle(epoch, self.clock())
            run = ActionRun(incident, action, record, etag, epoch, record.approved, self.clock())
            try:
                return self.outcomes.fail(run, TransientError(reason, code="RetriesExhausted"))
            except (ConcurrencyError, ConflictError):
                continue
        raise TransientError("could not record the failure: the row kept changing")


_EXC_LINE = re.compile(r"Exception:\s*(?:[\w.]+Error|[\w.]+Exception|\w+):\s*(.+)")


def error_line(text: str) -> str:
    """The human part of a durable task failure (no stack traces in evidence)."""
    m = _EXC_LINE.search(text)
    line = m.group(1) if m else text.splitlines()[0] if text else "unknown error"
    return line.split("\nStack:")[0].strip()[:500]
