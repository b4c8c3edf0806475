"""Partner registry (docs/spec/notification.md): who an alert belongs to and whom to tell.

Loaded from ``PARTNERS_FILE`` (shape of ``samples/partners.json``) and
validated at load. Extensions to the sample shape are optional fields:
``workspaceIds`` on a partner, ``assetCriticality`` rules, and a top-level
``soc`` block with the SOC's own contacts (for alerts that match no partner).
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.errors import ConfigurationError
from shared.models import Alert

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _emails(values: list[str]) -> list[str]:
    for v in values:
        if not _EMAIL.match(v):
            raise ValueError(f"not an email address: {v!r}")
    return values


class EmergencyContact(_Config):
    name: str = Field(min_length=1)
    phone: str | None = None
    email: str | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v is not None and not _E164.match(v):
            raise ValueError("phone must be E.164, e.g. +15555550100")
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        return _emails([v])[0] if v is not None else v


class AssetCriticality(_Config):
    """Resource ids matching ``match`` (a glob, case-insensitive) are of this criticality."""

    match: str = Field(min_length=1)
    criticality: Literal["low", "medium", "high", "critical"]


# issue 16: a Key Vault secret name (1-127 letters, digits and dashes), never the webhook URL itself.
_SECRET_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


def _secret_name(value: str | None) -> str | None:
    """A ``teamsWebhookSecret``: the NAME of the Key Vault secret holding a Teams Workflows webhook URL.

    The value is never echoed in the error: if someone pasted the URL itself, it is a secret (its ``sig``
    signs every post), and the error goes to logs."""
    if value is None:
        return None
    if "://" in value or "/" in value or "?" in value:
        raise ValueError(
            "must be the NAME of a Key Vault secret holding the Teams webhook URL, not the URL itself: "
            "store the URL in the vault (KEY_VAULT_URL) and put the secret's name here"
        )
    if not _SECRET_NAME.match(value):
        raise ValueError("must be a Key Vault secret name: 1-127 letters, digits and dashes")
    return value


class Contacts(_Config):
    socAlertEmails: list[str] = Field(default_factory=list)
    emergencyContacts: list[EmergencyContact] = Field(default_factory=list)
    # issue 16: the Teams channel these contacts watch (optional), as a Key Vault secret name
    teamsWebhookSecret: str | None = None

    @field_validator("socAlertEmails")
    @classmethod
    def _check_emails(cls, v: list[str]) -> list[str]:
        return _emails(v)

    @field_validator("teamsWebhookSecret")
    @classmethod
    def _check_teams_secret(cls, v: str | None) -> str | None:
        return _secret_name(v)


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _guid(value: str, what: str) -> str:
    value = value.strip().lower()
    if not _GUID.match(value):
        raise ValueError(f"{what} must be a GUID, got {value!r}")
    return value


class Workspace(_Config):
    """A partner's Sentinel workspace (issue 11): where the poll, enrichment and write-back go."""

    subscriptionId: str
    resourceGroup: str = Field(min_length=1, max_length=90)
    workspaceName: str = Field(min_length=4, max_length=63)
    workspaceId: str

    @field_validator("subscriptionId")
    @classmethod
    def _sub(cls, v: str) -> str:
        return _guid(v, "subscriptionId")

    @field_validator("workspaceId")
    @classmethod
    def _ws(cls, v: str) -> str:
        return _guid(v, "workspaceId (the workspace's customer id)")

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscriptionId}/resourceGroups/{self.resourceGroup}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{self.workspaceName}"
        )


