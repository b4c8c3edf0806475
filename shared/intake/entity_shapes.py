"""Entities from every published alert shape (issue 13), beyond the entity lists themselves.

Microsoft's payloads name what an alert is about in several places, and the lists are not always the
richest one: Defender for Cloud's connector shape nests entities as ``$id`` definitions inside other
entities (a process's ``ImageFile``, a host's ``Account``) with ``$ref`` pointers elsewhere; many alerts
carry only ``CompromisedEntity`` and host / account names in ``ExtendedProperties``; resource ids of
AKS clusters, storage accounts, Key Vaults and App Service sites are not virtual machines. An incident
with no entities leaves the analyst nothing to pivot on and a P1 nothing to contain, so every shape is
read here; resources that are not VMs are kept as ``azureResource`` entities (shown and enriched, never
contained: containment acts on VMs and accounts only).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from shared.models import Entity, EntityKind

_VM = "/microsoft.compute/virtualmachines/"
_UPN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# ExtendedProperties keys (lower-cased, spaces removed) naming the host or the account involved, as
# published in Defender for Cloud's alert reference and sample alerts.
HOST_KEYS = (
    "compromisedhost",
    "hostname",
    "machinename",
    "computername",
    "computer",
    "affectedhost",
    "vmname",
    "hostnames",
)
ACCOUNT_KEYS = (
    "username",
    "useraccount",
    "accountname",
    "account",
    "suspiciousaccount",
    "compromisedaccount",
    "userprincipalname",
    "upn",
    "user",
    "accountsused",
)
_NOT_A_NAME = {"", "n/a", "na", "none", "null", "unknown", "-", "[]", "{}"}


def walk_entities(raw_list: Any) -> Iterator[dict[str, Any]]:
    """Every entity mapping in a list, including entities defined inside other entities (``$id``).

    Pure ``$ref`` pointers are skipped (their target is defined elsewhere in the same payload); each
    ``$id`` is yielded once, at its first definition.
    """
    seen_ids: set[str] = set()
    stack: list[Any] = list(reversed(raw_list)) if isinstance(raw_list, list) else []
    budget = 2000  # a hostile payload cannot make this walk unbounded
    while stack and budget:
        budget -= 1
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
            continue
        if not isinstance(item, dict):
            continue
        keys = {str(k).lower(): k for k in item}
        if "$ref" in keys and len(keys) == 1:
            continue
        ident = item.get(keys["$id"]) if "$id" in keys else None
        if ident is not None:
            if str(ident) in seen_ids:
                continue
            seen_ids.add(str(ident))
        if "type" in keys or "kind" in keys:
            yield item
        for key, value in item.items():
            if str(key).lower() != "properties" and isinstance(value, (dict, list)):
                stack.append(value)


def resource_entity(resource_id: str) -> Entity:
    """An Azure resource id as an entity: a VM is a host (containable); anything else an azureResource."""
    name = resource_id.rstrip("/").rsplit("/", 1)[-1] or resource_id
    if _VM in resource_id.lower():
        return Entity(kind=EntityKind.HOST, name=name, azure_resource_id=resource_id)
    return Entity(kind=EntityKind.AZURE_RESOURCE, name=name, azure_resource_id=resource_id)


def _clean_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().strip('"').strip()
    if text.lower() in _NOT_A_NAME or len(text) > 256:
        return None
    return text


def _account(name: str) -> Entity:
    if _UPN.match(name):
        return Entity(kind=EntityKind.ACCOUNT, name=name.split("@", 1)[0], upn=name)
    return Entity(kind=EntityKind.ACCOUNT, name=name.rsplit("\\", 1)[-1])


def named_entities(compromised: Any, extended: dict[str, Any] | None, resource_ids: Iterable[str]) -> list[Entity]:
    """Host and account names from ``CompromisedEntity`` and ``ExtendedProperties``.

    ``CompromisedEntity`` is the resource's name for resource alerts (already an entity when its resource
    id is known), a UPN for identity alerts, a machine name otherwise.
    """
    out: list[Entity] = []
    resource_names = {r.rstrip("/").rsplit("/", 1)[-1].lower() for r in resource_ids if r}
    name = _clean_name(compromised)
    if name and name.lower() not in resource_names:
        out.append(_account(name) if _UPN.match(name) else Entity(kind=EntityKind.HOST, name=name))
    for key, value in (extended or {}).items():
        k = str(key).lower().replace(" ", "").replace("_", "")
        values = re.split(r"[,;]", value) if isinstance(value, str) else []
        for v in values[:5]:
            text = _clean_name(v)
            if not text:
                continue
            if k in HOST_KEYS and text.lower() not in resource_names:
                out.append(Entity(kind=EntityKind.HOST, name=text))
            elif k in ACCOUNT_KEYS:
                out.append(_account(text))
    return out
