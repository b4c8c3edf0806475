"""Investigate (docs/spec/lifecycle.md): related activity from Log Analytics, summarised into the incident timeline.

For each account of the incident: its sign-ins (``SigninLogs``) and directory
audit events (``AuditLogs``); for each IP address: Azure activity from it
(``AzureActivity``); for each Key Vault: secret/key operations unusual against
a 7-day baseline (``AzureDiagnostics``). The window is the 24 hours before the
incident's first alert up to now.

Entity values are attacker-controlled (an alert can name any account or
address), so they never enter KQL as text. The Log Analytics query API takes
only ``query``, ``timespan`` and ``workspaces`` — no query parameters (the
``declare query_parameters`` statement needs values the REST API cannot
carry). Every value therefore goes through ONE audited function,
``kql_string``, which emits ``base64_decode_tostring('<base64>')``: the base64
alphabet (A–Z a–z 0–9 + / =) contains no quote, pipe, semicolon, newline or
space, so no value can end the literal or change the query around it. The
values are bound with ``let`` statements ahead of constant query templates
that only use the bound names.

Each query's outcome (complete, partial, failed, timed out) is one
Investigate-phase evidence event; a failure is recorded, never raised, and
the investigation goes on with the next query. Re-running (an activity retried
after a host crash) skips the queries already evidenced for that runbook epoch.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from shared.errors import IncidentNotFoundError
from shared.evidence import EventDraft, now_ms
from shared.models import Entity, EntityKind, Incident, Phase, isoformat
from shared.store import EvidenceStore

log = logging.getLogger("soc_responder.enrichment")

LOOKBACK = timedelta(hours=24)
KEY_VAULT_BASELINE = timedelta(days=7)
DEFAULT_TIMEOUT_SECONDS = 60
# All lookups of one run share this budget, well inside the 10-minute functionTimeout (host.json):
# a hanging workspace costs the runbook minutes, not the activity.
DEFAULT_BUDGET_SECONDS = 240
MAX_ACCOUNTS, MAX_IPS, MAX_VAULTS = 5, 5, 3
MAX_RESOURCES = 3  # issue 13: Azure resources that are not VMs or vaults (AKS, storage, App Service …)
TOP_ROWS = 5
MAX_CELL_CHARS = 256
MAX_VALUE_CHARS = 1024
EVENT_PREFIX = "investigation."

_PARAM_NAME = re.compile(r"^p_[a-z0-9_]{1,40}$")
_BASE64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")
_VAULT = re.compile(
    r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.keyvault/vaults/[^/]+)", re.IGNORECASE
)


# -- the one way a value enters KQL ---------------------------------------------------------
def kql_string(value: str) -> str:
    """A KQL expression that evaluates to ``value`` and cannot alter the query around it.

    ``base64_decode_tostring('<base64 of the UTF-8 bytes>')``: the literal holds only
    base64 characters, which the KQL string-literal grammar treats as plain text.
    """
    if not isinstance(value, str):
        raise TypeError("KQL parameters are strings")
    if len(value) > MAX_VALUE_CHARS:
        raise ValueError(f"KQL parameter longer than {MAX_VALUE_CHARS} characters")
    encoded = base64.b64encode(value.encode("utf-8", errors="replace")).decode("ascii")
    if not _BASE64.match(encoded):  # cannot happen; kept as the audited invariant
        raise ValueError("base64 produced an unexpected character")
    return f"base64_decode_tostring('{encoded}')"


def kql_datetime(moment: datetime) -> str:
    """A KQL datetime literal from a datetime object (formatted by us, never caller text)."""
    if not isinstance(moment, datetime):
        raise TypeError("expected a datetime")
    return f"datetime({moment.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')})"


def bind(template: str, strings: Mapping[str, str], times: Mapping[str, datetime] | None = None) -> str:
    """``let`` statements binding each parameter, then the constant ``template`` that names them."""
    lines = []
    for name, value in strings.items():
        if not _PARAM_NAME.match(name):
            raise ValueError(f"bad KQL parameter name {name!r}")
        lines.append(f"let {name} = {kql_string(value)};")
    for name, moment in (times or {}).items():
        if not _PARAM_NAME.match(name):
            raise ValueError(f"bad KQL parameter name {name!r}")
        lines.append(f"let {name} = {kql_datetime(moment)};")
    return "\n".join(lines + [template])


# -- query templates (constants: no value is ever formatted into them) --------------------------
SIGNINS = """let matches = materialize(SigninLogs
| where (isnotempty(p_upn) and UserPrincipalName =~ p_upn) or (isnotempty(p_object_id) and UserId =~ p_object_id)
| project TimeGenerated, IPAddress, Location, ResultType = tostring(ResultType), ResultDescription, AppDisplayName);
matches
| summarize Events = count(), Failures = countif(ResultType != "0"), DistinctIPs = dcount(IPAddress),
            Locations = make_set(Location, 10), Apps = make_set(AppDisplayName, 10)
