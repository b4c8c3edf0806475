"""What containment needs from Azure, as structural interfaces (``typing.Protocol``) the domain owns.

``shared/adapters/arm_network.py`` and ``shared/adapters/graph_directory.py``
implement them with the real SDKs (without importing this module's protocols:
``shared/runtime.py`` is where mypy checks they fit); the use cases only see
these value types and the shared adapter errors, so they know nothing of
azure-core, msgraph or HTTP.

Error contract (``shared/errors.py``; adapters translate every SDK failure into one of these):

- ``TargetNotFoundError``, ``AccessDeniedError``, ``RequestRejectedError`` are
  *final*: retrying cannot help (a VM that no longer exists, 403 on a
  privileged admin, a missing quarantine resource group). The use case records
  them and escalates to people.
- ``TransientError`` is what is left after the SDK's own retries (429 with
  Retry-After, 5xx, timeouts): the durable activity is retried, and only when
  those retries are exhausted is the action recorded as failed.
- ``ConcurrentEditError`` (HTTP 412): the resource changed between read and
  write; the use case re-reads and tries again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import AdapterError


def describe(exc: AdapterError) -> dict[str, Any]:
    """What containment evidence records about an adapter failure (the fields its rows and timelines
    have always carried: ``permanent`` is the shared vocabulary's ``final``). No tokens, no internals."""
    return {"reason": exc.reason, "status": exc.status, "code": exc.code, "permanent": exc.final}


# -- value types ----------------------------------------------------------------------------
@dataclass(frozen=True)
class VmState:
    """What containment needs to know about a VM."""

    id: str
    name: str
    location: str
    tags: dict[str, str]
    nic_ids: tuple[str, ...]


@dataclass(frozen=True)
class NicState:
    """A network interface as read from ARM (``handle`` is the adapter's own object for write-back)."""

    id: str
    location: str
    nsg_id: str | None
    etag: str | None
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    handle: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class QuarantineNsg:
    """The quarantine NSG of one region, and what ensuring it did."""

    id: str
    location: str
    created: bool = False
    repaired: bool = False


@dataclass(frozen=True)
class DirectoryAccount:
    """An Entra ID user or service principal, as far as containment cares."""

    kind: str  # "user" | "servicePrincipal"
    id: str
    display_name: str | None = None
    upn: str | None = None
    user_type: str | None = None
    app_id: str | None = None
    enabled: bool | None = None

    @property
    def is_guest(self) -> bool:
        """A B2B guest: its home tenant owns the account (``#EXT#`` UPNs are guests too)."""
        return (self.user_type or "").lower() == "guest" or "#ext#" in (self.upn or "").lower()

    def identifiers(self) -> list[str]:
        return [i for i in (self.id, self.upn, self.app_id, self.display_name) if i]


# -- interfaces -----------------------------------------------------------------------------
class NetworkIsolation(Protocol):
    """Quarantine NSGs and NIC associations (Azure Resource Manager)."""

    def get_vm(self, vm_id: str) -> VmState:
        """The VM by its resource id; TargetNotFoundError if it no longer exists."""
        ...

    def get_nic(self, nic_id: str) -> NicState:
        """The NIC by its resource id."""
        ...

    def quarantine_nsg_id(self, subscription_id: str, location: str) -> str:
        """Resource id the quarantine NSG of that subscription and region has (no I/O)."""
        ...

    def ensure_quarantine_nsg(self, subscription_id: str, location: str) -> QuarantineNsg:
        """The region's quarantine NSG, created if missing and its rules repaired if they drifted."""
        ...

    def set_nic_nsg(self, nic: NicState, nsg_id: str | None) -> NicState:
        """Associate ``nsg_id`` (None: no NSG) with the NIC, changing nothing else; guarded by the NIC's
        ETag (``ConcurrentEditError`` when it changed since read)."""
        ...


class Directory(Protocol):
    """Entra ID users and service principals (Microsoft Graph)."""

    def get_user(self, id_or_upn: str) -> DirectoryAccount: ...

    def set_user_enabled(self, user_id: str, enabled: bool) -> None: ...

    def revoke_sign_in_sessions(self, user_id: str) -> None: ...

    def get_service_principal(self, object_id: str | None = None, app_id: str | None = None) -> DirectoryAccount: ...

    def set_service_principal_enabled(self, sp_id: str, enabled: bool) -> None: ...


class Directories(Protocol):
    """Issue 11: each partner's own directory. ``for_tenant(None)`` (or the SOC's own tenant) is the SOC's
    directory; any other tenant is reached with that tenant's token, never another's."""

    def for_tenant(self, tenant_id: str | None) -> Directory: ...


def parse_resource_id(resource_id: str) -> dict[str, str]:
    """Subscription, resource group, provider type and name of an ARM resource id (lower-cased keys).

    Raises ValueError for anything that is not ``/subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{type}/{name}``.
    """
    parts = [p for p in resource_id.strip().split("/") if p]
    if (
        len(parts) < 8
        or parts[0].lower() != "subscriptions"
        or parts[2].lower() != "resourcegroups"
        or parts[4].lower() != "providers"
        or len(parts) % 2
    ):
        raise ValueError(f"not an ARM resource id: {resource_id!r}")
    return {
        "subscription": parts[1],
        "resourceGroup": parts[3],
        "type": f"{parts[5]}/{parts[6]}".lower(),
        "name": parts[-1],
    }


def same_id(a: str | None, b: str | None) -> bool:
    """ARM ids compare case-insensitively (and None only equals None)."""
    if a is None or b is None:
        return a is None and b is None
    return a.strip().rstrip("/").lower() == b.strip().rstrip("/").lower()
