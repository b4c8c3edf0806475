"""Microsoft Sentinel incidents: the playbook trigger payload and the bare incident resource."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.errors import ValidationError
from shared.intake.common import (  # issue 12: list caps
    MAX_ALERT_ID,
    MAX_ALERTS,
    MAX_LABELS,
    MAX_RAW_ENTITIES,
    MAX_TACTICS,
    MAX_TECHNIQUES,
    MAX_TITLE,
    clean_text,
    dedupe,
    entities_from,
    parse_time,
    subscription_ids,
    validation_error,
)
from shared.models import Alert, normalise_severity
from shared.source_judgement import SOURCE_CLASSIFICATION
from shared.sources import SENTINEL_REF, owner_name, sentinel_incident_id

_Str = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SentinelAlertProperties(_Lenient):
    systemAlertId: str | None = Field(None, max_length=MAX_ALERT_ID)
    alertDisplayName: str | None = None
    alertType: str | None = None
    severity: str | None = None
    tactics: list[str] = Field(default_factory=list, max_length=MAX_TACTICS)
    productName: str | None = None


class SentinelAlert(_Lenient):
    id: str | None = Field(None, max_length=1024)
    properties: SentinelAlertProperties = Field(default_factory=SentinelAlertProperties)


class SentinelAdditionalData(_Lenient):
    tactics: list[str] = Field(default_factory=list, max_length=MAX_TACTICS)
    techniques: list[str] = Field(default_factory=list, max_length=MAX_TECHNIQUES)
    alertProductNames: list[str] = Field(default_factory=list, max_length=MAX_TACTICS)


class SentinelIncidentProperties(_Lenient):
    title: _Str
    severity: _Str
    incidentNumber: int | None = None
    description: str | None = None
    status: str | None = None
    relatedEntities: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_RAW_ENTITIES)
    alerts: list[SentinelAlert] = Field(default_factory=list, max_length=MAX_ALERTS)
    additionalData: SentinelAdditionalData = Field(default_factory=SentinelAdditionalData)
    createdTimeUtc: str | None = None
    firstActivityTimeUtc: str | None = None
    incidentUrl: str | None = None
    labels: list[Any] = Field(default_factory=list, max_length=MAX_LABELS)
    owner: Any = None  # {objectId, email, assignedTo, userPrincipalName}; kept lenient
    lastModifiedTimeUtc: str | None = None


class SentinelIncidentResource(_Lenient):
    """The bare incident resource (ARM)."""

    id: str | None = None
    name: _Str
    etag: str | None = None
    properties: SentinelIncidentProperties


class SentinelWorkspaceInfo(_Lenient):
    SubscriptionId: str | None = None
    ResourceGroupName: str | None = None
    WorkspaceName: str | None = None


class SentinelIncidentTrigger(_Lenient):
    """What a playbook's incident trigger receives (``samples/sentinel-incident-trigger.json``)."""

    object: SentinelIncidentResource
    workspaceInfo: SentinelWorkspaceInfo = Field(default_factory=SentinelWorkspaceInfo)
    workspaceId: str | None = None
    objectEventType: str | None = None
    eventUniqueId: str | None = None


