"""One partner's preflight (``GET /api/partners/{id}/preflight``): can the app act for it right now?

Checks, each with a detail that names what to fix:

- ``graph-token``: a Graph token for the partner's tenant can be had (the SOC app's, or the managed
  identity's in the SOC's own tenant) — fails with "consent missing in tenant …" and the like;
- ``graph-read``: a protected identity of the partner (else of the SOC), else the SOC app's own service
  principal in that tenant, can be read with that token;
- ``arm-permissions``, one per subscription: ``Microsoft.Authorization/permissions`` grants the NIC write
  and the NSG join (a subscription not delegated through Lighthouse fails here);
- ``sentinel-workspace``, one per workspace: the workspace answers on ARM with its customer id.

Nothing is changed anywhere; the report is computed, never cached.
"""

from __future__ import annotations

import time

from shared.errors import AdapterError, PartnerNotFoundError
from shared.partners import Partner, PartnerRegistry
from shared.preflight.checks import (
    ARM_PERMISSIONS,
    GRAPH_READ,
    GRAPH_TOKEN,
    SENTINEL_WORKSPACE,
    Check,
    PreflightReport,
    missing_actions,
)
from shared.preflight.ports import ArmAccess, TenantAccess
from shared.settings import Settings


class PartnerPreflight:
    def __init__(self, partners: PartnerRegistry, settings: Settings, tenants: TenantAccess, arm: ArmAccess):
        self.partners, self.settings, self.tenants, self.arm = partners, settings, tenants, arm

    def run(self, partner_id: str) -> PreflightReport:
        partner = self.partners.get(partner_id)
        if partner is None:
            raise PartnerNotFoundError(partner_id)
        return self.check(partner)

    def check(self, partner: Partner) -> PreflightReport:
        started = time.perf_counter()
        token = self._graph_token(partner)
        checks = [token, self._graph_read(partner, token), *self._arm(partner), *self._workspaces(partner)]
        return PreflightReport(partner.id, tuple(checks), int((time.perf_counter() - started) * 1000))

    # -- Graph ---------------------------------------------------------------------------------
    def _graph_token(self, partner: Partner) -> Check:
        try:
            how = self.tenants.graph_token(partner.tenantId)
        except AdapterError as exc:
            return Check(GRAPH_TOKEN, False, exc.reason)
        return Check(GRAPH_TOKEN, True, how)

    def _graph_read(self, partner: Partner, token: Check) -> Check:
        if not token.ok:
            return Check(GRAPH_READ, False, "not tried: no Graph token for the partner's tenant (see graph-token)")
        target = next(iter([*partner.protectedIdentities, *self.partners.soc.protectedIdentities]), None)
        if target is None:
            target = self.settings.soc_app_client_id  # its service principal exists once the tenant consented
        if target is None:
            return Check(
                GRAPH_READ,
                False,
                "nothing to read: list the partner's break-glass accounts in protectedIdentities (PARTNERS_FILE)",
            )
        try:
            name = self.tenants.read_account(partner.tenantId, target)
        except AdapterError as exc:
            return Check(GRAPH_READ, False, f"could not read {target}: {exc.reason}")
        return Check(GRAPH_READ, True, f"read {name}")

    # -- ARM -----------------------------------------------------------------------------------
    def _arm(self, partner: Partner) -> list[Check]:
        if not partner.subscriptionIds:
            return [
                Check(
                    ARM_PERMISSIONS,
                    False,
                    "no subscription in subscriptionIds: list the partner's delegated subscriptions (PARTNERS_FILE)",
                )
            ]
        out = []
        for sub in partner.subscriptionIds:
            try:
                missing = missing_actions(self.arm.permissions(sub))
            except AdapterError as exc:
                out.append(Check(ARM_PERMISSIONS, False, f"subscription {sub}: {exc.reason}"))
                continue
            if missing:
                out.append(
                    Check(
                        ARM_PERMISSIONS,
                        False,
                        f"{', '.join(missing)} not granted on subscription {sub}: the Lighthouse delegation "
                        "must include Network Contributor (infra/partner/lighthouse.bicep)",
                    )
                )
            else:
                out.append(Check(ARM_PERMISSIONS, True, f"subscription {sub}: NIC write and NSG join granted"))
        return out

    def _workspaces(self, partner: Partner) -> list[Check]:
        if not partner.workspaces:
            shared = self.settings.log_analytics_workspace_id
            detail = (
                f"no workspace listed for this partner: the SOC-wide workspace {shared} serves it"
                if shared
                else "no Sentinel workspace listed for this partner: nothing to check"
            )
            return [Check(SENTINEL_WORKSPACE, True, detail)]
        out = []
        for ws in partner.workspaces:
            try:
                info = self.arm.workspace(ws.resource_id)
            except AdapterError as exc:
                out.append(Check(SENTINEL_WORKSPACE, False, f"workspace {ws.workspaceName}: {exc.reason}"))
                continue
            if info.customer_id and info.customer_id.lower() != ws.workspaceId:
                out.append(
                    Check(
                        SENTINEL_WORKSPACE,
                        False,
                        f"workspace {ws.workspaceName} answers, but its workspace id is {info.customer_id}, "
                        f"not {ws.workspaceId}: correct workspaceId in PARTNERS_FILE",
                    )
                )
            else:
                out.append(Check(SENTINEL_WORKSPACE, True, f"workspace {ws.workspaceName} answers"))
        return out