| extend RowKind = "summary"
| union (matches | top 5 by TimeGenerated desc | extend RowKind = "event")"""

DIRECTORY_AUDIT = """let matches = materialize(AuditLogs
| extend Initiator = tostring(InitiatedBy.user.userPrincipalName), InitiatorId = tostring(InitiatedBy.user.id),
         Targets = tostring(TargetResources)
| where (isnotempty(p_upn) and (Initiator =~ p_upn or Targets contains p_upn))
     or (isnotempty(p_object_id) and (InitiatorId =~ p_object_id or Targets contains p_object_id))
| project TimeGenerated, OperationName, Result, Category, Initiator);
matches
| summarize Events = count(), Failures = countif(Result !~ "success"), Operations = make_set(OperationName, 10)
| extend RowKind = "summary"
| union (matches | top 5 by TimeGenerated desc | extend RowKind = "event")"""

IP_ACTIVITY = """let matches = materialize(AzureActivity
| where CallerIpAddress == p_ip
| project TimeGenerated, Caller, OperationNameValue, ActivityStatusValue, ResourceGroup, ResourceId = _ResourceId);
matches
| summarize Events = count(), Failures = countif(ActivityStatusValue in~ ("Failure", "Failed")),
            Callers = make_set(Caller, 10), Operations = make_set(OperationNameValue, 10)
| extend RowKind = "summary"
| union (matches | top 5 by TimeGenerated desc | extend RowKind = "event")"""

# issue 13: management operations on an Azure resource an alert names (an AKS cluster, a storage account …).
RESOURCE_ACTIVITY = """let matches = materialize(AzureActivity
| where _ResourceId =~ p_resource
| project TimeGenerated, Caller, CallerIpAddress, OperationNameValue, ActivityStatusValue);
matches
| summarize Events = count(), Failures = countif(ActivityStatusValue in~ ("Failure", "Failed")),
            Callers = make_set(Caller, 10), Operations = make_set(OperationNameValue, 10)
| extend RowKind = "summary"
| union (matches | top 5 by TimeGenerated desc | extend RowKind = "event")"""

KEY_VAULT = """let vault_operations = dynamic(["SecretGet", "SecretList", "SecretSet", "SecretDelete", "SecretPurge",
    "SecretBackup", "SecretRestore", "SecretRecover", "KeyGet", "KeyList", "KeyCreate", "KeyImport", "KeyDelete",
    "KeyPurge", "KeyBackup", "KeyRestore", "KeyRecover", "KeyDecrypt", "KeyEncrypt", "KeySign", "KeyVerify",
    "KeyUnwrap", "KeyWrap", "KeyRotate", "KeyRelease"]);
let operations = materialize(AzureDiagnostics
| where ResourceProvider == "MICROSOFT.KEYVAULT" and ResourceId =~ p_vault and OperationName in~ (vault_operations)
| extend Caller = coalesce(column_ifexists("identity_claim_upn_s", ""), column_ifexists("identity_claim_oid_g", ""),
                           column_ifexists("identity_claim_appid_g", ""), "unknown"),
         CallerIp = column_ifexists("CallerIPAddress", ""));
