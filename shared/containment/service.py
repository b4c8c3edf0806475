"""ContainmentService: executes, approves and releases containment actions (SPEC 4, 9).

Runs inside durable activities (execute, record a final failure, conclude)
and operator routes (approve, release). Side effects go through the
``NetworkIsolation`` / ``Directory`` ports; state goes to the
``ContainmentActions`` table, one row per (incident, action id), always
written under its ETag (or create-only), so duplicate deliveries, activity
re-runs after a host crash and concurrent operators converge:

- the before-state (each NIC's NSG, the account's ``accountEnabled``) is
  written *before* the first change ("in-progress"), so a crash mid-way is
  finished, not repeated, by the next attempt, and release always knows what
  to put back;
- a row already settled for this epoch is returned as is (no second write to
  Azure);
- evidence is appended before the row is saved: a crash between the two can
  duplicate an event, never lose one;
- the incident itself (status contained / held, first-response stamp with the
  time the first action took effect) is updated once per run, by ``conclude``,
  under the incident's ETag.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.containment import records as rec
from shared.containment.guardrails import (
    BREAKER_STATE,
    Facts,
    Guardrail,
    Outcome,
    Verdict,
    breaker_reserve,
    evaluate,
    is_protected,
    isolation_tag,
    status_after_containment,
    status_after_release,
)
from shared.containment.ports import (
    AccessDeniedError,
    ContainmentError,
    Directory,
    DirectoryAccount,
    NetworkIsolation,
    NicState,
    PreconditionFailedError,
    RequestRejectedError,
    TargetNotFoundError,
    TransientError,
    VmState,
    parse_resource_id,
    same_id,
)
from shared.containment.records import TABLE, ActionStatus
from shared.errors import ConfigurationError, ConflictError, IncidentNotFoundError
from shared.evidence import EventDraft, now_ms
from shared.models import ActorType, Incident, Phase, isoformat
from shared.partners import PartnerRegistry
from shared.response_plan import ActionDecision, ActionKind, ContainmentAction
from shared.settings import Settings
from shared.store import ConcurrencyError, EvidenceStore

log = logging.getLogger("soc_responder.containment")

_CONTENTION_TRIES = 8
_NIC_WRITE_TRIES = 4
_FINAL = (TargetNotFoundError, AccessDeniedError, RequestRejectedError)

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


def list_actions(store: EvidenceStore, incident_id: str) -> list[dict[str, Any]]:
    """Every containment action of an incident with its status and a one-line result (for emails, reviews)."""
    return [rec.summary(r) for r in store.list_records(TABLE, incident_id)]


@dataclass
class _Run:
    """One execution attempt of one action."""

    incident: Incident
    action: ContainmentAction
    record: dict[str, Any]
    etag: str | None
    epoch: int
    approved: bool
    now: datetime
    drafts: list[EventDraft] = field(default_factory=list)

    @property
    def dry(self) -> bool:
        """Dry-run: read what is needed to say what would happen, change nothing."""
        return self.action.decision == ActionDecision.PLAN_ONLY and not self.approved


class ContainmentService:
    """Contain, approve, release — with the guardrails of SPEC 4, every step evidenced."""

    def __init__(
        self,
        store: EvidenceStore,
        partners: PartnerRegistry,
        settings: Settings,
        network: NetworkIsolation,
        directory: Directory,
        clock: Callable[[], datetime] = now_ms,
    ):
        self.store, self.partners, self.settings = store, partners, settings
        self.network, self.directory, self.clock = network, directory, clock

    # ================================================================ reading
    def list_actions(self, incident_id: str) -> list[dict[str, Any]]:
        """Summaries of the incident's actions (404 if the incident is unknown)."""
        self._incident(incident_id)
        return list_actions(self.store, incident_id)

    # ================================================================ execute (activity)
    def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one planned action: ``{"incidentId", "epoch", "action", "trigger": "runbook"|"approval",
        "approvalId"?}`` → the action's summary. Raises ``TransientError`` to be retried by the orchestration."""
        action = ContainmentAction.model_validate(request["action"])
        incident_id = request["incidentId"]
        epoch = int(request.get("epoch") or 1)
        trigger = request.get("trigger") or "runbook"
        incident = self._incident(incident_id)
        for _ in range(_CONTENTION_TRIES):
            got = self.store.get_record(TABLE, incident_id, action.action_id)
            record, etag = got if got else (None, None)
            prepared = self._prepare(record, incident_id, action, epoch, trigger, request.get("approvalId"))
            if isinstance(prepared, dict):
                return prepared
            record, approved = prepared
            run = _Run(incident, action, record, etag, epoch, approved, self.clock())
            try:
                return self._run(run)
            except (ConcurrencyError, ConflictError):
                continue  # someone else moved the row (duplicate run, operator): re-read and decide again
        raise TransientError("the action's row kept changing under us; will retry")

    def _prepare(
        self,
        record: dict | None,
        incident_id: str,
        action: ContainmentAction,
        epoch: int,
        trigger: str,
        approval_id: str | None,
    ) -> dict | tuple[dict, bool]:
        """(row to work on, approved) — or the settled summary when there is nothing to do."""
        if trigger == "approval":
            approval = (record or {}).get("approval") or {}
            if record is None or approval.get("approvalId") != approval_id or approval.get("decision") != "approve":
                return (
                    rec.summary(record)
                    if record
                    else {"actionId": action.action_id, "status": "unknown", "result": "no such held action"}
                )
            if record.get("status") in (ActionStatus.APPROVED, ActionStatus.IN_PROGRESS):
                return record, True
            return rec.summary(record)
        if record is None:
            return rec.new_record(incident_id, action, epoch, self.clock()), False
        status = record.get("status")
        if status == ActionStatus.IN_PROGRESS or status is None:
            return record, (record.get("approval") or {}).get("decision") == "approve"
        if int(record.get("epoch") or 1) >= epoch or status in rec.STICKY:
            return rec.summary(record)
        return rec.start_new_cycle(record, epoch, self.clock()), False

    def _run(self, run: _Run) -> dict[str, Any]:
        kind = run.action.kind
        try:
            if run.action.decision == ActionDecision.SKIP:  # protected in the plan: not even read
                return self._settle(run, evaluate(Facts(kind=kind, planned=run.action.decision)))
            if kind == ActionKind.ISOLATE_VM:
                return self._run_vm(run)
            if kind == ActionKind.DISABLE_USER:
                return self._run_user(run)
            if kind == ActionKind.DISABLE_SERVICE_PRINCIPAL:
                return self._run_service_principal(run)
            verdict = evaluate(Facts(kind=kind, planned=run.action.decision, approved=run.approved))
            return self._settle(run, verdict)
        except TransientError as exc:
            self._attempt_failed(run, exc)
            raise
        except ConfigurationError as exc:
            return self._fail(run, RequestRejectedError(f"configuration: {exc}"))

    # ---------------------------------------------------------------- VM
    def _run_vm(self, run: _Run) -> dict[str, Any]:
        vm, settled = self._read_target(run, lambda: self.network.get_vm(run.action.target), "the VM")
        if settled is not None:
            return settled
        verdict = evaluate(
            Facts(
                kind=run.action.kind,
                planned=run.action.decision,
                approved=run.approved,
                isolation_tag=isolation_tag(vm.tags),
            )
        )
        facts = {
            "vm": {"id": vm.id, "name": vm.name, "location": vm.location, "tags": vm.tags, "nics": list(vm.nic_ids)}
        }
        if verdict.outcome == Outcome.DRY_RUN:
            return self._settle(run, verdict, facts, preview=self._vm_preview(vm))
        if verdict.outcome != Outcome.EXECUTE:
            return self._settle(run, verdict, facts)
        if not vm.nic_ids:
            return self._fail(run, RequestRejectedError("the VM has no network interface to isolate"), facts)
        try:
            nics = [self.network.get_nic(nic_id) for nic_id in vm.nic_ids]
        except _FINAL as exc:
            return self._fail(run, exc, facts)
        entries: dict[str, dict] = run.record.setdefault("nics", {})
        pending: list[NicState] = []
        for nic in nics:
            quarantine = self.network.quarantine_nsg_id(parse_resource_id(nic.id)["subscription"], nic.location)
            key = nic.id.lower()
            entry = entries.get(key)
            if same_id(nic.nsg_id, quarantine):
                if entry is None:
                    entries[key] = {
                        "id": nic.id,
                        "location": nic.location,
                        "previousNsg": nic.nsg_id,
                        "quarantineNsg": quarantine,
                        "state": "already-quarantined",
                        "changedByUs": False,
                    }
                elif entry.get("state") == "pending":
                    # A previous attempt changed it and stopped before recording that.
                    entry.update(state="quarantined", changedByUs=True)
                continue
            entries[key] = {
                "id": nic.id,
                "location": nic.location,
                "previousNsg": nic.nsg_id,
                "quarantineNsg": quarantine,
                "state": "pending",
                "changedByUs": False,
            }
            pending.append(nic)
        if not pending:
            if any(e.get("changedByUs") for e in entries.values()):
                return self._contained(run, verdict, facts)
            return self._already(run, verdict, facts, "every NIC already has the quarantine NSG: nothing changed")
        if not run.approved and not self._breaker_allows(run):
            for nic in pending:
                entries.pop(nic.id.lower(), None)
            return self._settle(run, self._breaker_verdict(), facts)
        self._write_ahead(run, verdict, facts)
        try:
            nsgs = {}
            for nic in pending:
                sub = parse_resource_id(nic.id)["subscription"]
                loc_key = (sub.lower(), nic.location.replace(" ", "").lower())
                if loc_key not in nsgs:
                    nsgs[loc_key] = self.network.ensure_quarantine_nsg(sub, nic.location)
                    nsg = nsgs[loc_key]
                    if nsg.created or nsg.repaired:
                        run.drafts.append(
                            self._draft(
                                run,
                                "containment.quarantine-nsg-" + ("created" if nsg.created else "repaired"),
                                f"Quarantine NSG {nsg.id.rsplit('/', 1)[-1]} "
                                + ("created" if nsg.created else "rules restored to deny-all (they had drifted)"),
                                {"nsg": nsg.id, "location": nsg.location},
                            )
                        )
                self._quarantine_nic(run, nic, nsgs[loc_key].id)
        except _FINAL as exc:
            for entry in entries.values():
                if entry.get("state") == "pending":  # read live by this attempt, and its write was refused
                    entry["state"] = "not-changed"
            return self._fail(run, exc, facts)
        return self._contained(run, verdict, facts)

    def _quarantine_nic(self, run: _Run, nic: NicState, nsg_id: str) -> None:
        entry = run.record["nics"][nic.id.lower()]
        for _ in range(_NIC_WRITE_TRIES):
            try:
                after = self.network.set_nic_nsg(nic, nsg_id)
                break
            except PreconditionFailedError:
                nic = self.network.get_nic(nic.id)  # changed since read: decide again on fresh state
                if same_id(nic.nsg_id, nsg_id):
                    after = nic
                    break
                entry["previousNsg"] = nic.nsg_id
        else:
            raise TransientError(f"NIC {nic.id.rsplit('/', 1)[-1]} kept changing while being quarantined")
        unexpected = [
            p
            for p in changed_paths(nic.document, after.document)
            if not p.startswith("properties.networkSecurityGroup")
        ]
        entry.update(state="quarantined", changedByUs=True, at=isoformat(self.clock()))
        if unexpected:
            entry["unexpectedChanges"] = unexpected
        run.drafts.append(
            self._draft(
                run,
                "containment.nic-quarantined",
                f"NIC {nic.id.rsplit('/', 1)[-1]}: NSG {_short(entry['previousNsg'])} → {_short(nsg_id)}",
                {
                    "nic": nic.id,
                    "before": {"networkSecurityGroup": entry["previousNsg"], "etag": nic.etag},
                    "after": {"networkSecurityGroup": after.nsg_id, "etag": after.etag},
                    "otherChanges": unexpected,
                },
            )
        )

    def _vm_preview(self, vm: VmState) -> dict[str, Any]:
        """Dry-run: what enforce mode would change (reads only, best effort)."""
        nics = []
        for nic_id in vm.nic_ids:
            try:
                nic = self.network.get_nic(nic_id)
                sub = parse_resource_id(nic.id)["subscription"]
                nics.append(
                    {
                        "id": nic.id,
                        "currentNsg": nic.nsg_id,
                        "quarantineNsg": self.network.quarantine_nsg_id(sub, nic.location),
                    }
                )
            except ContainmentError as exc:
                nics.append({"id": nic_id, "error": exc.reason})
        return {"nics": nics}

    # ---------------------------------------------------------------- user
    def _run_user(self, run: _Run) -> dict[str, Any]:
        entity = run.action.entity
        ident = entity.object_id or entity.upn or run.action.target
        read = lambda: self.directory.get_user(ident)  # noqa: E731
        account, settled = self._read_account(run, read, "the account")
        if settled is not None:
            return settled
        verdict = evaluate(
            Facts(
                kind=run.action.kind,
                planned=run.action.decision,
                approved=run.approved,
                protected=self._protected(run, account, entity.upn, entity.object_id),
                guest=account.is_guest,
            )
        )
        return self._lock(run, account, verdict)

    # ---------------------------------------------------------------- service principal
    def _run_service_principal(self, run: _Run) -> dict[str, Any]:
        entity = run.action.entity
        read = lambda: self.directory.get_service_principal(
            object_id=entity.object_id,  # noqa: E731
            app_id=entity.app_id,
        )
        account, settled = self._read_account(run, read, "the service principal")
        if settled is not None:
            return settled
        verdict = evaluate(
            Facts(
                kind=run.action.kind,
                planned=run.action.decision,
                approved=run.approved,
                protected=self._protected(run, account, entity.name, entity.object_id, entity.app_id),
            )
        )
        return self._lock(run, account, verdict)

    def _lock(self, run: _Run, account: DirectoryAccount, verdict: Verdict) -> dict[str, Any]:
        """Disable a user (and revoke its sessions) or a service principal, as the verdict allows."""
        is_user = account.kind == "user"
        noun = "account" if is_user else "service principal"
        facts = {"account" if is_user else "servicePrincipal": _account_facts(account)}
        if verdict.outcome == Outcome.FAIL:
            return self._fail(run, RequestRejectedError(verdict.reason, code="GuestAccount"), facts, verdict)
        if verdict.outcome == Outcome.DRY_RUN:
            return self._settle(run, verdict, facts, preview=facts)
        if verdict.outcome != Outcome.EXECUTE:
            return self._settle(run, verdict, facts)
        if account.enabled is None:
            # Graph answered without accountEnabled (read twice): nothing may be claimed either way.
            return self._fail(
                run,
                RequestRejectedError(
                    f"Microsoft Graph did not report whether the {noun} is enabled (accountEnabled missing or "
                    "null): nothing was changed; check the account by hand",
                    code="AccountStateUnknown",
                ),
                facts,
            )
        state = self._account_state(run, account)
        if account.enabled is False and not state.get("disabledByUs"):
            return self._already(run, verdict, facts, f"{noun} already disabled: nothing changed")
        if account.enabled and not run.approved and not self._breaker_allows(run):
            return self._settle(run, self._breaker_verdict(), facts)
        who = account.upn or account.display_name or account.id
        try:
            if account.enabled:
                state["disablePending"] = True  # saved with the write-ahead: the PATCH may land and go unrecorded
                self._write_ahead(run, verdict, facts)
                if is_user:
                    self.directory.set_user_enabled(account.id, False)
                else:
                    self.directory.set_service_principal_enabled(account.id, False)
                state["disabledByUs"] = True
                state.pop("disablePending", None)
                run.drafts.append(
                    self._draft(
                        run,
                        "containment.account-disabled" if is_user else "containment.service-principal-disabled",
                        f"{noun.capitalize()} {who} disabled (accountEnabled=false)",
                        {"account": account.id, "before": {"accountEnabled": True}, "after": {"accountEnabled": False}},
                    )
                )
            if is_user and not state.get("sessionsRevoked"):
                self.directory.revoke_sign_in_sessions(account.id)
                state["sessionsRevoked"] = True
                run.drafts.append(
                    self._draft(
                        run,
                        "containment.sessions-revoked",
                        f"Sign-in sessions and refresh tokens of {who} revoked",
                        {"account": account.id},
                    )
                )
        except _FINAL as exc:
            if not state.get("disabledByUs"):
                state["disablePending"] = False  # read enabled by this attempt, and the PATCH was refused
            if isinstance(exc, AccessDeniedError) and is_user:
                exc = AccessDeniedError(
                    "403 from Microsoft Graph: the app may not change this account (a privileged administrator "
                    "can only be disabled by a Privileged Authentication Administrator)",
                    status=exc.status,
                    code=exc.code,
                )
            return self._fail(run, exc, facts)
        return self._contained(run, verdict, facts)

    def _account_state(self, run: _Run, account: DirectoryAccount) -> dict[str, Any]:
        state = run.record.setdefault("account", {})
        state.update(
            id=account.id, kind=account.kind, upn=account.upn, appId=account.app_id, displayName=account.display_name
        )
        if "enabledBefore" not in state:
            state["enabledBefore"] = account.enabled
        if (
            account.enabled is False
            and run.record.get("status") == ActionStatus.IN_PROGRESS
            and state.get("enabledBefore") is True
        ):
            state["disabledByUs"] = True  # an earlier attempt disabled it and stopped before recording that
            state.pop("disablePending", None)
        return state

    def _protected(self, run: _Run, account: DirectoryAccount, *more: str | None) -> bool:
        partner = self.partners.get(run.incident.partner_id)
        listed = [*(partner.protectedIdentities if partner else []), *self.partners.soc.protectedIdentities]
        return is_protected(listed, *account.identifiers(), *more)

    # ---------------------------------------------------------------- settling
    def _settle(
        self, run: _Run, verdict: Verdict, facts: dict | None = None, preview: dict | None = None
    ) -> dict[str, Any]:
        """Record a decision that changes nothing in Azure (held, dry-run, skipped, partner action)."""
        status = _STATUS_FOR[verdict.outcome]
        run.record.update(status=status.value, verdict=verdict.wire())
        if preview is not None:
            run.record["preview"] = preview
        event = (
            "containment.breaker-tripped"
            if verdict.guardrail == Guardrail.BLAST_RADIUS
            else _EVENT_FOR[verdict.outcome]
        )
        run.drafts.append(
            self._draft(
                run,
                event,
                f"{_verb(run.action)} {run.action.target_display}: {status.value} — {verdict.reason}",
                {"verdict": verdict.wire(), "facts": facts or {}, "preview": preview},
            )
        )
        return self._commit(run)

    def _already(self, run: _Run, verdict: Verdict, facts: dict, why: str) -> dict[str, Any]:
        run.record.update(
            status=ActionStatus.ALREADY_CONTAINED.value, verdict=verdict.wire(), containedAt=isoformat(self.clock())
        )
        run.drafts.append(
            self._draft(
                run,
                "containment.already-contained",
                f"{_verb(run.action)} {run.action.target_display}: {why}",
                {"verdict": verdict.wire(), "facts": facts, "nics": run.record.get("nics")},
            )
        )
        return self._commit(run)

    def _write_ahead(self, run: _Run, verdict: Verdict, facts: dict) -> None:
        """Record the before-state and 'in-progress' before the first change."""
        if run.record.get("status") == ActionStatus.IN_PROGRESS and run.etag:
            return  # a previous attempt already did
        run.record.update(status=ActionStatus.IN_PROGRESS.value, verdict=verdict.wire())
        # The row alone is written now (it is what a re-run and release rely on); the "started" event goes
        # out with the next batch of evidence — the outcome, the failure or the failed attempt.
        run.drafts.append(
            self._draft(
                run,
                "containment.started",
                f"{_verb(run.action)} {run.action.target_display}: started ({verdict.reason})",
                {"verdict": verdict.wire(), "before": _before(run.record, facts)},
            )
        )
        self._save(run)

    def _contained(self, run: _Run, verdict: Verdict, facts: dict) -> dict[str, Any]:
        run.record.update(
            status=ActionStatus.CONTAINED.value, verdict=verdict.wire(), containedAt=isoformat(self.clock())
        )
        run.drafts.append(
            self._draft(
                run,
                "containment.executed",
                f"{_verb(run.action)} {run.action.target_display}: contained",
                {"verdict": verdict.wire(), "before": _before(run.record, facts), "after": _after(run.record)},
            )
        )
        return self._commit(run)

    def _fail(
        self, run: _Run, exc: ContainmentError, facts: dict | None = None, verdict: Verdict | None = None
    ) -> dict[str, Any]:
        """A final failure: recorded with its reason and escalated to people (never swallowed)."""
        account = run.record.get("account") or {}
        if rec.account_changed(run.record) and not account.get("disabledByUs"):
            account["disablePending"] = True  # possibly disabled (an unrecorded PATCH): kept once no longer in progress
        failure = {
            **exc.describe(),
            "at": isoformat(self.clock()),
            "final": True,
            "partiallyApplied": rec.changed_by_us(run.record),
        }
        run.record.update(status=ActionStatus.FAILED.value, failure=failure)
        if verdict is not None:
            run.record["verdict"] = verdict.wire()
        run.drafts.append(
            self._draft(
                run,
                "containment.failed",
                f"{_verb(run.action)} {run.action.target_display} FAILED: {exc.reason} — escalated to people",
                {
                    "failure": failure,
                    "facts": facts or {},
                    "nics": run.record.get("nics"),
                    "account": run.record.get("account"),
                },
            )
        )
        return self._commit(run)

    def _read_target(self, run: _Run, read: Callable[[], Any], what: str) -> tuple[Any, dict | None]:
        """The action's first read: (what was read, None), or (None, the settled summary) when it cannot be
        read — a final failure (or, in dry-run, a note of what enforce mode would run into)."""
        try:
            return read(), None
        except _FINAL as exc:
            if isinstance(exc, TargetNotFoundError):
                exc = TargetNotFoundError(
                    f"{what} no longer exists ({run.action.target})", status=exc.status, code=exc.code
                )
            if run.dry:
                return None, self._settle(run, self._dry_verdict(run, exc), preview={"error": exc.reason})
            return None, self._fail(run, exc)
        except TransientError as exc:
            if run.dry:
                return None, self._settle(run, self._dry_verdict(run, None), preview={"error": exc.reason})
            raise

    def _read_account(self, run: _Run, read: Callable[[], Any], what: str) -> tuple[Any, dict | None]:
        """``_read_target`` for a user or service principal, read once more when ``accountEnabled`` is
        missing (``_lock`` refuses to act on an unknown state)."""
        account, settled = self._read_target(run, read, what)
        if settled is None and account.enabled is None:
            account, settled = self._read_target(run, read, what)
        return account, settled

    @staticmethod
    def _dry_verdict(run: _Run, exc: ContainmentError | None) -> Verdict:
        why = f"enforce mode would fail: {exc.reason}" if exc else "current state could not be read"
        return Verdict(
            Outcome.DRY_RUN,
            Guardrail.RESPONSE_MODE,
            f"dry-run: nothing changed; {why}",
            would=Outcome.FAIL if exc else None,
        )

    @staticmethod
    def _breaker_verdict() -> Verdict:
        return Verdict(
            Outcome.HOLD,
            Guardrail.BLAST_RADIUS,
            "blast-radius breaker: too many automatic containments in the window; held for approval",
            risk="a faulty detection rule could otherwise isolate a fleet",
        )

    def _attempt_failed(self, run: _Run, exc: ContainmentError) -> None:
        """A transient failure: evidenced, the row saved as far as it got, then retried by the orchestration."""
        run.drafts.append(
            self._draft(
                run,
                "containment.attempt-failed",
                f"{_verb(run.action)} {run.action.target_display}: attempt failed, will retry ({exc.reason})",
                {"error": exc.describe()},
            )
        )
        try:
            self.store.append_events(run.incident.id, run.drafts)
            run.drafts = []
            if run.record.get("status"):
                self._save(run)
        except (ConcurrencyError, ConflictError):
            pass
        except Exception:
            log.exception("could not record a failed containment attempt for %s", run.incident.id)

    def _commit(self, run: _Run) -> dict[str, Any]:
        """Evidence first, then the row (a crash in between duplicates an event, never loses one)."""
        if run.drafts:
            self.store.append_events(run.incident.id, run.drafts)
            run.drafts = []
        self._save(run)
        return rec.summary(run.record)

    def _save(self, run: _Run) -> None:
        run.record["updatedAt"] = isoformat(self.clock())
        if run.etag is None:
            run.etag = self.store.put_record(TABLE, run.incident.id, run.action.action_id, run.record, create_only=True)
        else:
            run.etag = self.store.put_record(TABLE, run.incident.id, run.action.action_id, run.record, etag=run.etag)

    def _draft(self, run: _Run, event_type: str, summary: str, data: dict, phase: Phase = Phase.CONTAIN) -> EventDraft:
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
                "cycle": run.record.get("cycle", 1),
                "approved": run.approved,
                **data,
            },
        )

    # ---------------------------------------------------------------- breaker
    def _breaker_allows(self, run: _Run) -> bool:
        """Take a slot of the deployment-wide blast-radius breaker (ETag-guarded state row, so it holds
        across scaled-out instances)."""
        key = f"{run.incident.id}/{run.action.action_id}"
        limit = self.settings.blast_radius_max
        window = timedelta(minutes=self.settings.blast_radius_window_minutes)
        for _ in range(30):
            got = self.store.get_state(BREAKER_STATE)
            value, etag = got if got else ({"slots": []}, None)
            current = list(value.get("slots") or [])
            allowed, slots = breaker_reserve(current, key, self.clock(), limit, window)
            if slots == current:
                return allowed
            doc = {"slots": slots, "limit": limit, "windowMinutes": self.settings.blast_radius_window_minutes}
            try:
                if etag is None:
                    self.store.put_record("IngestState", "state", BREAKER_STATE, doc, create_only=True)
                else:
                    self.store.set_state(BREAKER_STATE, doc, etag)
                return allowed
            except (ConcurrencyError, ConflictError):
                continue
        raise TransientError("the blast-radius breaker is contended; will retry")

    # ---------------------------------------------------------------- incident updates
    def _incident(self, incident_id: str) -> Incident:
        got = self.store.get_incident(incident_id)
        if got is None:
            raise IncidentNotFoundError(incident_id)
        return got[0]

    def _update_incident(
        self,
        incident_id: str,
        change: Callable[[Incident], Incident | None],
        known: tuple[Incident, str | None] | None = None,
    ) -> tuple[Incident, Incident | None]:
        """ETag-guarded read-modify-write: (incident before, incident after or None if unchanged).
        ``known`` (incident, etag) saves the first read when the caller just read it."""
        for _ in range(20):
            if known is not None and known[1]:
                (incident, etag), known = known, None
            else:
                got = self.store.get_incident(incident_id)
                if got is None:
                    raise IncidentNotFoundError(incident_id)
                incident, etag = got
            updated = change(incident)
            if updated is None:
                return incident, None
            try:
                self.store.replace_incident(updated, etag)
                return incident, updated
            except ConcurrencyError:
                continue
        raise TransientError(f"incident {incident_id} is changing too fast to update")

    def _incident_change(
        self,
        incident_id: str,
        *,
        status: Callable[[Incident], Any] | None = None,
        first_response: tuple[datetime, str, str | None] | None = None,
        known: tuple[Incident, str | None] | None = None,
        actor: str | None = None,
        reason: str = "",
    ) -> tuple[str, list[EventDraft]]:
        """One ETag-guarded update of the incident: its status (``status(incident)`` → new status) and/or
        the first-response stamp (``(at, what, action id)``, only if not set yet).
        Returns (status after, the evidence drafts describing what changed)."""
        now = self.clock()

        def change(incident: Incident) -> Incident | None:
            updates: dict[str, Any] = {}
            if status is not None and status(incident) != incident.status:
                updates["status"] = status(incident)
            if first_response is not None and incident.sla.first_response_at is None:
                updates["sla"] = incident.sla.model_copy(update={"first_response_at": first_response[0]})
            if not updates:
                return None
            return incident.model_copy(update={**updates, "updated_at": max(now, incident.updated_at)})

        before, after = self._update_incident(incident_id, change, known)
        if after is None:
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
            at, what, action_id = first_response
            late = at > after.sla.first_response_due
            drafts.append(
                EventDraft(
                    event_type="sla.first-response",
                    phase=Phase.CONTAIN,
                    occurred_at=now,
                    summary=f"First response: {what}"
                    + (" (after the 30-minute target)" if late else " (within the 30-minute target)"),
                    data={
                        "firstResponseAt": isoformat(at),
                        "due": isoformat(after.sla.first_response_due),
                        "withinTarget": not late,
                        "actionId": action_id,
                    },
                )
            )
        return after.status.value, drafts

    def _status_from_records(
        self,
        incident_id: str,
        rows: list[dict] | None = None,
        known: tuple[Incident, str | None] | None = None,
        actor: str | None = None,
        reason: str = "",
    ) -> tuple[str, list[EventDraft]]:
        """Set the incident's status from its action rows (contained beats held), and stamp its first
        response with the time the first action took effect, if nothing answered it before."""
        rows = self.store.list_records(TABLE, incident_id) if rows is None else rows
        contained = bool(rec.by_status(rows, *rec.IN_EFFECT))
        held = bool(rec.by_status(rows, ActionStatus.HELD, ActionStatus.APPROVED))
        first = None
        effective = rec.by_status(rows, *rec.IN_EFFECT)
        if effective:
            row = min(effective, key=lambda r: r.get("containedAt") or r.get("updatedAt") or "")
            stamp = row.get("containedAt") or row.get("updatedAt")
            first = (
                datetime.fromisoformat(stamp.replace("Z", "+00:00")),
                f"{row.get('kind')} {row.get('targetDisplay')}",
                row.get("actionId"),
            )
        return self._incident_change(
            incident_id,
            status=lambda i: status_after_containment(i.status, contained, held),
            first_response=first,
            known=known,
            actor=actor,
            reason=reason,
        )

    # ================================================================ after retries (activity)
    def record_failure(self, request: dict[str, Any]) -> dict[str, Any]:
        """The orchestration gave up on an action (retries exhausted): record it failed and escalate."""
        action = ContainmentAction.model_validate(request["action"])
        incident = self._incident(request["incidentId"])
        error = error_line(str(request.get("error") or "unknown error"))
        attempts = int(request.get("attempts") or 0)
        epoch = int(request.get("epoch") or 1)
        for _ in range(_CONTENTION_TRIES):
            got = self.store.get_record(TABLE, incident.id, action.action_id)
            record, etag = got if got else (rec.new_record(incident.id, action, epoch, self.clock()), None)
            status = record.get("status")
            if status not in (None, ActionStatus.IN_PROGRESS, ActionStatus.APPROVED):
                if int(record.get("epoch") or 1) >= epoch or status in rec.STICKY:
                    return rec.summary(record)  # it did settle after all (e.g. finished before a crash)
                record = rec.start_new_cycle(record, epoch, self.clock())
            run = _Run(
                incident,
                action,
                record,
                etag,
                epoch,
                (record.get("approval") or {}).get("decision") == "approve",
                self.clock(),
            )
            reason = f"gave up after {attempts} attempts: {error}" if attempts else f"gave up: {error}"
            try:
                return self._fail(run, TransientError(reason, code="RetriesExhausted"))
            except (ConcurrencyError, ConflictError):
                continue
        raise TransientError("could not record the failure: the row kept changing")

    # ================================================================ conclude (activity)
    def conclude(self, request: dict[str, Any]) -> dict[str, Any]:
        """After a containment run: set the incident's status from its actions and evidence the outcome."""
        incident_id = request["incidentId"]
        results = request.get("results") or []
        counts: dict[str, int] = {}
        for r in results:
            counts[r.get("status") or "unknown"] = counts.get(r.get("status") or "unknown", 0) + 1
        got = self.store.get_incident(incident_id)
        if got is None:
            raise IncidentNotFoundError(incident_id)
        status, drafts = self._status_from_records(incident_id, known=got)
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

    # ================================================================ approve / reject (operator)
    def decide(self, incident_id: str, actor: str, decision: str, reason: str | None) -> dict[str, Any]:
        """Approve (run) or reject (block) the incident's held actions.

        Returns the transitioned actions and, for approvals, the runs the caller
        must start: ``{"runs": [{"approvalId", "epoch", "actions": [...]}]}``. Approved
        rows whose run may never have started (a crash after the transition) are
        offered again under their original approval id, so a retry converges.
        """
        incident = self._incident(incident_id)
        now = self.clock()
        approval_id = "apr-" + hashlib.sha256(f"{incident_id}|{actor}|{isoformat(now)}".encode()).hexdigest()[:12]
        changed: list[dict] = []
        drafts: list[EventDraft] = []
        runs: dict[str, dict] = {}
        new_status = ActionStatus.APPROVED if decision == "approve" else ActionStatus.REJECTED
        for row in self.store.list_records(TABLE, incident_id):
            action_id = row.get("actionId")
            if row.get("status") == ActionStatus.APPROVED and decision == "approve":
                old = (row.get("approval") or {}).get("approvalId")
                runs.setdefault(
                    old, {"approvalId": old, "epoch": row.get("epoch") or 1, "actions": [], "resumed": True}
                )["actions"].append(row["action"])
                continue
            if row.get("status") != ActionStatus.HELD:
                continue
            updated = self._transition(
                incident_id,
                action_id,
                {ActionStatus.HELD},
                lambda r: r.update(
                    status=new_status.value,
                    approval={
                        "decision": decision,
                        "actor": actor,
                        "reason": reason,
                        "at": isoformat(now),
                        "approvalId": approval_id,
                    },
                ),
            )
            if updated is None:
                continue
            changed.append(updated)
            verdict = updated.get("verdict") or {}
            verb = "approved" if decision == "approve" else "rejected"
            drafts.append(
                _analyst(
                    actor,
                    f"containment.{verb}",
                    Phase.CONTAIN,
                    now,
                    f"{actor} {verb} {updated.get('kind')} {updated.get('targetDisplay')}"
                    + (f": {reason}" if reason else ""),
                    {
                        "actionId": action_id,
                        "kind": updated.get("kind"),
                        "target": updated.get("target"),
                        "decision": decision,
                        "reason": reason,
                        "heldBy": verdict.get("guardrail"),
                        "approvalId": approval_id,
                    },
                )
            )
            if decision == "approve":
                runs.setdefault(
                    approval_id,
                    {"approvalId": approval_id, "epoch": updated.get("epoch") or 1, "actions": [], "resumed": False},
                )["actions"].append(updated["action"])
        if not drafts:
            drafts.append(
                _analyst(
                    actor,
                    "containment.approval-noop",
                    Phase.CONTAIN,
                    now,
                    f"{actor} asked to {decision}: nothing is held for approval",
                    {"decision": decision, "reason": reason, "pendingRuns": sorted(runs)},
                )
            )
        status = incident.status.value
        if decision == "reject" and changed:
            status, more = self._status_from_records(
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
            "actions": [rec.summary(r) for r in changed],
            "runs": list(runs.values()),
            "incidentStatus": status,
            "message": message,
        }

    def _transition(
        self, incident_id: str, action_id: str, allowed: set[ActionStatus], mutate: Callable[[dict], Any]
    ) -> dict | None:
        """ETag-guarded change of one row if its status is still in ``allowed``; None otherwise."""
        for _ in range(_CONTENTION_TRIES):
            got = self.store.get_record(TABLE, incident_id, action_id)
            if got is None:
                return None
            row, etag = got
            if row.get("status") not in {s.value for s in allowed}:
                return None
            mutate(row)
            row["updatedAt"] = isoformat(self.clock())
            try:
                self.store.put_record(TABLE, incident_id, action_id, row, etag=etag)
                return row
            except ConcurrencyError:
                continue
        raise ConflictError("the action is changing; retry")

    # ================================================================ release (operator)
    def release_runs(self, incident_id: str) -> list[str]:
        """Durable instance ids whose run could still change this incident's containment: the current
        epoch's runbook and containment runs, the containment run of each in-progress row's epoch, and the
        approval runs of approved / in-progress rows. The release route asks the host about each."""
        from shared.containment import approval_instance_id, containment_instance_id

        incident = self._incident(incident_id)
        rows = self.store.list_records(TABLE, incident_id)
        epochs = {incident.runbook_epoch} | {
            int(r.get("epoch") or 1) for r in rec.by_status(rows, ActionStatus.IN_PROGRESS)
        }
        ids = [incident.runbook_instance_id] + [containment_instance_id(incident_id, e) for e in sorted(epochs)]
        for row in rec.by_status(rows, ActionStatus.APPROVED, ActionStatus.IN_PROGRESS):
            approval = row.get("approval") or {}
            if approval.get("decision") == "approve" and approval.get("approvalId"):
                ids.append(approval_instance_id(incident_id, approval["approvalId"]))
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

        ``running``: runs of ``release_runs`` the durable host reports Pending/Running (any → 409: what
        they are about to do would undo the release). ``checked_at``: when the host was asked — an
        ``in-progress`` row last written before then has no live run left (terminated, or its failure
        could not be recorded) and is treated as failed and restored. Without a check, only a row
        in progress for longer than ``IN_PROGRESS_STUCK_AFTER`` is."""
        incident = self._incident(incident_id)
        now = self.clock()
        rows = self.store.list_records(TABLE, incident_id)
        requested = _analyst(
            actor, "release.requested", Phase.RECOVER, now, f"{actor} asked to release: {reason}", {"reason": reason}
        )
        busy = [r for r in rec.by_status(rows, ActionStatus.IN_PROGRESS) if not _stuck(r, now, checked_at)]
        if running or busy:
            self.store.append_events(
                incident_id,
                [
                    requested,
                    _analyst(
                        actor,
                        "release.refused",
                        Phase.RECOVER,
                        now,
                        "Release refused: containment is still running",
                        {"running": [r.get("actionId") for r in busy], "runs": list(running or [])},
                    ),
                ],
            )
            raise ConflictError("containment of this incident is still running; retry once it has finished")
        self.store.append_events(incident_id, [requested])
        results: list[dict] = []
        failures: list[dict] = []
        for row in rows:
            status = row.get("status")
            # Restore first: a held / approved row of a later epoch can still carry an earlier epoch's
            # change (start_new_cycle keeps it); then withdraw what has not run.
            if rec.changed_by_us(row):
                done, failure = self._restore(incident, row, actor, reason, checked_at)
                if done is not None:
                    results.append(done)
                if failure is not None:
                    failures.append(failure)
            if status in (ActionStatus.HELD, ActionStatus.APPROVED):
                done = self._withdraw(incident_id, row, actor, reason)
                if done is not None:
                    results.append(done)
        if not results and not failures:
            already = bool(rec.by_status(rows, ActionStatus.RELEASED))
            before_us = rec.by_status(rows, ActionStatus.ALREADY_CONTAINED)
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
            self.store.append_events(
                incident_id,
                [
                    _analyst(
                        actor, "release.noop", Phase.RECOVER, self.clock(), f"Release: {message}", {"outcome": outcome}
                    )
                ],
            )
            return {
                "incidentId": incident_id,
                "status": outcome,
                "message": message,
                "incidentStatus": incident.status.value,
                "actions": list_actions(self.store, incident_id),
                "failures": [],
            }
        status = incident.status.value
        if results:
            status, drafts = self._incident_change(
                incident_id,
                status=lambda i: status_after_release(i.status),
                actor=actor,
                reason=f"released by {actor}: {reason}",
            )
            if drafts:
                self.store.append_events(incident_id, drafts)
        outcome = "released" if not failures else ("partially-released" if results else "release-failed")
        message = {
            "released": "prior state restored",
            "partially-released": "some actions could not be released: see failures (retry is safe)",
            "release-failed": "nothing could be released: see failures (retry is safe)",
        }[outcome]
        return {
            "incidentId": incident_id,
            "status": outcome,
            "message": message,
            "incidentStatus": status,
            "releasedAt": isoformat(now),
            "actions": list_actions(self.store, incident_id),
            "failures": failures,
        }

    def _withdraw(self, incident_id: str, row: dict, actor: str, reason: str) -> dict | None:
        now = self.clock()
        updated = self._transition(
            incident_id,
            row["actionId"],
            {ActionStatus.HELD, ActionStatus.APPROVED},
            lambda r: r.update(
                status=ActionStatus.WITHDRAWN.value,
                release={
                    **{k: v for k, v in (r.get("release") or {}).items() if k in ("notes", "error")},
                    "actor": actor,
                    "reason": reason,
                    "at": isoformat(now),
                    "state": "withdrawn",
                },
            ),
        )
        if updated is None:
            return None
        self.store.append_events(
            incident_id,
            [
                _analyst(
                    actor,
                    "containment.withdrawn",
                    Phase.RECOVER,
                    now,
                    f"{row.get('kind')} {row.get('targetDisplay')}: withdrawn before it ran (released by {actor})",
                    {"actionId": row["actionId"], "previousStatus": row.get("status"), "reason": reason},
                )
            ],
        )
        return updated

    def _restore(
        self, incident: Incident, row: dict, actor: str, reason: str, checked_at: datetime | None = None
    ) -> tuple[dict | None, dict | None]:
        """Put back one action's prior state: (released row or None, failure entry or None). A held or
        approved row keeps its status (the caller withdraws it next)."""
        for _ in range(_CONTENTION_TRIES):
            got = self.store.get_record(TABLE, incident.id, row["actionId"])
            if got is None:
                return None, None
            row, etag = got
            now = self.clock()
            stuck = row.get("status") == ActionStatus.IN_PROGRESS
            if stuck and not _stuck(row, now, checked_at):
                raise ConflictError("containment of this incident is still running; retry once it has finished")
            if not rec.changed_by_us(row):
                return None, None  # a concurrent release finished it
            if stuck and not row.get("failure"):
                row["failure"] = {
                    "reason": "the containment run stopped without recording an outcome; treated "
                    "as failed and released",
                    "code": "RunStopped",
                    "final": True,
                    "at": isoformat(now),
                    "partiallyApplied": True,
                }
            drafts: list[EventDraft] = []
            notes: list[str] = []
            failure = None
            try:
                if row.get("kind") == ActionKind.ISOLATE_VM:
                    self._restore_nics(incident, row, actor, drafts, notes)
                else:
                    self._restore_account(incident, row, actor, drafts, notes)
            except ContainmentError as exc:
                # What was put back so far stays recorded (restored flags), so a retry finishes the rest.
                failure = {
                    "actionId": row["actionId"],
                    "kind": row.get("kind"),
                    "target": row.get("target"),
                    "targetDisplay": row.get("targetDisplay"),
                    "reason": exc.reason,
                    "code": exc.code,
                    "status": exc.status,
                }
                row["release"] = {
                    "state": "failed",
                    "actor": actor,
                    "reason": reason,
                    "at": isoformat(now),
                    "error": exc.describe(),
                }
                drafts.append(
                    _analyst(
                        actor,
                        "containment.release-failed",
                        Phase.RECOVER,
                        now,
                        f"Release of {row.get('targetDisplay')} FAILED: {exc.reason} (retry is safe)",
                        {
                            "actionId": row["actionId"],
                            "error": exc.describe(),
                            "nics": row.get("nics"),
                            "account": row.get("account"),
                        },
                    )
                )
            else:
                if row.get("status") not in (ActionStatus.HELD, ActionStatus.APPROVED):
                    row["status"] = ActionStatus.RELEASED.value
                row.update(
                    release={
                        "state": "released",
                        "actor": actor,
                        "reason": reason,
                        "at": isoformat(now),
                        "notes": notes,
                    }
                )
                drafts.append(
                    _analyst(
                        actor,
                        "containment.released",
                        Phase.RECOVER,
                        now,
                        f"{row.get('kind')} {row.get('targetDisplay')}: released, prior state restored",
                        {
                            "actionId": row["actionId"],
                            "notes": notes,
                            "nics": row.get("nics"),
                            "account": row.get("account"),
                        },
                    )
                )
            row["updatedAt"] = isoformat(now)
            self.store.append_events(incident.id, drafts)
            try:
                self.store.put_record(TABLE, incident.id, row["actionId"], row, etag=etag)
            except ConcurrencyError:
                if failure is None:
                    continue  # someone else changed the row: look again (what is restored stays restored)
            return (None, failure) if failure else (row, None)
        raise ConflictError("the action is changing; retry")

    def _restore_nics(
        self, incident: Incident, row: dict, actor: str, drafts: list[EventDraft], notes: list[str]
    ) -> None:
        for entry in (row.get("nics") or {}).values():
            if not rec.nic_changed(entry):  # includes "pending": the live NIC below decides
                continue
            name = entry["id"].rsplit("/", 1)[-1]
            try:
                nic = self.network.get_nic(entry["id"])
            except TargetNotFoundError:
                entry.update(restored=True, restoreNote="the NIC no longer exists")
                notes.append(f"NIC {name}: no longer exists")
                continue
            for _ in range(_NIC_WRITE_TRIES):
                if same_id(nic.nsg_id, entry.get("previousNsg")):
                    entry.update(restored=True, restoreNote="already back on its previous NSG")
                    break
                if not same_id(nic.nsg_id, entry.get("quarantineNsg")):
                    # Someone changed it since we quarantined it: their change wins, and people are told.
                    entry.update(
                        restored=True,
                        restoreNote=f"NSG changed by someone else since containment "
                        f"(now {_short(nic.nsg_id)}): left as is",
                    )
                    break
                try:
                    after = self.network.set_nic_nsg(nic, entry.get("previousNsg"))
                except PreconditionFailedError:
                    nic = self.network.get_nic(entry["id"])
                    continue
                entry.update(
                    restored=True,
                    restoreNote="previous NSG restored"
                    if entry.get("previousNsg")
                    else "no NSG, as before containment",
                )
                drafts.append(
                    _analyst(
                        actor,
                        "containment.nic-restored",
                        Phase.RECOVER,
                        self.clock(),
                        f"NIC {name}: NSG {_short(nic.nsg_id)} → {_short(entry.get('previousNsg'))}",
                        {
                            "actionId": row["actionId"],
                            "nic": entry["id"],
                            "before": {"networkSecurityGroup": nic.nsg_id, "etag": nic.etag},
                            "after": {"networkSecurityGroup": after.nsg_id, "etag": after.etag},
                        },
                    )
                )
                break
            else:
                raise TransientError(f"NIC {name} kept changing while being released")
            notes.append(f"NIC {name}: {entry['restoreNote']}")

    def _restore_account(
        self, incident: Incident, row: dict, actor: str, drafts: list[EventDraft], notes: list[str]
    ) -> None:
        state = row.get("account") or {}
        if not rec.account_changed(row) or not state.get("id"):  # includes a disable never recorded
            return
        is_user = row.get("kind") == ActionKind.DISABLE_USER
        try:
            current = (
                self.directory.get_user(state["id"])
                if is_user
                else self.directory.get_service_principal(object_id=state["id"])
            )
        except TargetNotFoundError:
            state.update(restored=True, restoreNote="the account no longer exists")
            notes.append("account no longer exists")
            return
        if current.enabled:
            state.update(restored=True, restoreNote="already enabled again")
        else:
            if is_user:
                self.directory.set_user_enabled(current.id, True)
            else:
                self.directory.set_service_principal_enabled(current.id, True)
            state.update(restored=True, restoreNote="re-enabled")
            drafts.append(
                _analyst(
                    actor,
                    "containment.account-enabled",
                    Phase.RECOVER,
                    self.clock(),
                    f"{'Account' if is_user else 'Service principal'} "
                    f"{state.get('upn') or state.get('displayName') or state['id']} re-enabled",
                    {
                        "actionId": row["actionId"],
                        "account": state["id"],
                        "before": {"accountEnabled": False},
                        "after": {"accountEnabled": True},
                    },
                )
            )
        notes.append(
            f"{'account' if is_user else 'service principal'}: {state['restoreNote']}"
            + ("; revoked sessions stay revoked (the user signs in again)" if is_user else "")
        )


# -- helpers ------------------------------------------------------------------------------------
def changed_paths(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths where two ARM documents differ (ETag and provisioning state ignored; lists of
    named items matched by name). Proves a NIC update changed nothing but its NSG."""
    ignore = {"etag", "provisioningState"}
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for k in sorted(set(before) | set(after)):
            if k in ignore:
                continue
            p = f"{path}.{k}" if path else k
            if k not in before or k not in after:
                out.append(p)
            else:
                out.extend(changed_paths(before[k], after[k], p))
        return out
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [path]
        out = []
        for i, (x, y) in enumerate(zip(before, after)):
            name = x.get("name") if isinstance(x, dict) else None
            out.extend(changed_paths(x, y, f"{path}[{name if name is not None else i}]"))
        return out
    return [] if before == after else [path]


