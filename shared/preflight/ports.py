"""What preflight needs from Azure, as ``typing.Protocol``s (implemented in ``shared/adapters/preflight_azure.py``).

Every method raises the shared adapter vocabulary (``shared/errors.py``) with a reason that says what to
fix: ``AccessDeniedError`` for a refusal (consent missing, a subscription not delegated),
``TargetNotFoundError`` for something that is not there, ``TransientError`` when Azure did not answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Permission:
    """One entry of ``Microsoft.Authorization/permissions``: what the caller may and may not do."""

    actions: tuple[str, ...]
    not_actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkspaceInfo:
    """A Log Analytics workspace as ARM answers it."""

    resource_id: str
    customer_id: str | None


class TenantAccess(Protocol):
    """Microsoft Graph in one tenant (None: the SOC's own), with that tenant's credential."""

    def graph_token(self, tenant_id: str | None) -> str:
        """Get a Graph token for the tenant; returns which credential gave it (no token material)."""
        ...

    def read_account(self, tenant_id: str | None, id_or_upn: str) -> str:
        """Read a user (else a service principal by app id) in the tenant; returns how it is named."""
        ...


class ArmAccess(Protocol):
    """Azure Resource Manager with the SOC's managed identity (Lighthouse)."""

    def permissions(self, subscription_id: str) -> list[Permission]: ...

    def workspace(self, resource_id: str) -> WorkspaceInfo: ...