let baseline = operations | where TimeGenerated < p_window_start | summarize BaselineCount = count() by Caller, OperationName;
let unusual = operations
| where TimeGenerated >= p_window_start
| summarize Recent = count(), CallerIps = make_set(CallerIp, 5), Last = max(TimeGenerated) by Caller, OperationName
| join kind=leftouter baseline on Caller, OperationName
| extend BaselineDaily = round(todouble(coalesce(BaselineCount, 0)) / 7.0, 1)
| where isnull(BaselineCount) or Recent >= 3 * BaselineDaily + 10
| project Caller, OperationName, Recent, BaselineDaily, CallerIps, Last;
let window_total = toscalar(operations | where TimeGenerated >= p_window_start | count);
unusual
| summarize Events = sum(Recent), UnusualPairs = count(), Operations = make_set(OperationName, 10),
            Callers = make_set(Caller, 10)
| extend Events = coalesce(Events, 0), WindowOperations = window_total, RowKind = "summary"
| union (unusual | top 5 by Recent desc | extend RowKind = "event")"""


# -- planning (pure) --------------------------------------------------------------------------
@dataclass(frozen=True)
class PlannedQuery:
    """One lookup: what it is about, its bound KQL and its time span."""

    key: str  # stable per (kind, entity): de-duplicates re-runs
    kind: str  # signins | directory-audit | ip-activity | keyvault-operations | resource-activity
    entity_kind: str  # account | ip | keyVault | azureResource
    entity: str  # what the evidence names (UPN, address, vault id)
    kql: str
    start: datetime
    end: datetime

    @property
    def event_type(self) -> str:
        return EVENT_PREFIX + self.kind


_TITLES = {
    "signins": "Sign-ins of {entity}",
    "directory-audit": "Directory audit events for {entity}",
    "ip-activity": "Azure activity from {entity}",
    "keyvault-operations": "Unusual Key Vault operations on {entity}",
    "resource-activity": "Azure activity on {entity}",
}


def _key(kind: str, entity: str) -> str:
    return f"{kind}:{hashlib.sha256(entity.lower().encode('utf-8')).hexdigest()[:16]}"


def _accounts(entities: list[Entity]) -> list[tuple[str, str]]:
    seen, out = set(), []
    for e in entities:
        if e.kind != EntityKind.ACCOUNT or not (e.upn or e.object_id):
            continue
        ident = (e.upn or "", e.object_id or "")
        if (ident[0].lower(), ident[1].lower()) not in seen:
            seen.add((ident[0].lower(), ident[1].lower()))
            out.append(ident)
    return out[:MAX_ACCOUNTS]


def _ips(entities: list[Entity]) -> list[str]:
    out: list[str] = []
    for e in entities:
        if e.kind != EntityKind.IP or not e.address:
            continue
        try:
            addr = str(ipaddress.ip_address(e.address.strip()))
        except ValueError:
            continue  # not an address: nothing Log Analytics could match
        if addr not in out:
            out.append(addr)
    return out[:MAX_IPS]


def _vaults(entities: list[Entity]) -> list[str]:
    out: list[str] = []
    for e in entities:
        m = _VAULT.match(e.azure_resource_id or "")
        if m and m.group(1).lower() not in [v.lower() for v in out]:
            out.append(m.group(1))
    return out[:MAX_VAULTS]


def _resources(entities: list[Entity]) -> list[str]:
    """Resource ids of ``azureResource`` entities that are not Key Vaults (those have their own lookup)."""
    out: list[str] = []
    for e in entities:
        rid = e.azure_resource_id or ""
        known = rid.lower() in [r.lower() for r in out]
        if e.kind == EntityKind.AZURE_RESOURCE and rid.startswith("/") and not _VAULT.match(rid) and not known:
            out.append(rid)
    return out[:MAX_RESOURCES]


def plan_queries(incident: Incident, now: datetime) -> list[PlannedQuery]:
    """The lookups for the incident's accounts, addresses and Key Vaults (pure)."""
    end = now
    start = min(incident.first_seen_at, now) - LOOKBACK
    plans: list[PlannedQuery] = []
    for upn, object_id in _accounts(incident.entities):
        shown = upn or object_id
        params = {"p_upn": upn, "p_object_id": object_id}
        plans.append(
            PlannedQuery(_key("signins", shown), "signins", "account", shown, bind(SIGNINS, params), start, end)
        )
        plans.append(
            PlannedQuery(
                _key("directory-audit", shown),
                "directory-audit",
                "account",
                shown,
                bind(DIRECTORY_AUDIT, params),
                start,
                end,
            )
        )
    for ip in _ips(incident.entities):
        plans.append(
            PlannedQuery(_key("ip-activity", ip), "ip-activity", "ip", ip, bind(IP_ACTIVITY, {"p_ip": ip}), start, end)
        )
    for vault in _vaults(incident.entities):
        plans.append(
            PlannedQuery(
                _key("keyvault-operations", vault),
                "keyvault-operations",
                "keyVault",
                vault,
                bind(KEY_VAULT, {"p_vault": vault}, {"p_window_start": start}),
                start - KEY_VAULT_BASELINE,
                end,
            )
        )
    for rid in _resources(incident.entities):
        plans.append(
            PlannedQuery(
                _key("resource-activity", rid),
                "resource-activity",
                "azureResource",
                rid,
                bind(RESOURCE_ACTIVITY, {"p_resource": rid}),
                start,
                end,
            )
        )
    return plans


