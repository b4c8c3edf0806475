"""Helpers shared by the per-source parsers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pydantic

from shared.errors import ValidationError
from shared.intake.entity_shapes import resource_entity, walk_entities
from shared.models import Entity, EntityKind

# Table Storage caps a string property at 64 KiB; free text is cut well below it.
MAX_TITLE = 512
MAX_TEXT = 4000
MAX_ENTITIES = 100
# issue 12: list sizes a sender may put in one alert (a 1 MiB body of 123k tactics used to stall the
# worker for a minute). Sentinel keeps at most 150 alerts per incident; MITRE ATT&CK has 14 tactics.
MAX_ALERTS = 150
MAX_TACTICS = 50
MAX_TECHNIQUES = 200
MAX_RAW_ENTITIES = 500
MAX_RESOURCE_IDENTIFIERS = 50
MAX_LABELS = 100
MAX_ALERT_ID = 256
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SUBSCRIPTION = re.compile(r"/subscriptions/([0-9a-fA-F-]{36})", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def clean_text(value: Any, limit: int = MAX_TEXT) -> str | None:
    """Text safe to store and show: control characters dropped, length capped."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = _CONTROL.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_guid(value: str | None) -> bool:
    return value is not None and bool(_GUID.match(value))


def subscription_ids(resource_ids: Iterable[str | None]) -> list[str]:
    """Subscription ids named in ARM resource ids, lower-cased, in first-seen order."""
    seen: list[str] = []
    for rid in resource_ids:
        if not rid:
            continue
        m = _SUBSCRIPTION.search(rid)
        if m and m.group(1).lower() not in seen:
            seen.append(m.group(1).lower())
    return seen


def dedupe(values: Iterable[str | None]) -> list[str]:
    """Non-empty values in first-seen order; linear (a dict keeps the order, issue 12)."""
    return list(dict.fromkeys(v for v in values if v))


def lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in obj.items()}


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 → aware UTC datetime (7-digit fractions, as Defender sends, accepted)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        text = str(value).strip()
        m = re.match(r"^(.*T\d{2}:\d{2}:\d{2})\.(\d+)(Z|[+-]\d{2}:?\d{2})?$", text)
        if m:
            text = f"{m.group(1)}.{m.group(2)[:6]}{m.group(3) or ''}"
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def str_dict(value: Any) -> dict[str, str]:
    """Extended properties as a flat string map (values capped)."""
    if not isinstance(value, dict):
        return {}
    return {clean_text(k, 200) or "": clean_text(v, 2000) or "" for k, v in list(value.items())[:100]}


