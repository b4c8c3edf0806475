"""App settings (docs/spec/settings.md), declared once so code, docs and Bicep agree.

Every setting the code reads is declared in ``SETTINGS``; ``Settings.from_env``
is the only place that reads the environment. The infrastructure test checks
that ``infra/main.bicep`` sets exactly these names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from shared.errors import ConfigurationError

RESPONSE_MODES = ("enforce", "approve", "dry-run")
P2_CALL_RULES = ("never", "always", "out-of-hours")
WRITEBACK_KINDS = ("sentinel", "defender")


@dataclass(frozen=True)
class SettingSpec:
    """One app setting: its name, default and meaning."""

    name: str
    default: str | None
    description: str
    # Settings the Functions host reads itself (not this code) are still declared
    # so the Bicep check knows them.
    read_by_host: bool = False


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "AzureWebJobsStorage",
        None,
        "Functions host and Durable task hub storage (connection string locally; identity-based `AzureWebJobsStorage__*` in Azure).",
        read_by_host=True,
    ),
    SettingSpec("EvidenceStorage", None, "Evidence tables: a connection string (local, Azurite)."),
    SettingSpec(
        "EvidenceStorage__tableServiceUri",
        None,
        "Evidence tables: the table service URI, reached with the managed identity (Azure).",
    ),
    SettingSpec(
        "ARM_ENDPOINT", "https://management.azure.com", "Azure Resource Manager endpoint (sovereign clouds differ)."
    ),
    SettingSpec("GRAPH_ENDPOINT", "https://graph.microsoft.com", "Microsoft Graph endpoint."),
    SettingSpec("LOG_ANALYTICS_ENDPOINT", "https://api.loganalytics.io", "Log Analytics query endpoint."),
    SettingSpec(
        "LOG_ANALYTICS_WORKSPACE_ID",
        None,
        "Log Analytics (Sentinel) workspace id (GUID) polled by `poll_log_analytics`; unset disables polling and enrichment.",
    ),
    SettingSpec("ACS_ENDPOINT", None, "Azure Communication Services endpoint for calls; unset disables calls."),
    SettingSpec(
        "RESPONSE_MODE", "dry-run", "`enforce`, `approve` or `dry-run`; a partner's `responseMode` overrides it."
    ),
    SettingSpec("PARTNERS_FILE", "config/partners.json", "Partner registry (JSON, shape of samples/partners.json)."),
    SettingSpec(
        "SCORING_RULES_FILE",
        "config/scoring-rules.json",
        "Scoring rules (docs/spec/triage.md); the shipped default is documented in docs/scoring.md.",
    ),
    SettingSpec("MAIL_SENDER", None, "Mailbox (UPN) that Graph sendMail sends from; unset disables email."),
    SettingSpec("ACS_CALLER_ID", None, "E.164 number calls come from."),
    SettingSpec("CALLBACK_BASE_URL", None, "Public base URL of this app (call events, links in emails)."),
    SettingSpec(
        "GROUPING_WINDOW_MINUTES", "60", "Alerts sharing an entity within this many minutes join one incident."
    ),
    SettingSpec("LOG_ANALYTICS_LOOKBACK_MINUTES", "1440", "How far back the first poll (no watermark yet) looks."),
    SettingSpec(
        "QUARANTINE_RESOURCE_GROUP",
        "rg-soc-quarantine",
        "Resource group (in each protected subscription) that holds the per-region quarantine NSGs.",
    ),
    SettingSpec(
        "SOC_INVESTIGATION_SOURCE",
        None,
        "Optional CIDR of the SOC investigation subnet, allowed through the quarantine NSG.",
    ),
    SettingSpec(
        "BLAST_RADIUS_MAX",
        "5",
        "More than this many automatic containments within the window holds further ones for approval.",
    ),
    SettingSpec("BLAST_RADIUS_WINDOW_MINUTES", "15", "Window of the blast-radius breaker."),
    SettingSpec(
        "ESCALATION_MAX_ATTEMPTS",
        "12",
        "Phone escalation: call attempts (schedule slots 0/+15/+30/+45 min, then hourly) before the escalation is declared exhausted and people are emailed.",
    ),
    SettingSpec(
        "P2_CALL_RULE",
        "never",
        "When a P2 incident starts the phone escalation by itself: `never` (only `POST /api/incidents/{id}/call`), `always`, or `out-of-hours` (received outside 08:00–18:00 Mon–Fri in the partner's time zone).",
    ),
    SettingSpec(
        "P4_DIGEST_HOUR",
        "8",
        "Local hour (0–23, partner's time zone) of the daily P4 digest email; `off` emails each P4 at once.",
    ),
    SettingSpec(
        "ACS_COGNITIVE_SERVICES_ENDPOINT",
        None,
        "Azure AI services endpoint connected to the ACS resource, used for the calls' text-to-speech prompt; unset: ACS default.",
    ),
    SettingSpec(
        "CONTAINMENT_RETRY_BACKOFF_SECONDS",
        "1",
        "Base backoff (seconds) of the ARM and Graph clients' own retries on 429/5xx/timeouts during containment and release; a Retry-After header wins.",
    ),
    SettingSpec(
        "WRITEBACK_TARGETS",
        "sentinel,defender",
        "Where soc-responder writes back what it did (issue 7): `sentinel` (incident comment, labels, severity, status; needs Microsoft Sentinel Responder), `defender` (alert state; needs the alert-state role), both comma-separated, or `none`.",
    ),
    # -- issue 15: people are not kept waiting by slow containment --------------------------------------
    SettingSpec(
        "CONTAINMENT_NOTIFY_AFTER_SECONDS",
        "60",
        "A P1's first email and first call go out when containment finishes or after this many seconds, whichever comes first (the email then says which actions are still running); `0` does not wait at all.",
    ),
    SettingSpec("AZURE_CLIENT_ID", None, "Client id of the user-assigned managed identity (read by azure-identity)."),
    # -- issue 11: tenancy (docs/spec/tenancy.md) --
    SettingSpec(
        "SOC_TENANT_ID",
        None,
        "The SOC's own Entra tenant: partners in it (and the SOC itself) use the managed identity directly for Graph.",
    ),
    SettingSpec(
        "SOC_APP_CLIENT_ID",
        None,
        "Client id of the SOC's multi-tenant app registration: Graph tokens for a partner's own tenant (client assertion = the managed identity's token for api://AzureADTokenExchange). Unset: a single-tenant SOC, every Graph call uses the managed identity.",
    ),
    SettingSpec(
        "AZURE_AUTHORITY_HOST",
        "https://login.microsoftonline.com",
        "Entra ID authority the per-tenant tokens are requested from (sovereign clouds differ).",
    ),
    # -- issue 12: who may act, evidence anchored outside the tables --
    SettingSpec(
        "OPERATOR_AUTH",
        "entra",
        "`entra` (default): operator routes need App Service Authentication's `X-MS-CLIENT-PRINCIPAL` with the route's app role, and the actor is that principal; `function-key`: local runs only, the body `actor` is accepted and events are marked `actorVerified: false`.",
    ),
    SettingSpec(
        "EvidenceStorage__blobServiceUri",
        None,
        "Evidence archive (blob service URI, managed identity; Azure): where `anchor_evidence` writes chain-head anchors. Locally the `EvidenceStorage` connection string's blob endpoint is used.",
    ),
    SettingSpec(
        "EVIDENCE_ARCHIVE_CONTAINER",
        "evidence-archive",
        "Write-once (immutable) blob container for evidence anchors and exports.",
    ),
    SettingSpec(
        "ACS_CALLBACK_OPENID_CONFIG",
        "https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration",
        "OpenID configuration of the Call Automation callback tokens (issuer, JWKS); a token an ACS callback carries is verified against it.",
    ),
    SettingSpec(
        "ACS_RESOURCE_ID",
        None,
        "Immutable resource id of the Communication Services resource: the audience of its callback tokens (unset: audience not checked).",
    ),
    # issue 16: the console
    SettingSpec(
        "CONSOLE_BASE_URL",
        None,
        "Public base URL of the console links in emails, calls and Sentinel comments (unset: CALLBACK_BASE_URL).",
    ),
    SettingSpec(
        "CONSOLE_CSRF_KEY",
        None,
        "Secret (Key Vault reference) keying the console's CSRF tokens; unset: a random key per instance (tokens then verify only on the instance that issued them).",
    ),
    # issue 14: storm summaries and the mail pacer (docs/spec/notification.md)
    SettingSpec(
        "STORM_THRESHOLD",
        "8",
        "More than this many emails to one partner within `STORM_WINDOW_MINUTES` is a storm: further ones are gathered into a storm summary (the partner's first P1 email of each window still goes at once); `0`: no storm summaries.",
    ),
    SettingSpec("STORM_WINDOW_MINUTES", "5", "The window the storm threshold counts in (minutes, at least 1)."),
    SettingSpec(
        "STORM_SUMMARY_MINUTES", "5", "A storm summary goes out every this many minutes while it has news (at least 1)."
    ),
    SettingSpec(
        "MAIL_MAX_PER_MINUTE",
        "30",
        "Emails the `MAIL_SENDER` mailbox sends in one minute at most (Exchange Online: 30); more are queued, P1 first, and sent by the `mail_pacer` timer.",
    ),
    # issue 16: Teams channels (the webhook URLs are secrets in this vault, named in the partner registry)
    SettingSpec(
        "KEY_VAULT_URL",
        None,
        "Key Vault (`https://<name>.vault.azure.net`) holding the Teams Workflows webhook URLs named by `teamsWebhookSecret` in the partner registry, read with the managed identity (role Key Vault Secrets User); unset: Teams cards are evidenced as skipped.",
    ),
    SettingSpec(
        "TEAMS_POSTS_PER_MINUTE",
        "10",
        "Cards one Teams channel (one webhook) is posted in any 60 seconds at most (Teams allows a webhook 60 per 30 seconds and 100 per hour); more wait, P1 first, for the `teams_delivery` timer.",
    ),
    # issue 14: one phone escalation per contact
    SettingSpec(
        "ACS_CALLER_IDS",
        None,
        "Comma-separated E.164 caller numbers (a pool, with ACS_CALLER_ID): each call takes a number with fewer than two calls in progress (ACS's default concurrent PSTN calls per number).",
    ),
)

SETTING_NAMES: frozenset[str] = frozenset(s.name for s in SETTINGS)
_DEFAULTS = {s.name: s.default for s in SETTINGS}


def _int(env: Mapping[str, str], name: str, minimum: int = 0) -> int:
    raw = env.get(name) or _DEFAULTS[name]
    try:
        value = int(str(raw))
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, minimum: float, maximum: float) -> float:
    raw = env.get(name) or _DEFAULTS[name]
    try:
        value = float(str(raw))
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{name} must be between {minimum:g} and {maximum:g}, got {value:g}")
    return value


def _get(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return _DEFAULTS[name]
    return value.strip()


def _defaulted(env: Mapping[str, str], name: str) -> str:
    """A setting whose SETTINGS entry has a default, so it is never missing."""
    value = _get(env, name)
    if value is None:  # only if someone removes the default from SETTINGS
        raise ConfigurationError(f"{name} is required")
    return value


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str:
    value = (_get(env, name) or "").lower()
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _writeback_targets(env: Mapping[str, str]) -> frozenset[str]:
    raw = (_get(env, "WRITEBACK_TARGETS") or "").lower()
    items = {x.strip() for x in raw.split(",") if x.strip()}
    if items == {"none"}:
        return frozenset()
    unknown = items - set(WRITEBACK_KINDS)
    if unknown or not items:
        raise ConfigurationError(
            f"WRITEBACK_TARGETS must be 'none' or a comma-separated list of {', '.join(WRITEBACK_KINDS)}, got {raw!r}"
        )
    return frozenset(items)


def _digest_hour(env: Mapping[str, str]) -> int | None:
    raw = (_get(env, "P4_DIGEST_HOUR") or "").lower()
    if raw == "off":
        return None
    if not raw.isdigit() or int(raw) > 23:
        raise ConfigurationError(f"P4_DIGEST_HOUR must be an hour 0-23 or 'off', got {raw!r}")
    return int(raw)


def _vault_url(env: Mapping[str, str]) -> str | None:
    """issue 16: KEY_VAULT_URL, an https base URL without path, query or credentials (or unset)."""
    raw = _get(env, "KEY_VAULT_URL")
    if raw is None:
        return None
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - a bad port raises here
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme != "https"
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or parts.path not in ("", "/")
    ):
        raise ConfigurationError(
            f"KEY_VAULT_URL must be the vault's https URL (https://<name>.vault.azure.net), got {raw!r}"
        )
    return raw.rstrip("/")


_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _caller_ids(env: Mapping[str, str]) -> tuple[str, ...]:
    """issue 14: the caller-number pool: ``ACS_CALLER_ID`` first, then ``ACS_CALLER_IDS`` (E.164), each once."""
    out: list[str] = []
    for name in ("ACS_CALLER_ID", "ACS_CALLER_IDS"):
        for raw in (_get(env, name) or "").split(","):
            number = raw.strip()
            if not number:
                continue
            if name == "ACS_CALLER_IDS" and not _E164.match(number):  # ACS_CALLER_ID is taken as it always was
                raise ConfigurationError(f"{name} must be E.164 phone numbers (+ and 7-15 digits), got {number!r}")
            if number not in out:
                out.append(number)
    return tuple(out)


@dataclass(frozen=True)
class Settings:
    """Typed view of the app settings."""

    evidence_connection_string: str | None = None
    evidence_table_service_uri: str | None = None
    arm_endpoint: str = "https://management.azure.com"
    graph_endpoint: str = "https://graph.microsoft.com"
    log_analytics_endpoint: str = "https://api.loganalytics.io"
    log_analytics_workspace_id: str | None = None
    acs_endpoint: str | None = None
    response_mode: str = "dry-run"
    partners_file: str = "config/partners.json"
    scoring_rules_file: str = "config/scoring-rules.json"
    mail_sender: str | None = None
    acs_caller_id: str | None = None
    callback_base_url: str | None = None
    grouping_window_minutes: int = 60
    log_analytics_lookback_minutes: int = 1440
    quarantine_resource_group: str = "rg-soc-quarantine"
    soc_investigation_source: str | None = None
    blast_radius_max: int = 5
    blast_radius_window_minutes: int = 15
    containment_retry_backoff_seconds: float = 1.0
    escalation_max_attempts: int = 12
    p2_call_rule: str = "never"
    p4_digest_hour: int | None = 8
    acs_cognitive_services_endpoint: str | None = None
    writeback_targets: frozenset[str] = frozenset(WRITEBACK_KINDS)
    # issue 11: tenancy
    soc_tenant_id: str | None = None
    soc_app_client_id: str | None = None
    azure_authority_host: str = "https://login.microsoftonline.com"
    # issue 12
    operator_auth: str = "entra"
    evidence_blob_service_uri: str | None = None
    evidence_archive_container: str = "evidence-archive"
    acs_callback_openid_config: str = (
        "https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration"
    )
    acs_resource_id: str | None = None
    containment_notify_after_seconds: int = 60  # issue 15
    # issue 16: the console (links in notifications; CSRF key)
    console_base_url: str | None = None
    console_csrf_key: str | None = field(default=None, repr=False)
    # issue 14: storm summaries and the mail pacer
    storm_threshold: int = 8
    storm_window_minutes: int = 5
    storm_summary_minutes: int = 5
    mail_max_per_minute: int = 30
    key_vault_url: str | None = None  # issue 16: Teams webhook URLs (secrets)
    teams_posts_per_minute: int = 10  # issue 14: the pace of one Teams channel
    acs_caller_ids: tuple[str, ...] = ()  # issue 14: ACS_CALLER_ID then ACS_CALLER_IDS, each once
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the settings; raises ConfigurationError naming the setting."""
        env = os.environ if environ is None else environ
        mode = (_get(env, "RESPONSE_MODE") or "dry-run").lower()
        if mode not in RESPONSE_MODES:
            raise ConfigurationError(f"RESPONSE_MODE must be one of {', '.join(RESPONSE_MODES)}, got {mode!r}")
        return cls(
            evidence_connection_string=_get(env, "EvidenceStorage"),
            evidence_table_service_uri=_get(env, "EvidenceStorage__tableServiceUri"),
            arm_endpoint=_defaulted(env, "ARM_ENDPOINT").rstrip("/"),
            graph_endpoint=_defaulted(env, "GRAPH_ENDPOINT").rstrip("/"),
            log_analytics_endpoint=_defaulted(env, "LOG_ANALYTICS_ENDPOINT").rstrip("/"),
            log_analytics_workspace_id=_get(env, "LOG_ANALYTICS_WORKSPACE_ID"),
            acs_endpoint=_get(env, "ACS_ENDPOINT"),
            response_mode=mode,
            partners_file=_defaulted(env, "PARTNERS_FILE"),
            scoring_rules_file=_defaulted(env, "SCORING_RULES_FILE"),
            mail_sender=_get(env, "MAIL_SENDER"),
            acs_caller_id=_get(env, "ACS_CALLER_ID"),
            callback_base_url=(_get(env, "CALLBACK_BASE_URL") or "").rstrip("/") or None,
            grouping_window_minutes=_int(env, "GROUPING_WINDOW_MINUTES", 0),
            log_analytics_lookback_minutes=_int(env, "LOG_ANALYTICS_LOOKBACK_MINUTES", 1),
            quarantine_resource_group=_defaulted(env, "QUARANTINE_RESOURCE_GROUP"),
            soc_investigation_source=_get(env, "SOC_INVESTIGATION_SOURCE"),
            blast_radius_max=_int(env, "BLAST_RADIUS_MAX", 0),
            blast_radius_window_minutes=_int(env, "BLAST_RADIUS_WINDOW_MINUTES", 1),
            containment_retry_backoff_seconds=_float(env, "CONTAINMENT_RETRY_BACKOFF_SECONDS", 0.0, 60.0),
            escalation_max_attempts=_int(env, "ESCALATION_MAX_ATTEMPTS", 1),
            p2_call_rule=_choice(env, "P2_CALL_RULE", P2_CALL_RULES),
            p4_digest_hour=_digest_hour(env),
            acs_cognitive_services_endpoint=(_get(env, "ACS_COGNITIVE_SERVICES_ENDPOINT") or "").rstrip("/") or None,
            writeback_targets=_writeback_targets(env),
            # issue 11: tenancy
            soc_tenant_id=(_get(env, "SOC_TENANT_ID") or "").strip().lower() or None,
            soc_app_client_id=(_get(env, "SOC_APP_CLIENT_ID") or "").strip() or None,
            azure_authority_host=_defaulted(env, "AZURE_AUTHORITY_HOST").rstrip("/"),
            # issue 12
            operator_auth=_choice(env, "OPERATOR_AUTH", ("entra", "function-key")),
            evidence_blob_service_uri=_get(env, "EvidenceStorage__blobServiceUri"),
            evidence_archive_container=_defaulted(env, "EVIDENCE_ARCHIVE_CONTAINER"),
            acs_callback_openid_config=_defaulted(env, "ACS_CALLBACK_OPENID_CONFIG"),
            acs_resource_id=_get(env, "ACS_RESOURCE_ID"),
            containment_notify_after_seconds=_int(env, "CONTAINMENT_NOTIFY_AFTER_SECONDS", 0),  # issue 15
            # issue 16: the console
            console_base_url=(_get(env, "CONSOLE_BASE_URL") or _get(env, "CALLBACK_BASE_URL") or "").rstrip("/")
            or None,
            console_csrf_key=_get(env, "CONSOLE_CSRF_KEY"),
            # issue 14: storm summaries and the mail pacer
            storm_threshold=_int(env, "STORM_THRESHOLD", 0),
            storm_window_minutes=_int(env, "STORM_WINDOW_MINUTES", 1),
            storm_summary_minutes=_int(env, "STORM_SUMMARY_MINUTES", 1),
            mail_max_per_minute=_int(env, "MAIL_MAX_PER_MINUTE", 1),
            key_vault_url=_vault_url(env),  # issue 16
            teams_posts_per_minute=_int(env, "TEAMS_POSTS_PER_MINUTE", 1),  # issue 14: Teams in a storm
            acs_caller_ids=_caller_ids(env),  # issue 14
        )