# -- running ---------------------------------------------------------------------------------
@dataclass
class QueryOutcome:
    """What a query returned: ``ok``, ``partial`` (rows are incomplete), ``failed``, ``timeout``, or
    ``skipped`` (the run's time budget was used up before it could start)."""

    status: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


class InvestigationSource(Protocol):
    """Runs one KQL query over a time span; reports failures in the outcome instead of raising."""

    def run(self, kql: str, start: datetime, end: datetime, timeout_seconds: int) -> QueryOutcome: ...


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return isoformat(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_cell(v) for v in list(value)[:10]]
    if isinstance(value, dict):
        return {str(k)[:64]: _cell(v) for k, v in list(value.items())[:20]}
    if isinstance(value, str):
        return value if len(value) <= MAX_CELL_CHARS else value[:MAX_CELL_CHARS] + "…"
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _cell(str(value))


def summarise(plan: PlannedQuery, outcome: QueryOutcome, epoch: int, occurred_at: datetime) -> EventDraft:
    """The Investigate-phase evidence event for one query's outcome (pure)."""
    summary_row = next((r for r in outcome.rows if r.get("RowKind") == "summary"), None)
    top = [
        {k: _cell(v) for k, v in r.items() if k != "RowKind" and v not in (None, "")}
        for r in outcome.rows
        if r.get("RowKind") != "summary"
    ][:TOP_ROWS]
    counts = {k: _cell(v) for k, v in (summary_row or {}).items() if k != "RowKind"}
    events = counts.get("Events") if isinstance(counts.get("Events"), int) else None
    if events is None and summary_row is None and outcome.status == "ok":
        events = 0  # an empty answer: nothing matched
    title = _TITLES[plan.kind].format(entity=plan.entity[:200])
    if outcome.status in ("failed", "timeout", "skipped"):
        what = {"timeout": "timed out", "failed": "failed", "skipped": "not run"}[outcome.status]
        text = f"{title}: query {what} ({outcome.error or 'no detail'}); the investigation went on without it"
    else:
        details = []
        if isinstance(counts.get("Failures"), int) and counts["Failures"]:
            details.append(f"{counts['Failures']} failed")
        if isinstance(counts.get("DistinctIPs"), int):
            details.append(f"{counts['DistinctIPs']} distinct IP(s)")
        if isinstance(counts.get("UnusualPairs"), int):
            details.append(f"{counts['UnusualPairs']} unusual caller/operation pair(s)")
        text = f"{title}: {events if events is not None else 'unknown'} event(s)" + (
            f" ({', '.join(details)})" if details else ""
        )
        if outcome.status == "partial":
            text += f" — PARTIAL result ({outcome.error or 'the service returned only part of the data'})"
    return EventDraft(
        event_type=plan.event_type,
        phase=Phase.INVESTIGATE,
        occurred_at=occurred_at,
        summary=text,
        data={
            "queryKey": plan.key,
            "epoch": epoch,
            "entityKind": plan.entity_kind,
            "entity": plan.entity,
            "status": outcome.status,
            "window": {"from": isoformat(plan.start), "to": isoformat(plan.end)},
            "events": events,
            "counts": counts,
            "topRows": top,
            "error": outcome.error,
        },
    )


