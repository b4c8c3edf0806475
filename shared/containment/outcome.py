"""How one attempt of one action records what happened: evidence first, then its row.

Shared by the use cases that act on Azure (``isolate_vm``, ``lockout``) and by the recording of a
final failure (``execute``). Every outcome appends the attempt's evidence before saving the row, so a
crash in between can duplicate an event, never lose one; ``write_ahead`` saves the row
``in-progress`` with the before-state *before* the first change, and saves it alone (its "started"
event goes out with the next batch of evidence).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from shared.containment.guardrails import Guardrail, Outcome, Verdict
from shared.containment.ledger import Ledger
from shared.containment.ports import DirectoryAccount, describe
from shared.containment.records import ActionRecord, ActionStatus, summary
from shared.errors import (
    AccessDeniedError,
    AdapterError,
    ConcurrencyError,
    ConflictError,
    RequestRejectedError,
    TargetNotFoundError,
    TransientError,
)
from shared.evidence import EventDraft
from shared.models import ActorType, Incident, Phase, isoformat
from shared.response_plan import ActionDecision, ActionKind, ContainmentAction
from shared.store import EvidenceStore

log = logging.getLogger("soc_responder.containment")

T = TypeVar("T")
# The failures retrying cannot fix: recorded and escalated at once (``TransientError`` is retried).
FINAL = (TargetNotFoundError, AccessDeniedError, RequestRejectedError)

_STATUS_FOR = {
    Outcome.HOLD: ActionStatus.HELD,
    Outcome.DRY_RUN: ActionStatus.DRY_RUN,
    Outcome.SKIP: ActionStatus.SKIPPED,
    Outcome.PARTNER_ACTION: ActionStatus.PARTNER_ACTION,
}
_EVENT_FOR = {
    Outcome.HOLD: "containment.held",
    Outcome.DRY_RUN: "containment.dry-run",
    Outcome.SKIP: "containment.skipped",
    Outcome.PARTNER_ACTION: "containment.partner-action",
}


@dataclass
class ActionRun:
    """One execution attempt of one action: its row as read (and as it changes) and the evidence so far."""

    incident: Incident
    action: ContainmentAction
    record: ActionRecord
    etag: str | None
    epoch: int
    approved: bool
    now: datetime
    drafts: list[EventDraft] = field(default_factory=list)
    # Breaker keys of the plan's earlier automatic actions (issue 15: parallel actions, plan order);
    # None when the run gave no plan order (one competing action, or an approval).
    slot_before: tuple[str, ...] | None = None

    @property
    def dry(self) -> bool:
        """Dry-run: read what is needed to say what would happen, change nothing."""
        return self.action.decision == ActionDecision.PLAN_ONLY and not self.approved

    @property
    def slot_key(self) -> str:
        """The action's key in the blast-radius breaker (a re-run takes no second slot)."""
        return f"{self.incident.id}/{self.action.action_id}"


