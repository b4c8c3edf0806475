"""Rows of the Sentinel ``SecurityAlert`` and ``SecurityIncident`` tables (timer poll).

Rows are dicts of column name → value as ``azure-monitor-query`` returns them
(``samples/log-analytics-query-response.json`` is the wire shape).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.errors import ValidationError
from shared.intake.common import MAX_TITLE, clean_text, dedupe, entities_from, parse_time, str_dict, subscription_ids
from shared.intake.entity_shapes import named_entities
from shared.models import Alert, normalise_severity
from shared.source_judgement import SOURCE_CLASSIFICATION, SOURCE_STATUS


def _json(value: Any, default: Any) -> Any:
    if value in (None, ""):
        return default
    if isinstance(value, (list, dict)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError, RecursionError):
        return default


def _time(row: dict[str, Any], *names: str, fallback: datetime) -> datetime:
    for name in names:
        try:
            value = parse_time(row.get(name))
        except ValueError:
            value = None
        if value:
            return value
    return fallback


def _tactics(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(t) for t in value if t]
    return [t.strip() for t in str(value or "").split(",") if t.strip() and t.strip().lower() != "unknown"]


def _lifecycle(row: dict[str, Any]) -> dict[str, str]:
    """Status and classification columns, for the source's judgement (issue 13)."""
    out = {}
    for column, key in (("Status", SOURCE_STATUS), ("Classification", SOURCE_CLASSIFICATION)):
        value = clean_text(row.get(column), 64) if isinstance(row.get(column), str) else None
        if value:
            out[key] = value
    return out


def parse_alert_row(row: dict[str, Any], received_at: datetime) -> Alert:
    """One ``SecurityAlert`` row → ``Alert`` (keyed by SystemAlertId, like the pushed copy)."""
    system_id = row.get("SystemAlertId")
    if not system_id:
        raise ValidationError(
            "SecurityAlert row without SystemAlertId", [{"field": "SystemAlertId", "message": "missing"}]
        )
    rid = row.get("ResourceId") or None
    keys = [f"alert:{str(system_id).lower()}"]
    if row.get("VendorOriginalId"):
        keys.append(f"alert:{str(row['VendorOriginalId']).lower()}")
    return Alert(
        source="log-analytics",
        source_id=str(system_id),
        dedupe_keys=dedupe(keys),
        title=clean_text(row.get("DisplayName") or row.get("AlertName") or "Security alert", MAX_TITLE),
        description=clean_text(row.get("Description")),
        alert_type=clean_text(row.get("AlertType"), 256),
        severity=normalise_severity(row.get("AlertSeverity")),
        tactics=_tactics(row.get("Tactics")),
        entities=entities_from(
            _json(row.get("Entities"), []),
            [rid],
            named_entities(
                row.get("CompromisedEntity"), _json(row.get("ExtendedProperties"), {}), [rid] if rid else []
            ),
        ),
        subscription_ids=subscription_ids([rid]),
        resource_ids=[rid] if rid else [],
        # In Log Analytics, TenantId is the workspace id.
        workspace_id=str(row["TenantId"]).lower() if row.get("TenantId") else None,
        product=clean_text(row.get("ProductName"), 256),
        link=clean_text(row.get("AlertLink"), 2000),
        observed_at=_time(row, "TimeGenerated", "StartTime", fallback=received_at),
        extended_properties={**str_dict(_json(row.get("ExtendedProperties"), {})), **_lifecycle(row)},
    )


def parse_incident_row(row: dict[str, Any], received_at: datetime) -> Alert:
    """One ``SecurityIncident`` row → ``Alert`` (keyed like the playbook-pushed incident)."""
    name = row.get("IncidentName")
    if not name:
        raise ValidationError(
            "SecurityIncident row without IncidentName", [{"field": "IncidentName", "message": "missing"}]
        )
    alert_ids = [str(a).lower() for a in _json(row.get("AlertIds"), []) if a]
    extra = _json(row.get("AdditionalData"), {})
    tactics = extra.get("tactics", []) if isinstance(extra, dict) else []
    return Alert(
        source="log-analytics",
        source_id=str(name),
        dedupe_keys=dedupe([f"sentinel:{str(name).lower()}", *(f"alert:{a}" for a in alert_ids)]),
        title=clean_text(row.get("Title") or "Sentinel incident", MAX_TITLE),
        description=clean_text(row.get("Description")),
        severity=normalise_severity(row.get("Severity")),
        tactics=_tactics(tactics),
        workspace_id=str(row["TenantId"]).lower() if row.get("TenantId") else None,
        product="Microsoft Sentinel",
        link=clean_text(row.get("IncidentUrl"), 2000),
        observed_at=_time(row, "FirstActivityTime", "CreatedTime", "TimeGenerated", fallback=received_at),
        extended_properties={
            **({"incidentNumber": str(row.get("IncidentNumber"))} if row.get("IncidentNumber") else {}),
            **_lifecycle(row),
        },
    )
