"""Where an alert came from, as an address Azure understands: the ARM ids of Sentinel incidents and
Defender for Cloud alerts, and the refs an alert carries. Pure; a base module (intake, ingest and
write-back all read it, it imports none of them).

The intake parsers put the source's ARM id in ``Alert.extended_properties``
(``sentinelIncidentId``, ``defenderAlertId``, or ``defenderAlertIdMissing``
with the reason it could not be built); ``shared.ingest`` copies those refs
into the alert's evidence, so the incident's timeline is the one durable
record of what the write-back (``shared.writeback.targets``) writes to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

SENTINEL_REF = "sentinelIncidentId"
DEFENDER_REF = "defenderAlertId"
DEFENDER_MISSING = "defenderAlertIdMissing"
REF_KEYS = (SENTINEL_REF, DEFENDER_REF, DEFENDER_MISSING)

_SENTINEL_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.OperationalInsights/"
    r"workspaces/(?P<ws>[^/]+)/providers/Microsoft\.SecurityInsights/incidents/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
_DEFENDER_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/providers/Microsoft\.Security/"
    r"locations/(?P<loc>[^/]+)/alerts/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
_SUBSCRIPTION = re.compile(r"/subscriptions/([0-9a-fA-F-]{36})(?:/|$)", re.IGNORECASE)
_URI_LOCATION = re.compile(r"/location/([A-Za-z0-9]+)(?:/|$)")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_LOCATION = re.compile(r"^[A-Za-z0-9]{2,40}$")


def _clean_id(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = unquote(value.strip())
    return "/" + text.strip("/")


def sentinel_incident_id(
    resource_id: Any = None,
    *,
    subscription: str | None = None,
    resource_group: str | None = None,
    workspace: str | None = None,
    name: str | None = None,
) -> str | None:
    """The Sentinel incident's ARM id (``…/providers/Microsoft.SecurityInsights/incidents/{name}``),
    from the resource's ``id`` or else from the playbook's ``workspaceInfo`` and the incident's name.
    None when neither gives a well-formed id."""
    rid = _clean_id(resource_id)
    if rid and _SENTINEL_ID.match(rid):
        m = _SENTINEL_ID.match(rid)
        assert m is not None
        return (
            f"/subscriptions/{m['sub']}/resourceGroups/{m['rg']}/providers/Microsoft.OperationalInsights/"
            f"workspaces/{m['ws']}/providers/Microsoft.SecurityInsights/incidents/{m['name']}"
        )
    parts = (subscription, resource_group, workspace, name)
    if all(isinstance(p, str) and _NAME.match(p.strip()) for p in parts):
        sub, rg, ws, nm = (p.strip() for p in parts)  # type: ignore[union-attr]
        return (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.OperationalInsights/"
            f"workspaces/{ws}/providers/Microsoft.SecurityInsights/incidents/{nm}"
        )
    return None


def defender_alert_id(resource_id: Any) -> str | None:
    """A Defender for Cloud alert's ARM id (subscription- or resource-group-level), or None."""
    rid = _clean_id(resource_id)
    m = _DEFENDER_ID.match(rid) if rid else None
    if m is None:
        return None
    scope = f"/subscriptions/{m['sub']}" + (f"/resourceGroups/{m['rg']}" if m["rg"] else "")
    return f"{scope}/providers/Microsoft.Security/locations/{m['loc']}/alerts/{m['name']}"


def defender_refs_from_arm(alert_id: Any) -> dict[str, str]:
    """Refs of a Defender alert in the ARM/REST shape: its ``id``."""
    rid = defender_alert_id(alert_id)
    if rid:
        return {DEFENDER_REF: rid}
    return {DEFENDER_MISSING: "the alert's id is not a Microsoft.Security alert resource id"}


def defender_refs_from_connector(
    payload: Mapping[str, Any], system_alert_id: str, resource_ids: Iterable[str | None]
) -> dict[str, str]:
    """Refs of a Defender alert in the workflow-automation shape, which carries no ARM id: the
    subscription of ``AzureResourceId`` plus the alert's location (an explicit location field, or the
    ``/location/{region}`` segment of ``AlertUri``) give the subscription-level alert id."""
    low = {str(k).lower(): v for k, v in payload.items()}
    for key in ("id", "alertid", "alertresourceid"):
        rid = defender_alert_id(low.get(key))
        if rid:
            return {DEFENDER_REF: rid}
    subscription = next((m.group(1).lower() for r in resource_ids if r for m in [_SUBSCRIPTION.search(r)] if m), None)
    location = None
    for key in ("alertlocation", "asclocation", "location"):
        value = low.get(key)
        if isinstance(value, str) and _LOCATION.match(value.strip()):
            location = value.strip().lower()
            break
    if location is None and isinstance(low.get("alerturi"), str):
        m = _URI_LOCATION.search(low["alerturi"])
        location = m.group(1).lower() if m else None
    name = (system_alert_id or "").strip()
    if not subscription:
        return {DEFENDER_MISSING: "connector payload without an AzureResourceId subscription"}
    if not location:
        return {DEFENDER_MISSING: "connector payload without the alert's location: its state cannot be updated"}
    if not _NAME.match(name):
        return {DEFENDER_MISSING: "the alert's SystemAlertId is not a valid alert name"}
    return {
        DEFENDER_REF: f"/subscriptions/{subscription}/providers/Microsoft.Security/locations/{location}/alerts/{name}"
    }


def alert_refs(extended_properties: Mapping[str, str]) -> dict[str, str]:
    """The write-back refs an alert carries (what ``shared.ingest`` copies into its evidence)."""
    return {k: extended_properties[k] for k in REF_KEYS if extended_properties.get(k)}


def describe(resource_id: str) -> str:
    """Short, human name of a target for evidence summaries."""
    m = _SENTINEL_ID.match(resource_id)
    if m:
        return f"Sentinel incident {m['name']} (workspace {m['ws']})"
    m = _DEFENDER_ID.match(resource_id)
    if m:
        return f"Defender for Cloud alert {m['name']}"
    return resource_id


def owner_name(owner: Any) -> str | None:
    """Who a Sentinel ``owner`` object names (UPN, else email, else display name)."""
    if not isinstance(owner, Mapping):
        return None
    for key in ("userPrincipalName", "email", "assignedTo"):
        value = owner.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:320]
    return None