def _account_facts(account: DirectoryAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "kind": account.kind,
        "upn": account.upn,
        "displayName": account.display_name,
        "userType": account.user_type,
        "appId": account.app_id,
        "accountEnabled": account.enabled,
    }


def _before(record: dict, facts: dict) -> dict[str, Any]:
    nics = record.get("nics") or {}
    if nics:
        return {"nics": [{"id": n["id"], "networkSecurityGroup": n.get("previousNsg")} for n in nics.values()]}
    account = record.get("account") or {}
    return {"account": {"id": account.get("id"), "accountEnabled": account.get("enabledBefore")}, **facts}


def _after(record: dict) -> dict[str, Any]:
    nics = record.get("nics") or {}
    if nics:
        return {
            "nics": [
                {
                    "id": n["id"],
                    "networkSecurityGroup": n.get("quarantineNsg"),
                    "state": n.get("state"),
                    "changedByUs": n.get("changedByUs"),
                }
                for n in nics.values()
            ]
        }
    account = record.get("account") or {}
    return {
        "account": {
            "id": account.get("id"),
            "accountEnabled": False,
            "sessionsRevoked": account.get("sessionsRevoked", False),
        }
    }


def _stuck(row: dict, now: datetime, checked_at: datetime | None) -> bool:
    """An ``in-progress`` row no run will finish: last written before the durable host reported no live
    run (``checked_at``), or longer ago than every retry could take (``IN_PROGRESS_STUCK_AFTER``)."""
    from shared.containment import IN_PROGRESS_STUCK_AFTER

    since = rec.in_progress_since(row)
    if since is None:
        return False
    return now - since > IN_PROGRESS_STUCK_AFTER or (checked_at is not None and since <= checked_at)