class IncidentInvestigator:
    """Runs the lookups of an incident and evidences each outcome (never raises for a query failure)."""

    def __init__(
        self,
        store: EvidenceStore,
        source: InvestigationSource | None,
        clock: Callable[[], datetime] = now_ms,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        budget_seconds: int = DEFAULT_BUDGET_SECONDS,
        timer: Callable[[], float] = time.monotonic,
        source_for: Callable[[Incident], InvestigationSource | None] | None = None,
    ):
        self.store, self.source, self.clock, self.timeout_seconds = store, source, clock, timeout_seconds
        self.budget_seconds, self.timer = budget_seconds, timer
        # Issue 11: where an incident is investigated (its partner's workspaces); None: ``source``.
        self.source_for = source_for

    def investigate(self, incident_id: str, epoch: int = 1) -> dict[str, Any]:
        """Query, evidence, summarise. Returns counts by status (the activity's result)."""
        got = self.store.get_incident(incident_id)
        if got is None:
            raise IncidentNotFoundError(incident_id)
        incident = got[0]
        source = self.source_for(incident) if self.source_for else self.source
        if source is None:
            return {
                "incidentId": incident_id,
                "epoch": epoch,
                "queries": 0,
                "statuses": {},
                "skipped": "no Log Analytics workspace for this incident's partner",
            }
        plans = plan_queries(incident, self.clock())
        done = {
            (ev.data.get("epoch"), ev.data.get("queryKey"))
            for ev in self.store.list_events(incident_id)
            if ev.event_type.startswith(EVENT_PREFIX)
        }
        statuses: dict[str, int] = {}
        deadline = self.timer() + self.budget_seconds
        for plan in plans:
            if (epoch, plan.key) in done:
                statuses["already-recorded"] = statuses.get("already-recorded", 0) + 1
                continue
            remaining = int(deadline - self.timer())
            if remaining < 1:
                outcome = QueryOutcome(
                    "skipped", error=f"the investigation's {self.budget_seconds} s budget was used up"
                )
            else:
                try:
                    outcome = source.run(plan.kql, plan.start, plan.end, min(self.timeout_seconds, remaining))
                except Exception as exc:
                    log.warning("investigation query %s failed: %s", plan.kind, exc)
                    outcome = QueryOutcome("failed", error=type(exc).__name__)
            statuses[outcome.status] = statuses.get(outcome.status, 0) + 1
            self.store.append_events(incident_id, [summarise(plan, outcome, epoch, self.clock())])
        if (epoch, "completed") not in done:
            self.store.append_events(incident_id, [self._completed(plans, statuses, epoch)])
        return {"incidentId": incident_id, "epoch": epoch, "queries": len(plans), "statuses": statuses}

    def _completed(self, plans: list[PlannedQuery], statuses: dict[str, int], epoch: int) -> EventDraft:
        kinds = {
            k: sum(1 for p in plans if p.entity_kind == k and p.kind != "directory-audit")
            for k in ("account", "ip", "keyVault")
        }
        if not plans:
            text = "Investigation: no account, IP address or Key Vault in the incident to look up"
        else:
            shown = ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))
            text = (
                f"Investigation: {len(plans)} Log Analytics lookup(s) for {kinds['account']} account(s), "
                f"{kinds['ip']} IP address(es), {kinds['keyVault']} Key Vault(s)"
                + (f", {n} Azure resource(s)" if (n := sum(p.entity_kind == "azureResource" for p in plans)) else "")
                + f": {shown}"
            )
        return EventDraft(
            event_type=EVENT_PREFIX + "completed",
            phase=Phase.INVESTIGATE,
            occurred_at=self.clock(),
            summary=text,
            data={
                "queryKey": "completed",
                "epoch": epoch,
                "queries": len(plans),
                "statuses": statuses,
                "entities": kinds,
            },
        )
