"""Lock an identity out: disable an Entra user (and revoke its sessions) or a service principal (docs/spec/containment.md).

The account is read live first: the protected-identity check uses its real UPN and ids (not only the
plan's), a guest is refused (its home tenant owns it), and ``accountEnabled`` before containment is
what release restores. ``disablePending`` is saved with the write-ahead because the PATCH may land
and go unrecorded: release then reads the live account before enabling anything.

Tenancy (issue 11): the account is read and changed in the incident partner's own directory
(``Directories.for_tenant(partner.tenantId)``), with that tenant's token only. Not found there (404) means
not the partner's: the action is held with ``target not owned by partner``; an incident with no known
partner holds every account.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.containment.breaker import BlastRadiusBreaker
from shared.containment.entries import AccountState
from shared.containment.guardrails import Facts, Outcome, Verdict, account_not_owned, evaluate, is_protected
from shared.containment.outcome import FINAL, ActionRun, Outcomes, breaker_verdict
from shared.containment.ports import Directories, Directory, DirectoryAccount
from shared.containment.records import ActionStatus
from shared.containment.tenancy import partner_directory
from shared.errors import AccessDeniedError, AdapterError, RequestRejectedError, TargetNotFoundError
from shared.partners import Partner, PartnerRegistry


class AccountLockout:
    """The ``disable-user`` and ``disable-service-principal`` actions."""

    def __init__(
        self,
        directories: Directories,
        partners: PartnerRegistry,
        breaker: BlastRadiusBreaker,
        outcomes: Outcomes,
        clock: Callable[[], datetime],
    ):
        self.directories, self.partners, self.breaker = directories, partners, breaker
        self.outcomes, self.clock = outcomes, clock

    def run_user(self, run: ActionRun) -> dict[str, Any]:
        entity = run.action.entity
        ident = entity.object_id or entity.upn or run.action.target
        directory, partner, tenant = partner_directory(self.directories, self.partners, run.incident)
        account, settled = self._read(run, lambda: directory.get_user(ident), "the account", partner, tenant)
        if account is None:
            assert settled is not None
            return settled
        verdict = evaluate(
            Facts(
                kind=run.action.kind,
                planned=run.action.decision,
                approved=run.approved,
                protected=self._protected(run, account, entity.upn, entity.object_id),
                guest=account.is_guest,
                not_owned=account_not_owned(partner, tenant, found=True),
            )
        )
        return self._lock(run, directory, account, verdict)

    def run_service_principal(self, run: ActionRun) -> dict[str, Any]:
        entity = run.action.entity
        directory, partner, tenant = partner_directory(self.directories, self.partners, run.incident)

        def read() -> DirectoryAccount:
            return directory.get_service_principal(object_id=entity.object_id, app_id=entity.app_id)

        account, settled = self._read(run, read, "the service principal", partner, tenant)
        if account is None:
            assert settled is not None
            return settled
        verdict = evaluate(
            Facts(
                kind=run.action.kind,
                planned=run.action.decision,
                approved=run.approved,
                protected=self._protected(run, account, entity.name, entity.object_id, entity.app_id),
                not_owned=account_not_owned(partner, tenant, found=True),
            )
        )
        return self._lock(run, directory, account, verdict)

    def _read(
        self,
        run: ActionRun,
        read: Callable[[], DirectoryAccount],
        what: str,
        partner: Partner | None,
        tenant: str | None,
    ) -> tuple[DirectoryAccount, None] | tuple[None, dict[str, Any]]:
        """The first read, in the partner's directory: a 404 there (not yet approved) holds the action as not
        the partner's; anything else is ``Outcomes.read_account``'s (final failures escalated)."""
        if run.approved:
            return self.outcomes.read_account(run, read, what)
        try:
            first = read()
        except TargetNotFoundError:
            verdict = evaluate(
                Facts(
                    kind=run.action.kind,
                    planned=run.action.decision,
                    not_owned=account_not_owned(partner, tenant, found=False),
                )
            )
            ownership = {"partner": partner.id if partner else None, "tenant": tenant, "found": False}
            return None, self.outcomes.settle(run, verdict, {"ownership": ownership})
        except AdapterError as exc:
            error = exc

            def fails() -> DirectoryAccount:
                raise error

            return self.outcomes.read_account(run, fails, what)
        if first.enabled is None:
            return self.outcomes.read_target(run, read, what)  # read once more, as read_account does
        return first, None

    def _lock(
        self, run: ActionRun, directory: Directory, account: DirectoryAccount, verdict: Verdict
    ) -> dict[str, Any]:
        """Disable a user (and revoke its sessions) or a service principal, as the verdict allows."""
        out = self.outcomes
        is_user = account.kind == "user"
        noun = "account" if is_user else "service principal"
        facts = {"account" if is_user else "servicePrincipal": account_facts(account)}
        if verdict.outcome == Outcome.FAIL:
            return out.fail(run, RequestRejectedError(verdict.reason, code="GuestAccount"), facts, verdict)
        if verdict.outcome == Outcome.DRY_RUN:
            return out.settle(run, verdict, facts, preview=facts)
        if verdict.outcome != Outcome.EXECUTE:
            return out.settle(run, verdict, facts)
        if account.enabled is None:
            # Graph answered without accountEnabled (read twice): nothing may be claimed either way.
            return out.fail(
                run,
                RequestRejectedError(
                    f"Microsoft Graph did not report whether the {noun} is enabled (accountEnabled missing or "
                    "null): nothing was changed; check the account by hand",
                    code="AccountStateUnknown",
                ),
                facts,
            )
        state = self._observe(run, account)
        if account.enabled is False and not state.disabled_by_us:
            return out.already(run, verdict, facts, f"{noun} already disabled: nothing changed")
        if account.enabled and not run.approved and not self.breaker.take_slot(run.slot_key, run.slot_before or ()):
            return out.settle(run, breaker_verdict(), facts)
        who = account.upn or account.display_name or account.id
        record = run.record
        try:
            if account.enabled:
                record.account = state.disabling()  # saved with the write-ahead, before the PATCH
                out.write_ahead(run, verdict, facts)
                if is_user:
                    directory.set_user_enabled(account.id, False)
                else:
                    directory.set_service_principal_enabled(account.id, False)
                record.account = state = state.disabled()
                run.drafts.append(
                    out.draft(
                        run,
                        "containment.account-disabled" if is_user else "containment.service-principal-disabled",
                        f"{noun.capitalize()} {who} disabled (accountEnabled=false)",
                        {"account": account.id, "before": {"accountEnabled": True}, "after": {"accountEnabled": False}},
                    )
                )
            if is_user and not state.sessions_revoked:
                directory.revoke_sign_in_sessions(account.id)
                record.account = state = state.revoked()
                run.drafts.append(
                    out.draft(
                        run,
                        "containment.sessions-revoked",
                        f"Sign-in sessions and refresh tokens of {who} revoked",
                        {"account": account.id},
                    )
                )
        except FINAL as exc:
            current = record.account or state
            if not current.disabled_by_us:
                record.account = current.refused()
            if isinstance(exc, AccessDeniedError) and is_user:
                exc = AccessDeniedError(
                    "403 from Microsoft Graph: the app may not change this account (a privileged administrator "
                    "can only be disabled by a Privileged Authentication Administrator)",
                    status=exc.status,
                    code=exc.code,
                )
            return out.fail(run, exc, facts)
        return out.contained(run, verdict, facts)

    def _observe(self, run: ActionRun, account: DirectoryAccount) -> AccountState:
        """The row's account state with what was just read; its state before containment is kept from
        the first read (a re-run must not take "disabled" as the state to restore)."""
        state = dataclasses.replace(
            run.record.account or AccountState(),
            id=account.id,
            kind=account.kind,
            upn=account.upn,
            app_id=account.app_id,
            display_name=account.display_name,
        )
        if state.enabled_before is None:
            state = dataclasses.replace(state, enabled_before=account.enabled)
        if account.enabled is False and run.record.status == ActionStatus.IN_PROGRESS and state.enabled_before is True:
            state = state.disabled()  # an earlier attempt disabled it and stopped before recording that
        run.record.account = state
        return state

    def _protected(self, run: ActionRun, account: DirectoryAccount, *more: str | None) -> bool:
        partner = self.partners.get(run.incident.partner_id)
        listed = [*(partner.protectedIdentities if partner else []), *self.partners.soc.protectedIdentities]
        return is_protected(listed, *account.identifiers(), *more)


def account_facts(account: DirectoryAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "kind": account.kind,
        "upn": account.upn,
        "displayName": account.display_name,
        "userType": account.user_type,
        "appId": account.app_id,
        "accountEnabled": account.enabled,
    }