def parse(payload: Any, received_at: datetime) -> Alert:
    """A Sentinel incident (trigger or bare resource) → one ``Alert`` carrying all its alert ids."""
    if not isinstance(payload, dict):
        raise ValidationError(
            "request body must be a JSON object", [{"field": "body", "message": "expected an object"}]
        )
    try:
        if "object" in payload:
            trigger = SentinelIncidentTrigger.model_validate(payload)
            resource, prefix = trigger.object, "object."
        elif "properties" in payload:
            trigger = None
            resource, prefix = SentinelIncidentResource.model_validate(payload), ""
        elif "SystemAlertId" in payload:
            return _sentinel_alert(payload, received_at)
        else:
            raise ValidationError(
                "not a Sentinel incident",
                [
                    {
                        "field": "object",
                        "message": "expected the playbook trigger (object.properties), the incident resource (properties) or a Sentinel alert (SystemAlertId)",
                    }
                ],
            )
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None
    p = resource.properties
    severity = normalise_severity(p.severity)
    if severity is None:
        raise ValidationError(
            "request body failed validation",
            [{"field": f"{prefix}properties.severity", "message": "must be one of Informational, Low, Medium, High"}],
        )
    try:
        observed = parse_time(p.firstActivityTimeUtc or p.createdTimeUtc) or received_at
    except ValueError:
        raise ValidationError(
            "request body failed validation",
            [{"field": f"{prefix}properties.createdTimeUtc", "message": "must be an ISO 8601 date-time"}],
        ) from None
    alert_ids = dedupe([a.properties.systemAlertId.lower() for a in p.alerts if a.properties.systemAlertId])
    tactics = dedupe([*p.additionalData.tactics, *(t for a in p.alerts for t in a.properties.tactics)])
    entities = entities_from(p.relatedEntities)
    tenants = dedupe([e.tenant_id.lower() for e in entities if e.tenant_id])
    subs = [trigger.workspaceInfo.SubscriptionId.lower()] if trigger and trigger.workspaceInfo.SubscriptionId else []
    subs = dedupe([*subs, *subscription_ids([resource.id])])
    alert_types = dedupe([a.properties.alertType for a in p.alerts])
    return Alert(
        source="sentinel",
        source_id=resource.name,
        dedupe_keys=[f"sentinel:{resource.name.lower()}", *(f"alert:{a}" for a in alert_ids)],
        title=clean_text(p.title, MAX_TITLE),
        description=clean_text(p.description),
        alert_type=clean_text(",".join(t for t in alert_types if t), 256) or None,
        severity=severity,
        tactics=tactics[:30],
        techniques=p.additionalData.techniques[:50],
        entities=entities,
        tenant_ids=tenants,
        subscription_ids=subs,
        workspace_id=(trigger.workspaceId.lower() if trigger and trigger.workspaceId else None),
        product="Microsoft Sentinel",
        link=clean_text(p.incidentUrl, 2000),
        observed_at=observed,
        extended_properties={
            k: v
            for k, v in {
                "incidentNumber": str(p.incidentNumber) if p.incidentNumber is not None else None,
                "sentinelStatus": clean_text(p.status, 64),
                "alertProductNames": clean_text(", ".join(p.additionalData.alertProductNames), 500),
                # What the write-back (shared/writeback) needs: where to write, and what the incident showed.
                SENTINEL_REF: _incident_resource_id(resource, trigger),
                "sentinelEtag": clean_text(resource.etag, 200),
                "sentinelOwner": clean_text(owner_name(p.owner), 320),
                "sentinelLastModified": clean_text(p.lastModifiedTimeUtc, 64),
                # issue 13: the analyst's verdict (FalsePositive / BenignPositive …) for the source's judgement
                SOURCE_CLASSIFICATION: _classification(payload),
            }.items()
            if v
        },
        source_event=(trigger.objectEventType if trigger else None),
    )


def _classification(payload: dict[str, Any]) -> str | None:
    """``properties.classification`` of the incident (trigger or bare resource), read from the raw payload."""
    resource = payload.get("object") if isinstance(payload.get("object"), dict) else payload
    props = resource.get("properties") if isinstance(resource, dict) else None
    value = props.get("classification") if isinstance(props, dict) else None
    return clean_text(value, 64) if isinstance(value, str) else None


def _incident_resource_id(resource: SentinelIncidentResource, trigger: SentinelIncidentTrigger | None) -> str | None:
    """The incident's ARM id: its ``id``, else built from the playbook's ``workspaceInfo`` and its name."""
    info = trigger.workspaceInfo if trigger else SentinelWorkspaceInfo()
    return sentinel_incident_id(
        resource.id,
        subscription=info.SubscriptionId,
        resource_group=info.ResourceGroupName,
        workspace=info.WorkspaceName,
        name=resource.name,
    )


def _sentinel_alert(payload: dict[str, Any], received_at: datetime) -> Alert:
    """A Sentinel alert (the alert trigger's PascalCase body, as the SecurityAlert table has it) sent to this route.

    Contract audit: Sentinel automation can hand a playbook an alert rather than an incident. Its fields are those
    of the Defender workflow-automation shape, so that parser reads it; its ``alert:<SystemAlertId>`` key makes it
    the same incident as the Sentinel incident or Defender alert that carries it. It is not a Defender alert, so
    no Defender alert state is written back for it (the incident that carries it is written back as usual).
    """
    from shared.intake import defender
    from shared.sources import DEFENDER_MISSING, DEFENDER_REF

    alert = defender.parse(payload, received_at)
    extended = {k: v for k, v in alert.extended_properties.items() if k not in (DEFENDER_REF, DEFENDER_MISSING)}
    product = payload.get("ProductName")
    return alert.model_copy(
        update={
            "source": "sentinel",
            "product": clean_text(product, 256)
            if isinstance(product, str) and product.strip()
            else "Microsoft Sentinel",
            "extended_properties": extended,
        }
    )
