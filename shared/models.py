"""The SOC's vocabulary: alerts, entities, incidents, priorities, evidence phases.

Models are pydantic so that what crosses a boundary (HTTP body, durable
activity input, table row) is validated and serialised the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel


class SocModel(BaseModel):
    """Base: camelCase on the wire, snake_case in code, unknown fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        """JSON-ready dict with camelCase keys (what APIs, tables and activities carry)."""
        return self.model_dump(mode="json", by_alias=True)


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def rank(self) -> int:
        """1 for P1 (most urgent) … 4 for P4."""
        return int(self.value[1])

    @property
    def label(self) -> str:
        return {"P1": "Critical", "P2": "High", "P3": "Medium", "P4": "Low"}[self.value]

    @property
    def partner_severity(self) -> str:
        """Severity as shown to partners (docs/spec/triage.md)."""
        return {"P1": "Critical", "P2": "Major", "P3": "Minor", "P4": "Minor"}[self.value]

    @classmethod
    def from_score(cls, score: int) -> Priority:
        """Map a 1–10 score to a priority (docs/spec/triage.md)."""
        if score >= 9:
            return cls.P1
        if score >= 7:
            return cls.P2
        if score >= 4:
            return cls.P3
        return cls.P4

    @staticmethod
    def highest(*priorities: Priority) -> Priority:
        return min(priorities, key=lambda p: p.rank)


class Phase(StrEnum):
    DETECT = "Detect"
    TRIAGE = "Triage"
    CONTAIN = "Contain"
    NOTIFY = "Notify"
    INVESTIGATE = "Investigate"
    RECOVER = "Recover"
    REVIEW = "Review"

    @property
    def criterion(self) -> str:
        """The SOC 2 criterion a step of this phase evidences."""
        if self in (Phase.DETECT, Phase.TRIAGE):
            return "CC7.3"
        if self in (Phase.RECOVER, Phase.REVIEW):
            return "CC7.5"
        return "CC7.4"


class ActorType(StrEnum):
    APP = "app"
    ANALYST = "analyst"
    PARTNER = "partner"


class EntityKind(StrEnum):
    HOST = "host"
    ACCOUNT = "account"
    SERVICE_PRINCIPAL = "servicePrincipal"
    IP = "ip"
    NETWORK_DEVICE = "networkDevice"
    PROCESS = "process"
    AZURE_RESOURCE = "azureResource"
    FILE = "file"
    URL = "url"
    # issue 13: the other Sentinel entity kinds a playbook receives, kept for the analyst.
    MAILBOX = "mailbox"
    DNS = "dns"
    REGISTRY = "registry"
    CLOUD_APPLICATION = "cloudApplication"
    OTHER = "other"


class Entity(SocModel):
    """Something an alert is about: a host, an account, an address …"""

    kind: EntityKind
    name: str | None = None
    azure_resource_id: str | None = None
    upn: str | None = None
    object_id: str | None = None
    tenant_id: str | None = None
    app_id: str | None = None
    address: str | None = None
    command_line: str | None = None

    @property
    def grouping_key(self) -> str | None:
        """Stable identity used to group alerts into incidents (None: never groups)."""
        k = self.kind
        if k == EntityKind.HOST or k == EntityKind.AZURE_RESOURCE:
            if self.azure_resource_id:
                return f"resource:{self.azure_resource_id.lower()}"
            return f"host:{self.name.lower()}" if self.name else None
        if k == EntityKind.ACCOUNT:
            if self.object_id:
                return f"account:{self.object_id.lower()}"
            return f"account:{self.upn.lower()}" if self.upn else None
        if k == EntityKind.SERVICE_PRINCIPAL:
            ident = self.object_id or self.app_id
            return f"sp:{ident.lower()}" if ident else None
        if k == EntityKind.IP:
            return f"ip:{self.address.lower()}" if self.address else None
        if k == EntityKind.NETWORK_DEVICE:
            return f"device:{self.name.lower()}" if self.name else None
        return None

    @property
    def display(self) -> str:
        return self.upn or self.name or self.address or self.azure_resource_id or self.object_id or self.kind.value

    def merge_key(self) -> str:
        """Identity for de-duplicating entities within an incident."""
        return self.grouping_key or f"{self.kind.value}:{self.display.lower()}"


