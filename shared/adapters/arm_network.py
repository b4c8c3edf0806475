"""ARM adapter for VM quarantine (azure-mgmt-compute + azure-mgmt-network), behind ``NetworkIsolation``.

- The VM is read by its resource id; its NICs are the ids in
  ``properties.networkProfile.networkInterfaces`` — never found by a name match.
- One quarantine NSG per subscription and region (an NSG binds only to NICs of
  its own region), ``soc-quarantine-<region>`` in ``QUARANTINE_RESOURCE_GROUP``
  of the VM's subscription, created on first need with ``If-None-Match: *``
  (two instances racing create it once), deny-all inbound and outbound at the
  top priority, plus allow rules for ``SOC_INVESTIGATION_SOURCE`` when set. Its
  rules are checked on every use and put back if someone loosened them.
- A NIC is changed by GET + PUT of the same document with only
  ``networkSecurityGroup`` replaced, under ``If-Match`` with the ETag read, so
  a concurrent change is never overwritten (412 → ``ConcurrentEditError``: the use case re-reads).
- Long-running operations are awaited (``.result()``).
- Retries: azure-core's RetryPolicy already retries 408/429/5xx (honouring
  Retry-After) and connection/read timeouts; it is configured per call here
  (a few retries, a bounded total time) and the durable activity retries
  what is left.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from shared.containment.ports import NicState, QuarantineNsg, VmState, parse_resource_id
from shared.errors import (
    AccessDeniedError,
    AdapterError,
    ConcurrentEditError,
    RequestRejectedError,
    TargetNotFoundError,
    TransientError,
)
from shared.settings import Settings

NSG_PREFIX = "soc-quarantine-"
NSG_TAGS = {"managed-by": "soc-responder", "purpose": "soc-quarantine"}
_RULE_KEYS = (
    "direction",
    "access",
    "priority",
    "protocol",
    "sourcePortRange",
    "destinationPortRange",
    "sourceAddressPrefix",
    "destinationAddressPrefix",
    "sourceAddressPrefixes",
    "destinationAddressPrefixes",
)


def region_key(location: str) -> str:
    """ARM location names compare without spaces and case ("West Europe" == "westeurope")."""
    return (location or "").replace(" ", "").lower()


def investigation_sources(value: str | None) -> list[str]:
    """The SOC investigation source(s): comma-separated CIDRs or addresses, validated."""
    out = []
    for raw in (value or "").split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise RequestRejectedError(
                f"SOC_INVESTIGATION_SOURCE: {item!r} is not an IP address or CIDR", code="InvalidConfiguration"
            ) from None
    return out


def quarantine_rules(soc_source: str | None) -> list[dict[str, Any]]:
    """The quarantine NSG's rules (ARM wire shape). Deny-all in and out at the top priority (100);
    with an investigation source, its allow rules take 100 and the deny rules 110."""
    sources = investigation_sources(soc_source)

    def rule(
        name: str,
        direction: str,
        access: str,
        priority: int,
        src: list[str] | str,
        dst: list[str] | str,
        description: str,
    ) -> dict[str, Any]:
        props: dict[str, Any] = {
            "description": description,
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": "*",
            "access": access,
            "priority": priority,
            "direction": direction,
        }
        for side, value in (("source", src), ("destination", dst)):
            if isinstance(value, list) and len(value) > 1:
                props[f"{side}AddressPrefixes"] = value
            else:
                props[f"{side}AddressPrefix"] = value[0] if isinstance(value, list) else value
        return {"name": name, "properties": props}

    rules = []
    deny = 100
    if sources:
        deny = 110
        rules += [
            rule(
                "soc-allow-investigation-in",
                "Inbound",
                "Allow",
                100,
                sources,
                "*",
                "SOC investigation source may reach the quarantined VM",
            ),
            rule(
                "soc-allow-investigation-out",
                "Outbound",
                "Allow",
                100,
                "*",
                sources,
                "Quarantined VM may reach the SOC investigation source",
            ),
        ]
    rules += [
        rule("soc-deny-all-in", "Inbound", "Deny", deny, "*", "*", "soc-responder quarantine: deny all inbound"),
        rule("soc-deny-all-out", "Outbound", "Deny", deny, "*", "*", "soc-responder quarantine: deny all outbound"),
    ]
    return rules


def _rule_signature(rules: list[dict[str, Any]]) -> set[tuple]:
    out = set()
    for r in rules or []:
        props = r.get("properties") or {}
        sig: list[object] = [str(r.get("name", "")).lower()]
        for k in _RULE_KEYS:
            v = props.get(k)
            if isinstance(v, list):
                v = tuple(sorted(str(x).lower() for x in v)) or None
            elif isinstance(v, str):
                v = v.lower() or None  # ARM may answer "" for a field it does not use
            sig.append(v)
        out.add(tuple(sig))
    return out


def rules_drifted(actual: list[dict[str, Any]], desired: list[dict[str, Any]]) -> bool:
    """True if the NSG's custom rules are not exactly the quarantine rules (an added allow rule counts)."""
    return _rule_signature(actual) != _rule_signature(desired)