def _analyst(actor: str, event_type: str, phase: Phase, at: datetime, summary: str, data: dict) -> EventDraft:
    """An event an operator's request caused: the person who asked is its actor (SPEC 9)."""
    return EventDraft(
        event_type=event_type,
        phase=phase,
        occurred_at=at,
        summary=summary,
        data=data,
        actor=actor,
        actor_type=ActorType.ANALYST,
    )


def _verb(action: ContainmentAction) -> str:
    return {
        ActionKind.ISOLATE_VM: "Isolate VM",
        ActionKind.DISABLE_USER: "Disable account",
        ActionKind.DISABLE_SERVICE_PRINCIPAL: "Disable service principal",
        ActionKind.PARTNER_FINDING: "Network device",
    }.get(action.kind, action.kind.value)


def _short(resource_id: str | None) -> str:
    return resource_id.rsplit("/", 1)[-1] if resource_id else "(none)"


_EXC_LINE = re.compile(r"Exception:\s*(?:[\w.]+Error|[\w.]+Exception|\w+):\s*(.+)")


def error_line(text: str) -> str:
    """The human part of a durable task failure (no stack traces in evidence)."""
    m = _EXC_LINE.search(text)
    line = m.group(1) if m else text.splitlines()[0] if text else "unknown error"
    return line.split("\nStack:")[0].strip()[:500]