class Outcomes:
    """Records the outcome of an ``ActionRun`` (row and evidence)."""

    def __init__(self, store: EvidenceStore, ledger: Ledger, clock: Callable[[], datetime]):
        self.store, self.ledger, self.clock = store, ledger, clock

    def settle(
        self, run: ActionRun, verdict: Verdict, facts: dict | None = None, preview: dict | None = None
    ) -> dict[str, Any]:
        """Record a decision that changes nothing in Azure (held, dry-run, skipped, partner action)."""
        status = _STATUS_FOR[verdict.outcome]
        run.record.status, run.record.verdict = status, verdict.wire()
        if preview is not None:
            run.record.set_preview(preview)
        event = (
            "containment.breaker-tripped"
            if verdict.guardrail == Guardrail.BLAST_RADIUS
            else _EVENT_FOR[verdict.outcome]
        )
        run.drafts.append(
            self.draft(
                run,
                event,
                f"{verb(run.action)} {run.action.target_display}: {status.value} — {verdict.reason}",
                {"verdict": verdict.wire(), "facts": facts or {}, "preview": preview},
            )
        )
        return self.commit(run)

    def already(self, run: ActionRun, verdict: Verdict, facts: dict, why: str) -> dict[str, Any]:
        """Nothing to change: the target was contained before this action."""
        run.record.status, run.record.verdict = ActionStatus.ALREADY_CONTAINED, verdict.wire()
        run.record.contained_at = isoformat(self.clock())
        run.drafts.append(
            self.draft(
                run,
                "containment.already-contained",
                f"{verb(run.action)} {run.action.target_display}: {why}",
                {"verdict": verdict.wire(), "facts": facts, "nics": run.record.to_row()["nics"]},
            )
        )
        return self.commit(run)

    def write_ahead(self, run: ActionRun, verdict: Verdict, facts: dict) -> None:
        """Record the before-state and 'in-progress' before the first change."""
        if run.record.status == ActionStatus.IN_PROGRESS and run.etag:
            return  # a previous attempt already did
        run.record.status, run.record.verdict = ActionStatus.IN_PROGRESS, verdict.wire()
        # The row alone is written now (it is what a re-run and release rely on); the "started" event goes
        # out with the next batch of evidence — the outcome, the failure or the failed attempt.
        run.drafts.append(
            self.draft(
                run,
                "containment.started",
                f"{verb(run.action)} {run.action.target_display}: started ({verdict.reason})",
                {"verdict": verdict.wire(), "before": _before(run.record, facts)},
            )
        )
        self.save(run)

    def contained(self, run: ActionRun, verdict: Verdict, facts: dict) -> dict[str, Any]:
        run.record.status, run.record.verdict = ActionStatus.CONTAINED, verdict.wire()
        run.record.contained_at = isoformat(self.clock())
        run.drafts.append(
            self.draft(
                run,
                "containment.executed",
                f"{verb(run.action)} {run.action.target_display}: contained",
                {"verdict": verdict.wire(), "before": _before(run.record, facts), "after": _after(run.record)},
            )
        )
        return self.commit(run)

    def fail(
        self, run: ActionRun, exc: AdapterError, facts: dict | None = None, verdict: Verdict | None = None
    ) -> dict[str, Any]:
        """A final failure: recorded with its reason and escalated to people (never swallowed)."""
        record = run.record
        if record.account is not None and record.account_changed and not record.account.disabled_by_us:
            # Possibly disabled (an unrecorded PATCH): kept once the row is no longer in progress.
            record.account = record.account.disabling()
        failure = {
            **describe(exc),
            "at": isoformat(self.clock()),
            "final": True,
            "partiallyApplied": record.changed_by_us,
        }
        record.status, record.failure = ActionStatus.FAILED, failure
        if verdict is not None:
            record.verdict = verdict.wire()
        row = record.to_row()
        run.drafts.append(
            self.draft(
                run,
                "containment.failed",
                f"{verb(run.action)} {run.action.target_display} FAILED: {exc.reason} — escalated to people",
                {"failure": failure, "facts": facts or {}, "nics": row["nics"], "account": row["account"]},
            )
        )
        return self.commit(run)

    def attempt_failed(self, run: ActionRun, exc: AdapterError) -> None:
        """A transient failure: evidenced, the row saved as far as it got, then retried by the orchestration."""
        run.drafts.append(
            self.draft(
                run,
                "containment.attempt-failed",
                f"{verb(run.action)} {run.action.target_display}: attempt failed, will retry ({exc.reason})",
                {"error": describe(exc)},
            )
        )
        try:
            self.store.append_events(run.incident.id, run.drafts)
            run.drafts = []
            if run.record.status:
                self.save(run)
        except (ConcurrencyError, ConflictError):
            pass
        except Exception:
            log.exception("could not record a failed containment attempt for %s", run.incident.id)

    def commit(self, run: ActionRun) -> dict[str, Any]:
        """Evidence first, then the row (a crash in between duplicates an event, never loses one)."""
        if run.drafts:
            self.store.append_events(run.incident.id, run.drafts)
            run.drafts = []
        self.save(run)
        return summary(run.record)

    def save(self, run: ActionRun) -> None:
        run.etag = self.ledger.save(run.incident.id, run.record, run.etag)

    def draft(
        self, run: ActionRun, event_type: str, summary: str, data: dict, phase: Phase = Phase.CONTAIN
    ) -> EventDraft:
        return EventDraft(
            event_type=event_type,
            phase=phase,
            summary=summary,
            occurred_at=self.clock(),
            data={
                "actionId": run.action.action_id,
                "kind": run.action.kind.value,
                "target": run.action.target,
                "epoch": run.epoch,
                "cycle": run.record.cycle,
                "approved": run.approved,
                **data,
            },
        )

    # -- the first read of an action ----------------------------------------------------------------
    def read_target(
        self, run: ActionRun, read: Callable[[], T], what: str
    ) -> tuple[T, None] | tuple[None, dict[str, Any]]:
        """The action's first read: (what was read, None), or (None, the settled summary) when it cannot be
        read — a final failure (or, in dry-run, a note of what enforce mode would run into)."""
        try:
            return read(), None
        except FINAL as exc:
            if isinstance(exc, TargetNotFoundError):
                exc = TargetNotFoundError(
                    f"{what} no longer exists ({run.action.target})", status=exc.status, code=exc.code
                )
            if run.dry:
                return None, self.settle(run, dry_verdict(exc), preview={"error": exc.reason})
            return None, self.fail(run, exc)
        except TransientError as exc:
            if run.dry:
                return None, self.settle(run, dry_verdict(None), preview={"error": exc.reason})
            raise

    def read_account(
        self, run: ActionRun, read: Callable[[], DirectoryAccount], what: str
    ) -> tuple[DirectoryAccount, None] | tuple[None, dict[str, Any]]:
        """``read_target`` for a user or service principal, read once more when ``accountEnabled`` is
        missing (the lockout refuses to act on an unknown state)."""
        got = self.read_target(run, read, what)
        if got[0] is not None and got[0].enabled is None:
            return self.read_target(run, read, what)
        return got