def validation_error(exc: pydantic.ValidationError, prefix: str = "") -> ValidationError:
    """A pydantic error as our 400: each detail names the field, never echoes the input."""
    details = []
    for err in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = ".".join(str(p) for p in err.get("loc", ()))
        details.append(
            {"field": f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body", "message": err.get("msg", "invalid")}
        )
    return ValidationError("request body failed validation", details)


def entity_from_mapping(raw: dict[str, Any]) -> Entity | None:
    """An entity in any of the Microsoft shapes (Defender ARM, connector, Sentinel, SecurityAlert).

    Keys are matched case-insensitively; ``$ref`` placeholders are skipped.
    """
    if not isinstance(raw, dict):
        return None
    d = lower_keys(raw)
    if "$ref" in d and len(d) == 1:
        return None
    props = d.get("properties")
    if isinstance(props, dict):  # Sentinel relatedEntities: kind + properties
        kind = str(d.get("kind") or props.get("kind") or "")
        d = {**lower_keys(props), "type": kind}
    kind = str(d.get("type") or d.get("kind") or "").lower()

    def text(key: str) -> str | None:
        return clean_text(d.get(key), 1000) if d.get(key) not in (None, "") else None

    if kind in ("host", "machine", "vm"):
        rid = text("azureid") or text("resourceid")
        return Entity(
            kind=EntityKind.HOST, name=text("hostname") or text("netbiosname") or text("name"), azure_resource_id=rid
        )
    if kind == "account":
        name = text("accountname") or text("name")
        suffix = text("upnsuffix")
        upn = text("userprincipalname") or (f"{name}@{suffix}" if name and suffix else None)
        return Entity(
            kind=EntityKind.ACCOUNT,
            name=name,
            upn=upn,
            object_id=text("aaduserid") or text("objectid"),
            tenant_id=text("aadtenantid"),
        )
    if kind in ("ip", "ipaddress"):
        return Entity(kind=EntityKind.IP, address=text("address"))
    if kind in ("azure-resource", "azureresource"):
        rid = text("resourceid") or text("azureid")
        is_vm = bool(rid and "/microsoft.compute/virtualmachines/" in rid.lower())
        return Entity(
            kind=EntityKind.HOST if is_vm else EntityKind.AZURE_RESOURCE,
            azure_resource_id=rid,
            name=rid.rsplit("/", 1)[-1] if rid else None,
        )
    if kind in ("cloud-application", "cloudapplication") and not (text("serviceprincipalobjectid") or text("objectid")):
        # A SaaS app Defender for Cloud Apps names (Office 365, …): not a principal of ours to disable.
        return Entity(
            kind=EntityKind.CLOUD_APPLICATION,
            name=text("appname") or text("name") or text("friendlyname"),
            app_id=text("appid") or text("applicationid"),
        )
    if kind in ("serviceprincipal", "service-principal", "cloud-application", "cloudapplication"):
        return Entity(
            kind=EntityKind.SERVICE_PRINCIPAL,
            name=text("appname") or text("name") or text("friendlyname"),
            app_id=text("appid") or text("applicationid"),
            object_id=text("serviceprincipalobjectid") or text("objectid"),
        )
    if kind == "process":
        return Entity(kind=EntityKind.PROCESS, name=text("processid"), command_line=text("commandline"))
    if kind == "file":
        return Entity(kind=EntityKind.FILE, name=text("name") or text("filename"))
    if kind == "url":
        return Entity(kind=EntityKind.URL, name=text("url"))
    if kind in ("networkdevice", "network-device", "firewall"):
        return Entity(kind=EntityKind.NETWORK_DEVICE, name=text("name") or text("hostname"), address=text("address"))
    return _other_kind(kind, text)


def _other_kind(kind: str, text: Any) -> Entity | None:
    """The remaining Sentinel / Defender entity kinds (issue 13): parsed where we can, kept otherwise."""
    k = kind.replace("-", "").replace("_", "")
    if k == "mailbox":
        address = text("mailboxprimaryaddress") or text("upn")
        return Entity(kind=EntityKind.MAILBOX, name=text("displayname") or address, upn=address)
    if k in ("dns", "dnsresolution"):
        return Entity(kind=EntityKind.DNS, name=text("domainname") or text("dnsname") or text("name"))
    if k in ("registrykey", "registryvalue", "registry"):
        key = "\\".join(x for x in (text("hive"), text("key")) if x)
        value = text("valuename") or text("name")
        return Entity(kind=EntityKind.REGISTRY, name=(f"{key}\\{value}" if key and value else key or value))
    if k in ("filehash", "malware", "mailmessage", "mailcluster", "submissionmail", "securitygroup", "iotdevice"):
        name = (
            text("hashvalue")
            or text("malwarename")
            or text("subject")
            or text("friendlyname")
            or text("displayname")
            or text("name")
        )
        return Entity(kind=EntityKind.OTHER, name=f"{kind}: {name}" if name else kind) if kind else None
    if kind and (name := text("friendlyname") or text("name")):
        return Entity(kind=EntityKind.OTHER, name=f"{kind}: {name}")
    return None


def entities_from(
    raw_list: Any,
    extra_resource_ids: Iterable[str | None] = (),
    named: Iterable[Entity] = (),
) -> list[Entity]:
    """Entities from a list of raw mappings (nested ``$id`` definitions included), de-duplicated; resource
    ids added as hosts (VMs) or ``azureResource`` entities; ``named`` (from ``CompromisedEntity`` /
    ``ExtendedProperties``, ``entity_shapes.named_entities``) added last."""
    entities: list[Entity] = []
    seen: set[str] = set()

    def add(entity: Entity | None) -> None:
        if entity is None or entity.merge_key() in seen:
            return
        seen.add(entity.merge_key())
        entities.append(entity)

    for raw in walk_entities(raw_list):
        add(entity_from_mapping(raw))
    for rid in extra_resource_ids:
        if rid and rid.startswith("/"):
            add(resource_entity(clean_text(rid, 1000) or rid))
    for entity in named:
        add(entity)
    # A host seen both by name and by resource id is one host: keep the resource-id form.
    by_name = {e.name.lower(): e for e in entities if e.kind == EntityKind.HOST and e.azure_resource_id and e.name}
    entities = [
        e
        for e in entities
        if not (e.kind == EntityKind.HOST and not e.azure_resource_id and e.name and e.name.lower() in by_name)
    ]
    return entities[:MAX_ENTITIES]