class Partner(Contacts):
    """A customer of the SOC, with its scopes, contacts and response policy."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    name: str = Field(min_length=1)
    tenantIds: list[str] = Field(default_factory=list)
    subscriptionIds: list[str] = Field(default_factory=list)
    workspaceIds: list[str] = Field(default_factory=list)
    # issue 11: the tenant Graph tokens are requested for (default: the first of tenantIds) and the
    # partner's Sentinel workspaces (their ids join workspaceIds, their subscriptions must be listed).
    tenantId: str | None = None
    workspaces: list[Workspace] = Field(default_factory=list)
    responseMode: Literal["enforce", "approve", "dry-run"] | None = None
    protectedIdentities: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    assetCriticality: list[AssetCriticality] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r}") from None
        return v

    @field_validator("tenantIds", "subscriptionIds", "workspaceIds", "protectedIdentities")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [x.strip().lower() for x in v]

    @field_validator("tenantId")
    @classmethod
    def _tenant(cls, v: str | None) -> str | None:
        return None if v is None else _guid(v, "tenantId")

    @model_validator(mode="after")
    def _tenancy(self) -> Partner:
        if self.tenantId is None and self.tenantIds:
            self.tenantId = self.tenantIds[0]
        if self.tenantId and self.tenantId not in self.tenantIds:
            self.tenantIds.append(self.tenantId)
        for i, ws in enumerate(self.workspaces):
            if ws.subscriptionId not in self.subscriptionIds:
                raise ValueError(
                    f"workspaces[{i}] ({ws.workspaceName}) is in subscription {ws.subscriptionId}, which is not in "
                    "subscriptionIds: list it there (it must be delegated to the SOC like the others)"
                )
            if ws.workspaceId not in self.workspaceIds:
                self.workspaceIds.append(ws.workspaceId)
        return self

    def owns_subscription(self, subscription_id: str | None) -> bool:
        """The subscription is one the app may change for this partner (issue 11, ownership guard)."""
        return subscription_id is not None and subscription_id.strip().lower() in self.subscriptionIds

    def is_protected(self, *identifiers: str | None) -> bool:
        """True if any identifier (UPN, object id, app id) is a protected identity."""
        return any(i and i.lower() in self.protectedIdentities for i in identifiers)

    def criticality_of(self, resource_id: str) -> str | None:
        rid = resource_id.lower()
        for rule in self.assetCriticality:
            if fnmatch.fnmatchcase(rid, rule.match.lower()):
                return rule.criticality
        return None


class SocContacts(Contacts):
    """The SOC's own contacts: used for alerts that match no partner."""

    name: str = "SOC"
    timezone: str = "UTC"
    protectedIdentities: list[str] = Field(default_factory=list)

    @field_validator("protectedIdentities")
    @classmethod
    def _lower(cls, v: list[str]) -> list[str]:
        return [x.strip().lower() for x in v]


class PartnerRegistryFile(_Config):
    partners: list[Partner]
    soc: SocContacts = Field(default_factory=SocContacts)

    @model_validator(mode="after")
    def _unique(self) -> PartnerRegistryFile:
        seen: dict[str, str] = {}
        for p in self.partners:
            if p.id in seen:
                raise ValueError(f"duplicate partner id {p.id!r}")
            seen[p.id] = p.id
            for scope in (*p.tenantIds, *p.subscriptionIds, *p.workspaceIds):
                owner = seen.get("scope:" + scope)
                if owner and owner != p.id:
                    raise ValueError(f"{scope} belongs to both {owner!r} and {p.id!r}")
                seen["scope:" + scope] = p.id
        return self


class PartnerRegistry:
    """Resolves alerts to partners (subscription, then workspace, then tenant)."""

    def __init__(self, data: PartnerRegistryFile):
        self.partners = data.partners
        self.soc = data.soc
        self._by_id = {p.id: p for p in data.partners}
        self._by_sub = {s: p for p in data.partners for s in p.subscriptionIds}
        self._by_ws = {w: p for p in data.partners for w in p.workspaceIds}
        self._by_tenant = {t: p for p in data.partners for t in p.tenantIds}

    @classmethod
    def load(cls, path: str | Path) -> PartnerRegistry:
        """Load and validate a registry file; ConfigurationError says which field is wrong."""
        return cls(_load_json_model(path, PartnerRegistryFile, "PARTNERS_FILE"))

    def get(self, partner_id: str | None) -> Partner | None:
        return self._by_id.get(partner_id) if partner_id else None

    def owner_of_subscription(self, subscription_id: str | None) -> Partner | None:
        """The partner whose ``subscriptionIds`` list the subscription (issue 11: the target's owner)."""
        return self._by_sub.get(subscription_id.strip().lower()) if subscription_id else None

    def resolve(self, alert: Alert) -> tuple[Partner | None, str]:
        """(partner or None, how it was matched) — an unmatched alert is never dropped."""
        for sub in alert.subscription_ids:
            if sub in self._by_sub:
                return self._by_sub[sub], f"subscription {sub}"
        if alert.workspace_id and alert.workspace_id in self._by_ws:
            return self._by_ws[alert.workspace_id], f"workspace {alert.workspace_id}"
        for tenant in alert.tenant_ids:
            if tenant in self._by_tenant:
                return self._by_tenant[tenant], f"tenant {tenant}"
        return None, "no partner matched: routed to the SOC's own contacts"


def _load_json_model(path: str | Path, model: type[BaseModel], setting: str):
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"{setting}: file not found: {p}") from None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{setting}: {p} is not valid JSON ({exc})") from None
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(x) for x in e['loc']) or '(root)'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"{setting}: {p} is invalid: {problems}") from None


load_json_model = _load_json_model
