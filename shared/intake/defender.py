"""Microsoft Defender for Cloud security alerts, in both shapes they arrive in.

- ARM/REST shape (``id``, ``name``, ``properties.{...}``): continuous export
  and the REST API.
- Workflow-automation connector shape (PascalCase at top level).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

from shared.errors import ValidationError
from shared.intake.common import (  # issue 12: list caps
    MAX_ALERT_ID,
    MAX_RAW_ENTITIES,
    MAX_RESOURCE_IDENTIFIERS,
    MAX_TITLE,
    clean_text,
    dedupe,
    entities_from,
    parse_time,
    str_dict,
    subscription_ids,
    validation_error,
)
from shared.intake.entity_shapes import named_entities
from shared.models import Alert, normalise_severity
from shared.source_judgement import SOURCE_STATUS
from shared.sources import defender_refs_from_arm, defender_refs_from_connector

_Str = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class DefenderArmProperties(_Lenient):
    alertDisplayName: _Str
    alertType: _Str | None = None
    severity: _Str
    systemAlertId: _Str | None = Field(None, max_length=MAX_ALERT_ID)
    compromisedEntity: str | None = None
    intent: str | None = None
    description: str | None = None
    entities: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RAW_ENTITIES)
    resourceIdentifiers: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RESOURCE_IDENTIFIERS)
    timeGeneratedUtc: str | None = None
    startTimeUtc: str | None = None
    extendedProperties: dict[str, Any] = Field(default_factory=dict)
    productName: str | None = None
    alertUri: str | None = None
    status: str | None = None


class DefenderArmAlert(_Lenient):
    """The ARM/REST shape (``samples/defender-alert-arm.json``)."""

    id: str | None = None
    name: str | None = None
    properties: DefenderArmProperties


class DefenderConnectorAlert(_Lenient):
    """The workflow-automation connector shape (``samples/defender-alert-connector.json``)."""

    SystemAlertId: _Str = Field(max_length=MAX_ALERT_ID)
    AlertDisplayName: _Str
    AlertType: _Str | None = None
    Severity: _Str
    CompromisedEntity: str | None = None
    AzureResourceId: str | None = None
    Description: str | None = None
    Intent: str | None = None
    Entities: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RAW_ENTITIES)
    ExtendedProperties: dict[str, Any] = Field(default_factory=dict)
    ResourceIdentifiers: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RESOURCE_IDENTIFIERS)
    TimeGenerated: str | None = None
    StartTimeUtc: str | None = None
    ProductName: str | None = None
    AlertUri: str | None = None
    # The same PascalCase alert as a Sentinel alert trigger or the SecurityAlert table gives it (contract audit):
    # tactics, the workspace, and Entities / ExtendedProperties / ResourceIdentifiers as JSON text.
    Tactics: str | list[str] | None = None
    WorkspaceId: str | None = Field(None, max_length=128)
    WorkspaceSubscriptionId: str | None = Field(None, max_length=128)

    @field_validator("Entities", "ExtendedProperties", "ResourceIdentifiers", mode="before")
    @classmethod
    def _json_text(cls, value: Any, info: ValidationInfo) -> Any:
        """A column the SecurityAlert table stores as JSON text is read as the JSON it holds."""
        if isinstance(value, str):
            if not value.strip():
                return {} if info.field_name == "ExtendedProperties" else []
            try:
                return json.loads(value)
            except ValueError:
                return value  # reported by the field's own type check, naming the field
        return value


def _tactics(value: str | list[str] | None) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    return [t.strip() for t in items if isinstance(t, str) and t.strip() and t.strip().lower() != "unknown"][:30]


def _severity(value: str, field: str) -> str:
    sev = normalise_severity(value)
    if sev is None:
        raise ValidationError(
            "request body failed validation",
            [{"field": field, "message": "must be one of Informational, Low, Medium, High"}],
        )
    return sev


def _time(value: str | None, field: str, fallback: datetime) -> datetime:
    try:
        return parse_time(value) or fallback
    except ValueError:
        raise ValidationError(
            "request body failed validation", [{"field": field, "message": "must be an ISO 8601 date-time"}]
        ) from None


def _intent_tactics(intent: str | None) -> list[str]:
    if not intent:
        return []
    return [t.strip() for t in str(intent).replace(";", ",").split(",") if t.strip() and t.strip().lower() != "unknown"]


def _identifiers(items: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(resource ids, tenant ids) from resourceIdentifiers in either casing."""
    rids, tenants = [], []
    for item in items:
        if not isinstance(item, dict):
            continue
        low = {str(k).lower(): v for k, v in item.items()}
        # issue 13: published samples use azureResourceId, AzureResourceId and resourceId alike.
        for k in ("azureresourceid", "resourceid"):
            if isinstance(low.get(k), str) and low[k].startswith("/"):
                rids.append(low[k])
        for k in ("azureresourcetenantid", "aadtenantid"):
            if isinstance(low.get(k), str):
                tenants.append(low[k].lower())
    return rids, tenants