def dry_verdict(exc: AdapterError | None) -> Verdict:
    why = f"enforce mode would fail: {exc.reason}" if exc else "current state could not be read"
    return Verdict(
        Outcome.DRY_RUN,
        Guardrail.RESPONSE_MODE,
        f"dry-run: nothing changed; {why}",
        would=Outcome.FAIL if exc else None,
    )


def breaker_verdict() -> Verdict:
    return Verdict(
        Outcome.HOLD,
        Guardrail.BLAST_RADIUS,
        "blast-radius breaker: too many automatic containments in the window; held for approval",
        risk="a faulty detection rule could otherwise isolate a fleet",
    )


def analyst_event(actor: str, event_type: str, phase: Phase, at: datetime, summary: str, data: dict) -> EventDraft:
    """An event an operator's request caused: the person who asked is its actor (docs/spec/operator-api.md)."""
    return EventDraft(
        event_type=event_type,
        phase=phase,
        occurred_at=at,
        summary=summary,
        data=data,
        actor=actor,
        actor_type=ActorType.ANALYST,
    )


def verb(action: ContainmentAction) -> str:
    return {
        ActionKind.ISOLATE_VM: "Isolate VM",
        ActionKind.DISABLE_USER: "Disable account",
        ActionKind.DISABLE_SERVICE_PRINCIPAL: "Disable service principal",
        ActionKind.PARTNER_FINDING: "Network device",
    }.get(action.kind, action.kind.value)


def short(resource_id: str | None) -> str:
    return resource_id.rsplit("/", 1)[-1] if resource_id else "(none)"


def _before(record: ActionRecord, facts: dict) -> dict[str, Any]:
    if record.nics:
        return {"nics": [{"id": n.id, "networkSecurityGroup": n.previous_nsg} for n in record.nics.values()]}
    account = record.account
    return {
        "account": {
            "id": account.id if account else None,
            "accountEnabled": account.enabled_before if account else None,
        },
        **facts,
    }


def _after(record: ActionRecord) -> dict[str, Any]:
    if record.nics:
        return {
            "nics": [
                {
                    "id": n.id,
                    "networkSecurityGroup": n.quarantine_nsg,
                    "state": n.state,
                    "changedByUs": n.changed_by_us,
                }
                for n in record.nics.values()
            ]
        }
    account = record.account
    revoked = account.sessions_revoked if account else None
    return {
        "account": {
            "id": account.id if account else None,
            "accountEnabled": False,
            "sessionsRevoked": revoked if revoked is not None else False,
        }
    }