SEVERITIES = ("Informational", "Low", "Medium", "High", "Critical")


def normalise_severity(value: str | None) -> str | None:
    """Canonical severity spelling, or None when absent/unknown."""
    if value is None:
        return None
    v = str(value).strip().lower()
    for s in SEVERITIES:
        if s.lower() == v:
            return s
    return {"info": "Informational", "informational": "Informational", "moderate": "Medium"}.get(v)


class Alert(SocModel):
    """One normalised detection, whatever path it came in on."""

    source: str  # defender | sentinel | generic | log-analytics
    source_id: str
    dedupe_keys: list[str]
    title: str
    description: str | None = None
    alert_type: str | None = None
    severity: str | None = None
    explicit_score: int | None = None
    tactics: list[str] = Field(default_factory=list)
    techniques: list[str] = Field(default_factory=list)
    entities: list[Entity] = Field(default_factory=list)
    tenant_ids: list[str] = Field(default_factory=list)
    subscription_ids: list[str] = Field(default_factory=list)
    workspace_id: str | None = None
    resource_ids: list[str] = Field(default_factory=list)
    product: str | None = None
    link: str | None = None
    observed_at: datetime
    extended_properties: dict[str, str] = Field(default_factory=dict)
    source_event: str | None = None  # e.g. Sentinel objectEventType

    @field_validator("observed_at")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    @property
    def primary_key(self) -> str:
        return self.dedupe_keys[0]


class RuleHit(SocModel):
    """A scoring rule that fired, and what it did to the score."""

    rule_id: str
    description: str
    effect: str  # e.g. "base 8 (severity High)", "+2", "floor 9"
    score_after: int


class TriageDecision(SocModel):
    """Score, priority and why (docs/spec/triage.md)."""

    score: int
    priority: Priority
    rules_fired: list[RuleHit]
    rules_version: str


class SlaClocks(SocModel):
    """The two service-commitment clocks plus the per-priority response SLA."""

    received_at: datetime
    triaged_at: datetime
    triage_due: datetime
    first_response_due: datetime
    response_sla_due: datetime
    first_response_at: datetime | None = None
    breaches: list[str] = Field(default_factory=list)


class AlertSummary(SocModel):
    """What an incident keeps of each of its alerts."""

    key: str
    source: str
    source_id: str
    title: str
    alert_type: str | None = None
    severity: str | None = None
    score: int
    priority: Priority
    observed_at: datetime
    received_at: datetime
    link: str | None = None


class IncidentStatus(StrEnum):
    OPEN = "open"
    CONTAINED = "contained"
    HELD = "held"
    ACKNOWLEDGED = "acknowledged"
    RELEASED = "released"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def is_open(self) -> bool:
        return self not in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)


class Incident(SocModel):
    """Current state of one incident (its history is the timeline)."""

    id: str
    partner_id: str | None
    partner_name: str | None = None
    title: str
    priority: Priority
    score: int
    status: IncidentStatus = IncidentStatus.OPEN
    created_at: datetime
    updated_at: datetime
    first_seen_at: datetime
    last_seen_at: datetime
    alerts: list[AlertSummary] = Field(default_factory=list)
    alert_count: int = 0
    entities: list[Entity] = Field(default_factory=list)
    triage: TriageDecision
    sla: SlaClocks
    tactics: list[str] = Field(default_factory=list)
    runbook_epoch: int = 1
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def runbook_instance_id(self) -> str:
        return runbook_instance_id(self.id, self.runbook_epoch)


def runbook_instance_id(incident_id: str, epoch: int) -> str:
    """Durable instance id of an incident's runbook run (stable, so a second start is harmless)."""
    return f"runbook-{incident_id}-{epoch}"


@dataclass
class RunbookStart:
    """Ask the trigger to start the incident's runbook orchestration (ingest, a priority raise, a Sentinel
    severity change all end in one)."""

    instance_id: str
    input: dict


def incident_id_for(primary_key: str, observed_at: datetime) -> str:
    """Deterministic incident id from the alert that opened it (so retries converge)."""
    digest = hashlib.sha256(primary_key.encode("utf-8")).hexdigest()[:12]
    return f"INC-{observed_at.astimezone(UTC):%Y%m%d}-{digest}"


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(dt: datetime) -> str:
    """UTC ISO 8601 with a Z, millisecond precision (evidence timestamps)."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