def translate(exc: BaseException, what: str) -> AdapterError:
    """An azure-core exception as the domain's error (reason safe to evidence: no tokens, no headers)."""
    from azure.core.exceptions import AzureError, HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = getattr(getattr(exc, "error", None), "code", None)
        message = getattr(getattr(exc, "error", None), "message", None) or exc.reason or type(exc).__name__
        reason = f"{what}: {status or ''} {code or ''} {message}".replace("  ", " ")[:500]
        if status == 404:
            return TargetNotFoundError(reason, status=status, code=code)
        if status == 403:
            return AccessDeniedError(reason, status=status, code=code)
        if status == 412:
            return ConcurrentEditError(reason, status=status, code=code)
        if status is None or status < 400 or status in (408, 409, 429) or status >= 500:
            # < 400: a long-running operation that ended Failed; 409: another operation in progress.
            return TransientError(reason, status=status, code=code)
        return RequestRejectedError(reason, status=status, code=code)
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, AzureError, TimeoutError, ConnectionError)):
        return TransientError(f"{what}: {type(exc).__name__}: {str(exc)[:300]}", code=type(exc).__name__)
    raise exc


class ArmNetworkIsolation:
    """Containment's ``NetworkIsolation`` port on Azure Resource Manager."""

    def __init__(
        self,
        settings: Settings,
        network_client: Callable[[str], Any] | None = None,
        compute_client: Callable[[str], Any] | None = None,
        *,
        retries: int = 3,
        backoff_seconds: float | None = None,
        timeout_seconds: int = 120,
    ):
        """``network_client`` / ``compute_client``: subscription id → SDK client (default: ``clients.py``)."""
        self._settings = settings
        self._network = network_client
        self._compute = compute_client
        backoff = settings.containment_retry_backoff_seconds if backoff_seconds is None else backoff_seconds
        # Per-call azure-core options: a few retries with exponential backoff (Retry-After wins when sent),
        # connect/read timeouts, and a ceiling on the time one call may spend retrying.
        self._lro = {
            "retry_total": retries,
            "retry_status": retries,
            "retry_connect": retries,
            "retry_read": retries,
            "retry_backoff_factor": backoff,
            "retry_backoff_max": 30,
            "connection_timeout": 10,
            "read_timeout": 60,
            # Poll every 2 s unless ARM's Retry-After says otherwise (the SDK default is 30 s).
            "polling_interval": 2,
        }
        # ``timeout`` bounds the time one call may spend retrying; LRO pollers take it as their interval,
        # so it is only given to plain calls.
        self._call = {k: v for k, v in self._lro.items() if k != "polling_interval"}
        self._call["timeout"] = timeout_seconds

    # -- clients -------------------------------------------------------------------------
    def _net(self, subscription_id: str):
        if self._network is not None:
            return self._network(subscription_id)
        from shared.adapters.clients import network_client

        return network_client(self._settings, subscription_id)

    def _comp(self, subscription_id: str):
        if self._compute is not None:
            return self._compute(subscription_id)
        from shared.adapters.clients import compute_client

        return compute_client(self._settings, subscription_id)

    @staticmethod
    def _parts(resource_id: str, expected_type: str) -> dict[str, str]:
        try:
            parts = parse_resource_id(resource_id)
        except ValueError as exc:
            raise RequestRejectedError(str(exc), code="InvalidResourceId") from None
        if parts["type"] != expected_type:
            raise RequestRejectedError(f"{resource_id} is not a {expected_type}", code="InvalidResourceType")
        return parts

    # -- reads ---------------------------------------------------------------------------
    def get_vm(self, vm_id: str) -> VmState:
        p = self._parts(vm_id, "microsoft.compute/virtualmachines")
        try:
            vm = self._comp(p["subscription"]).virtual_machines.get(p["resourceGroup"], p["name"], **self._call)
        except Exception as exc:
            raise translate(exc, f"read VM {p['name']}") from None
        profile = getattr(vm, "network_profile", None)
        nic_ids = tuple(n.id for n in (getattr(profile, "network_interfaces", None) or []) if getattr(n, "id", None))
        return VmState(
            id=vm.id or vm_id,
            name=vm.name or p["name"],
            location=vm.location,
            tags=dict(vm.tags or {}),
            nic_ids=nic_ids,
        )

    def get_nic(self, nic_id: str) -> NicState:
        p = self._parts(nic_id, "microsoft.network/networkinterfaces")
        try:
            nic = self._net(p["subscription"]).network_interfaces.get(p["resourceGroup"], p["name"], **self._call)
        except Exception as exc:
            raise translate(exc, f"read NIC {p['name']}") from None
        return self._nic_state(nic, nic_id)

    @staticmethod
    def _nic_state(nic: Any, fallback_id: str) -> NicState:
        nsg = getattr(nic, "network_security_group", None)
        return NicState(
            id=nic.id or fallback_id,
            location=nic.location,
            nsg_id=getattr(nsg, "id", None) if nsg else None,
            etag=nic.etag,
            document=nic.as_dict(),
            handle=nic,
        )

    # -- quarantine NSG --------------------------------------------------------------------
    def quarantine_nsg_id(self, subscription_id: str, location: str) -> str:
        return (
            f"/subscriptions/{subscription_id}/resourceGroups/{self._settings.quarantine_resource_group}"
            f"/providers/Microsoft.Network/networkSecurityGroups/{NSG_PREFIX}{region_key(location)}"
        )

    def ensure_quarantine_nsg(self, subscription_id: str, location: str) -> QuarantineNsg:
        from azure.mgmt.network.models import NetworkSecurityGroup, SecurityRule

        rg = self._settings.quarantine_resource_group
        name = NSG_PREFIX + region_key(location)
        desired = quarantine_rules(self._settings.soc_investigation_source)
        client = self._net(subscription_id)
        created = False
        for _ in range(3):
            try:
                nsg = client.network_security_groups.get(rg, name, **self._call)
            except Exception as exc:
                err = translate(exc, f"read quarantine NSG {name}")
                if not isinstance(err, TargetNotFoundError):
                    raise err from None
                if err.code == "ResourceGroupNotFound":
                    raise RequestRejectedError(
                        f"quarantine resource group {rg} does not exist in subscription {subscription_id}: "
                        "deploy it (see docs/containment.md) or set QUARANTINE_RESOURCE_GROUP",
                        status=404,
                        code="ResourceGroupNotFound",
                    ) from None
                body = NetworkSecurityGroup(
                    {"location": location, "tags": dict(NSG_TAGS), "properties": {"securityRules": desired}}
                )
                try:
                    nsg = client.network_security_groups.begin_create_or_update(
                        rg, name, body, headers={"If-None-Match": "*"}, **self._lro
                    ).result()
                    created = True
                except Exception as exc2:
                    err = translate(exc2, f"create quarantine NSG {name}")
                    if isinstance(err, ConcurrentEditError):
                        continue  # another instance created it first: read theirs
                    if isinstance(err, TargetNotFoundError):
                        raise RequestRejectedError(
                            f"quarantine resource group {rg} does not exist in subscription {subscription_id}: "
                            "deploy it (see docs/containment.md) or set QUARANTINE_RESOURCE_GROUP",
                            status=404,
                            code=err.code,
                        ) from None
                    raise err from None
            if region_key(nsg.location) != region_key(location):
                raise RequestRejectedError(
                    f"NSG {name} exists in region {nsg.location}, not {location}: rename or remove it",
                    code="QuarantineNsgRegionMismatch",
                )
            actual = (nsg.as_dict().get("properties") or {}).get("securityRules") or []
            if rules_drifted(actual, desired):
                nsg.security_rules = [SecurityRule(r) for r in desired]
                nsg.tags = {**(nsg.tags or {}), **NSG_TAGS}
                try:
                    nsg = client.network_security_groups.begin_create_or_update(
                        rg, name, nsg, headers={"If-Match": nsg.etag}, **self._lro
                    ).result()
                except Exception as exc:
                    err = translate(exc, f"repair quarantine NSG {name}")
                    if isinstance(err, ConcurrentEditError):
                        continue
                    raise err from None
                return QuarantineNsg(id=nsg.id, location=nsg.location, created=created, repaired=not created)
            return QuarantineNsg(id=nsg.id, location=nsg.location, created=created)
        raise TransientError(f"quarantine NSG {name} kept changing while being ensured")

    # -- NIC update ----------------------------------------------------------------------------
    def set_nic_nsg(self, nic: NicState, nsg_id: str | None) -> NicState:
        from azure.mgmt.network.models import NetworkSecurityGroup

        p = self._parts(nic.id, "microsoft.network/networkinterfaces")
        model = nic.handle
        if model is None:
            model = self.get_nic(nic.id).handle
        # Only the association changes; the rest of the document goes back exactly as read.
        model.network_security_group = NetworkSecurityGroup(id=nsg_id) if nsg_id else None
        headers = {"If-Match": nic.etag} if nic.etag else {}
        try:
            after = (
                self._net(p["subscription"])
                .network_interfaces.begin_create_or_update(
                    p["resourceGroup"], p["name"], model, headers=headers, **self._lro
                )
                .result()
            )
        except Exception as exc:
            raise translate(exc, f"update NIC {p['name']}") from None
        return self._nic_state(after, nic.id)
