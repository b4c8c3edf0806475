"""The generic alert schema for everything else (firewalls via a SIEM, custom detections).

Documented in docs/generic-alert.md; example: ``samples/generic-alert.json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from shared.errors import ValidationError
from shared.intake.common import (
    MAX_TACTICS,  # issue 12: list caps
    MAX_TITLE,
    clean_text,
    dedupe,
    entities_from,
    str_dict,
    subscription_ids,
    validation_error,
)
from shared.models import Alert, normalise_severity

_Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]


class GenericEntity(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: Literal[
        "host", "account", "servicePrincipal", "ip", "networkDevice", "process", "azureResource", "file", "url"
    ]
    name: str | None = Field(None, max_length=1024)
    address: str | None = Field(None, max_length=256)
    azureResourceId: str | None = Field(None, max_length=2048)
    upn: str | None = Field(None, max_length=512)
    objectId: str | None = Field(None, max_length=128)
    appId: str | None = Field(None, max_length=128)


class GenericAlert(BaseModel):
    """A generic alert with an explicit 1–10 score."""

    model_config = ConfigDict(extra="ignore")

    source: _Id
    id: _Id
    title: _Text
    score: StrictInt = Field(ge=1, le=10)
    observedAt: AwareDatetime
    description: str | None = Field(None, max_length=65536)
    severity: str | None = None
    tenantId: str | None = Field(None, max_length=128)
    subscriptionId: str | None = Field(None, max_length=128)
    tactics: list[str] = Field(default_factory=list, max_length=MAX_TACTICS)
    link: str | None = Field(None, max_length=2048)
    entities: list[GenericEntity] = Field(default_factory=list, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict)


def _entity_mapping(e: GenericEntity) -> dict[str, Any]:
    if e.kind == "account":
        return {"type": "account", "name": e.name, "userPrincipalName": e.upn, "aadUserId": e.objectId}
    if e.kind == "servicePrincipal":
        return {"type": "servicePrincipal", "name": e.name, "appId": e.appId, "objectId": e.objectId}
    if e.kind == "azureResource":
        return {"type": "azure-resource", "resourceId": e.azureResourceId}
    if e.kind == "host":
        return {"type": "host", "hostName": e.name, "azureID": e.azureResourceId}
    return {"type": e.kind, "name": e.name, "address": e.address, "url": e.name, "hostName": e.name}


def parse(payload: Any, received_at: datetime) -> Alert:
    """A generic alert → ``Alert``; raises ValidationError naming the field."""
    if not isinstance(payload, dict):
        raise ValidationError(
            "request body must be a JSON object", [{"field": "body", "message": "expected an object"}]
        )
    try:
        g = GenericAlert.model_validate(payload)
    except pydantic.ValidationError as exc:
        raise validation_error(exc) from None
    rids = [e.azureResourceId for e in g.entities if e.azureResourceId]
    subs = dedupe([*([g.subscriptionId.lower()] if g.subscriptionId else []), *subscription_ids(rids)])
    return Alert(
        source="generic",
        source_id=f"{g.source}:{g.id}",
        dedupe_keys=[f"generic:{g.source.lower()}:{g.id}"],
        title=clean_text(g.title, MAX_TITLE),
        description=clean_text(g.description),
        alert_type=clean_text(g.details.get("signature"), 256) if isinstance(g.details.get("signature"), str) else None,
        severity=normalise_severity(g.severity),
        explicit_score=g.score,
        tactics=[t for t in (clean_text(t, 64) for t in g.tactics) if t],
        entities=entities_from([_entity_mapping(e) for e in g.entities]),
        tenant_ids=[g.tenantId.lower()] if g.tenantId else [],
        subscription_ids=subs,
        resource_ids=rids,
        product=clean_text(g.source, 128),
        link=clean_text(g.link, 2000),
        observed_at=g.observedAt,
        extended_properties=str_dict(g.details),
    )
