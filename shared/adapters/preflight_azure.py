"""Preflight's ports on Azure (issue 11): Graph per tenant, ARM permissions and workspaces.

- ``GraphTenantAccess``: a token from ``clients.graph_credential`` (the SOC app's for a partner tenant,
  the managed identity's for the SOC's own), refusals explained by ``entra_tokens.token_failure``; reads
  through ``GraphDirectories`` (the same directory containment uses, so preflight proves what
  containment will meet).
- ``ArmPreflightAccess``: ``GET /subscriptions/{s}/providers/Microsoft.Authorization/permissions`` and the
  workspace resource, on the ARM pipeline with the managed identity (Lighthouse); 403/404 on a
  subscription is worded as "not delegated".
"""

from __future__ import annotations

from typing import Any

from shared.adapters.graph_directory import GraphDirectories
from shared.adapters.sentinel import ArmRest
from shared.errors import AccessDeniedError, AdapterError, TargetNotFoundError, TransientError
from shared.preflight.ports import Permission, WorkspaceInfo
from shared.settings import Settings

PERMISSIONS_API_VERSION = "2022-04-01"
WORKSPACE_API_VERSION = "2022-10-01"


class GraphTenantAccess:
    """Preflight's ``TenantAccess``."""

    def __init__(self, settings: Settings, directories: GraphDirectories):
        self.settings, self.directories = settings, directories

    def graph_token(self, tenant_id: str | None) -> str:
        from shared.adapters.clients import app_tenant, graph_credential
        from shared.adapters.entra_tokens import token_failure

        tenant = app_tenant(self.settings, tenant_id)
        try:
            graph_credential(self.settings, tenant_id).get_token(self.settings.graph_endpoint.rstrip("/") + "/.default")
        except Exception as exc:
            failure = token_failure(exc, tenant or tenant_id, self.settings.soc_app_client_id)
            if failure is None:
                raise TransientError(f"Graph token: {type(exc).__name__}: {str(exc)[:200]}") from None
            raise failure from None
        if tenant is None:
            return "token from the managed identity (the SOC's own tenant)"
        return f"token for tenant {tenant} from the SOC app {self.settings.soc_app_client_id}"

    def read_account(self, tenant_id: str | None, id_or_upn: str) -> str:
        directory = self.directories.for_tenant(tenant_id)
        try:
            account = directory.get_user(id_or_upn)
        except TargetNotFoundError:
            # Not a user: maybe an app id (the SOC app's own service principal, present once consented).
            account = directory.get_service_principal(app_id=id_or_upn)
        return f"{account.kind} {account.upn or account.display_name or account.id}"


class ArmPreflightAccess:
    """Preflight's ``ArmAccess``."""

    def __init__(self, settings: Settings, client: Any = None):
        self.rest = ArmRest(settings, client)

    def permissions(self, subscription_id: str) -> list[Permission]:
        url = self.rest.url(
            f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/permissions", PERMISSIONS_API_VERSION
        )
        try:
            _, payload, _ = self.rest.send("GET", url, what="read the permissions")
        except (AccessDeniedError, TargetNotFoundError) as exc:
            raise AccessDeniedError(
                "not delegated to the SOC (Azure Lighthouse): the partner deploys infra/partner/lighthouse.bicep in "
                f"this subscription ({exc.reason})",
                status=exc.status,
                code=exc.code,
            ) from None
        out = []
        for item in (payload or {}).get("value") or []:
            out.append(
                Permission(
                    actions=tuple(str(a) for a in item.get("actions") or []),
                    not_actions=tuple(str(a) for a in item.get("notActions") or []),
                )
            )
        return out

    def workspace(self, resource_id: str) -> WorkspaceInfo:
        try:
            _, payload, _ = self.rest.send("GET", self.rest.url(resource_id, WORKSPACE_API_VERSION), what="read it")
        except TargetNotFoundError as exc:
            raise TargetNotFoundError(
                f"not found ({exc.reason}): check subscriptionId, resourceGroup and workspaceName in PARTNERS_FILE",
                status=exc.status,
                code=exc.code,
            ) from None
        except AdapterError:
            raise
        props = (payload or {}).get("properties") or {}
        customer = props.get("customerId")
        return WorkspaceInfo(resource_id=resource_id, customer_id=str(customer) if customer else None)
