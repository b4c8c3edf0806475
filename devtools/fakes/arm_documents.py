"""ARM documents: resource ids and paths, and what Resource Manager computes on a PUT.

``normalise`` turns a PUT body into the stored document the way ARM does: read-only properties
kept from the stored version, references reduced to ``{"id": ...}``, child items (ipConfigurations,
securityRules) given ids/etags, an NSG's default rules added. ``json_diff`` compares two documents.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote


def etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def norm_location(loc: Any) -> str:
    return str(loc or "").replace(" ", "").lower()


def resource_key(resource_id: str) -> str:
    """The store key of a resource id (ARM ids ignore case)."""
    return "/" + unquote(resource_id).strip().strip("/").lower()


def json_diff(a: Any, b: Any, *, ignore_keys: Iterable[str] = ("etag",), _path: str = "") -> list[str]:
    """Dotted paths at which two JSON documents differ (lists of named items match by name).

    ``json_diff(nic_before, nic_after)`` after an NSG attach should be
    ``["properties.networkSecurityGroup"]``; keys in ``ignore_keys`` (at any
    depth) are skipped.
    """
    ignore = set(ignore_keys)
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            if k in ignore:
                continue
            p = f"{_path}.{k}" if _path else k
            if k not in a or k not in b:
                out.append(p)
            else:
                out.extend(json_diff(a[k], b[k], ignore_keys=ignore, _path=p))
        return out
    if isinstance(a, list) and isinstance(b, list):
        named = all(isinstance(x, dict) and "name" in x for x in a + b)
        if named and len({x["name"] for x in a}) == len(a) and len({x["name"] for x in b}) == len(b):
            am = {x["name"]: x for x in a}
            bm = {x["name"]: x for x in b}
            out = []
            for n in sorted(set(am) | set(bm)):
                p = f"{_path}[{n}]"
                if n not in am or n not in bm:
                    out.append(p)
                else:
                    out.extend(json_diff(am[n], bm[n], ignore_keys=ignore, _path=p))
            return out
        if len(a) != len(b):
            return [_path]
        out = []
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            out.extend(json_diff(x, y, ignore_keys=ignore, _path=f"{_path}[{i}]"))
        return out
    return [] if a == b else [_path]


@dataclass(frozen=True)
class ArmPath:
    """What an ARM request path addresses."""

    path: str
    subscription: str
    resource_group: str | None
    type: str  # e.g. "Microsoft.Network/networkInterfaces", "Microsoft.Network/networkSecurityGroups/securityRules"
    name: str | None  # None for a collection
    is_collection: bool
    parent: str | None  # parent resource id of a nested child (same provider), else None


def parse_arm_path(path: str) -> ArmPath | None:
    """Parse an ARM resource or collection path; None if it is not one."""
    segs = [s for s in path.strip("/").split("/") if s]
    if len(segs) < 2 or segs[0].lower() != "subscriptions":
        return None
    sub = segs[1]
    rest = segs[2:]
    rg = None
    if rest and rest[0].lower() == "resourcegroups":
        if len(rest) == 1:
            return ArmPath(path, sub, None, "Microsoft.Resources/resourceGroups", None, True, None)
        rg = rest[1]
        if len(rest) == 2:
            return ArmPath(path, sub, rg, "Microsoft.Resources/resourceGroups", rg, False, None)
    provider_idx = [i for i, s in enumerate(segs) if s.lower() == "providers"]
    if not provider_idx:
        return None
    idx = provider_idx[-1]
    if idx + 2 >= len(segs):
        return None
    namespace = segs[idx + 1]
    tail = segs[idx + 2 :]
    rtype = namespace + "/" + "/".join(tail[0::2])
    is_collection = len(tail) % 2 == 1
    name = None if is_collection else tail[-1]
    parent = None
    if not is_collection and len(tail) > 2:
        parent = "/" + "/".join(segs[:-2])
    return ArmPath(path, sub, rg, rtype, name, is_collection, parent)


# Properties ARM computes itself: kept from the stored version when a PUT
# (which the SDKs send without read-only fields) leaves them out.
READ_ONLY = {
    "microsoft.network/networkinterfaces": {
        "virtualMachine",
        "privateEndpoint",
        "tapConfigurations",
        "macAddress",
        "primary",
        "vnetEncryptionSupported",
        "defaultOutboundConnectivityEnabled",
        "hostedWorkloads",
        "dscpConfiguration",
        "resourceGuid",
        "provisioningState",
    },
    "microsoft.network/networksecuritygroups": {
        "defaultSecurityRules",
        "networkInterfaces",
        "subnets",
        "flowLogs",
        "resourceGuid",
        "provisioningState",
    },
    "microsoft.compute/virtualmachines": {"vmId", "timeCreated", "instanceView", "provisioningState"},
    "*": {"provisioningState", "resourceGuid"},
}
READ_ONLY_CHILD = {
    "ipConfigurations": {"provisioningState", "privateLinkConnectionProperties"},
    "securityRules": {"provisioningState"},
    "defaultSecurityRules": {"provisioningState"},
}
READ_ONLY_DNS = {"appliedDnsServers", "internalFqdn", "internalDomainNameSuffix"}
# Child collections ARM keeps inside the parent's properties.
INLINE_CHILDREN = {
    "securityrules": "securityRules",
    "defaultsecurityrules": "defaultSecurityRules",
    "ipconfigurations": "ipConfigurations",
}

NIC = "microsoft.network/networkinterfaces"
NSG = "microsoft.network/networksecuritygroups"
VM = "microsoft.compute/virtualmachines"


def default_security_rules(nsg_id: str) -> list[dict]:
    def rule(name, priority, direction, access, src, dst, description):
        return {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "etag": "",
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "properties": {
                "provisioningState": "Succeeded",
                "description": description,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": src,
                "destinationAddressPrefix": dst,
                "access": access,
                "priority": priority,
                "direction": direction,
                "sourcePortRanges": [],
                "destinationPortRanges": [],
                "sourceAddressPrefixes": [],
                "destinationAddressPrefixes": [],
            },
        }

    return [
        rule(
            "AllowVnetInBound",
            65000,
            "Inbound",
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow inbound traffic from all VMs in VNET",
        ),
        rule(
            "AllowAzureLoadBalancerInBound",
            65001,
            "Inbound",
            "Allow",
            "AzureLoadBalancer",
            "*",
            "Allow inbound traffic from azure load balancer",
        ),
        rule("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*", "Deny all inbound traffic"),
        rule(
            "AllowVnetOutBound",
            65000,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow outbound traffic from all VMs to all VMs in VNET",
        ),
        rule(
            "AllowInternetOutBound",
            65001,
            "Outbound",
            "Allow",
            "*",
            "Internet",
            "Allow outbound traffic from all VMs to Internet",
        ),
        rule("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*", "Deny all outbound traffic"),
    ]


def deep_merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def ref(value: Any) -> Any:
    """ARM stores references to other resources as {"id": ...} only."""
    if isinstance(value, dict) and value.get("id"):
        return {"id": value["id"]}
    return value


def normalise(rid: str, body: dict, old: dict | None, ap: ArmPath) -> dict:
    """Build the stored document of a PUT: server-side fields added or kept."""
    rtype = (old or {}).get("type") or ap.type
    t = rtype.lower()
    doc: dict[str, Any] = {"id": (old or {}).get("id") or rid, "name": ap.name, "type": rtype}
    for k, v in body.items():
        if k not in ("id", "name", "type", "etag"):
            doc[k] = copy.deepcopy(v)
    if "location" not in doc and old and "location" in old:
        doc["location"] = old["location"]
    props = doc.get("properties")
    if not isinstance(props, dict):
        props = doc["properties"] = {}
    old_props = (old or {}).get("properties") or {}
    for k in READ_ONLY.get(t, READ_ONLY["*"]):
        if k not in props and k in old_props:
            props[k] = copy.deepcopy(old_props[k])
    new_etag = etag()
    doc["etag"] = new_etag
    props["provisioningState"] = "Succeeded"
    if t == NIC:
        for k in ("networkSecurityGroup", "virtualMachine", "privateEndpoint", "dscpConfiguration"):
            if props.get(k) is None:
                props.pop(k, None)
            else:
                props[k] = ref(props[k])
        dns = props.get("dnsSettings")
        if isinstance(dns, dict):
            for k in READ_ONLY_DNS:
                if k not in dns and k in (old_props.get("dnsSettings") or {}):
                    dns[k] = copy.deepcopy(old_props["dnsSettings"][k])
        for cfg in props.get("ipConfigurations") or []:
            cp = cfg.setdefault("properties", {})
            for k in ("subnet", "publicIPAddress"):
                if cp.get(k) is not None:
                    cp[k] = ref(cp[k])
    for child in ("ipConfigurations", "securityRules"):
        if child in props:
            normalise_children(doc["id"], child, props, old_props, new_etag, rtype)
    if t == NSG:
        props.setdefault("defaultSecurityRules", default_security_rules(doc["id"]))
        props.setdefault("resourceGuid", str(uuid.uuid4()))
        props.pop("networkInterfaces", None)  # computed on read
    return doc


def normalise_children(rid: str, child: str, props: dict, old_props: dict, child_etag: str, rtype: str) -> None:
    old_items = {str(i.get("name", "")).lower(): i for i in old_props.get(child) or [] if isinstance(i, dict)}
    items = []
    for item in props.get(child) or []:
        item = dict(item)
        name = item.get("name")
        item["id"] = f"{rid}/{child}/{name}"
        item["etag"] = child_etag
        item["type"] = f"{rtype}/{child}"
        ip = item.setdefault("properties", {})
        old_ip = (old_items.get(str(name).lower()) or {}).get("properties") or {}
        for k in READ_ONLY_CHILD.get(child, ()):
            if k not in ip and k in old_ip:
                ip[k] = copy.deepcopy(old_ip[k])
        ip["provisioningState"] = "Succeeded"
        items.append(item)
    props[child] = items