def _status(value: Any) -> dict[str, str]:
    """The alert's state at Defender (Active / InProgress / Dismissed / Resolved), for the source's judgement."""
    text = clean_text(value, 64) if isinstance(value, str) else None
    return {SOURCE_STATUS: text} if text else {}


def parse(payload: Any, received_at: datetime) -> Alert:
    """A Defender for Cloud alert (either shape) → ``Alert``; raises ValidationError."""
    if not isinstance(payload, dict):
        raise ValidationError(
            "request body must be a JSON object", [{"field": "body", "message": "expected an object"}]
        )
    if isinstance(payload.get("properties"), dict):
        try:
            arm = DefenderArmAlert.model_validate(payload)
        except pydantic.ValidationError as exc:
            raise validation_error(exc) from None
        p = arm.properties
        system_id = p.systemAlertId or arm.name
        if not system_id:
            raise ValidationError(
                "request body failed validation", [{"field": "properties.systemAlertId", "message": "Field required"}]
            )
        rids, tenants = _identifiers(p.resourceIdentifiers)
        if arm.id and "/providers/microsoft.security/" in arm.id.lower():
            scope_rids = [arm.id]
        else:
            scope_rids = []
        observed = _time(p.timeGeneratedUtc or p.startTimeUtc, "properties.timeGeneratedUtc", received_at)
        return Alert(
            source="defender",
            source_id=system_id,
            dedupe_keys=[f"alert:{system_id.lower()}"],
            title=clean_text(p.alertDisplayName, MAX_TITLE),
            description=clean_text(p.description),
            alert_type=clean_text(p.alertType, 256),
            severity=_severity(p.severity, "properties.severity"),
            tactics=_intent_tactics(p.intent),
            entities=entities_from(p.entities, rids, named_entities(p.compromisedEntity, p.extendedProperties, rids)),
            tenant_ids=dedupe(tenants),
            subscription_ids=subscription_ids([*rids, *scope_rids]),
            resource_ids=dedupe(rids),
            product=clean_text(p.productName, 256) or "Microsoft Defender for Cloud",
            link=clean_text(p.alertUri, 2000),
            observed_at=observed,
            # + the alert's ARM id, for the write-back of its state (shared/writeback)
            extended_properties={
                **str_dict(p.extendedProperties),
                **defender_refs_from_arm(arm.id),
                **_status(p.status),
            },
        )
    if "SystemAlertId" in payload or "AlertDisplayName" in payload:
        try:
            c = DefenderConnectorAlert.model_validate(payload)
        except pydantic.ValidationError as exc:
            raise validation_error(exc) from None
        rids, tenants = _identifiers(c.ResourceIdentifiers)
        rids = dedupe([c.AzureResourceId, *rids])
        observed = _time(c.TimeGenerated or c.StartTimeUtc, "TimeGenerated", received_at)
        return Alert(
            source="defender",
            source_id=c.SystemAlertId,
            dedupe_keys=[f"alert:{c.SystemAlertId.lower()}"],
            title=clean_text(c.AlertDisplayName, MAX_TITLE),
            description=clean_text(c.Description),
            alert_type=clean_text(c.AlertType, 256),
            severity=_severity(c.Severity, "Severity"),
            tactics=dedupe([*_intent_tactics(c.Intent), *_tactics(c.Tactics)]),
            entities=entities_from(c.Entities, rids, named_entities(c.CompromisedEntity, c.ExtendedProperties, rids)),
            tenant_ids=dedupe(tenants),
            subscription_ids=dedupe(
                [
                    *subscription_ids(rids),
                    *([c.WorkspaceSubscriptionId.strip().lower()] if c.WorkspaceSubscriptionId else []),
                ]
            ),
            workspace_id=c.WorkspaceId.strip().lower() if c.WorkspaceId else None,
            resource_ids=rids,
            product=clean_text(c.ProductName, 256) or "Microsoft Defender for Cloud",
            link=clean_text(c.AlertUri, 2000),
            observed_at=observed,
            # + the alert's ARM id when the payload allows building it (shared/writeback)
            extended_properties={
                **str_dict(c.ExtendedProperties),
                **defender_refs_from_connector(payload, c.SystemAlertId, rids),
                **_status(payload.get("Status")),
            },
        )
    raise ValidationError(
        "not a Defender for Cloud alert",
        [
            {
                "field": "body",
                "message": "expected the ARM shape (properties.alertDisplayName, …) "
                "or the workflow-automation shape (SystemAlertId, AlertDisplayName, …)",
            }
        ],
    )
