"""What-if replay (issue 13): past ``SecurityIncident`` / ``SecurityAlert`` rows through the current rules,
writing nothing and acting on nothing.

A SOC lead tuning the rules for forty partners asks "what would last month have looked like with these
rules?" before switching a partner to ``enforce``. The replay reads the rows from Log Analytics (the same
``SecurityEventSource`` port the poll uses), parses them as the poll would, de-duplicates them as ingest
would (an alert inside an incident counts once, with the incident), scores them, applies the source's
judgement (closed at the source / test → recorded only), and plans the response as the runbook would —
then only counts: per priority and per partner, how many incidents, how many would have been contained,
held for approval, planned only (dry-run) or phoned, and which rules fired most. No incident, evidence
event, notification or containment is written; the store is not even given to it.

``POST /api/replay`` (functions/replay.py) and ``python -m shared.triage.replay --from … --to …`` (the CLI
entry point, ``shared/triage/replay.py``; the service is wired by ``shared/runtime.py``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.errors import AdapterError, ConfigurationError, ValidationError
from shared.ingest import open_incident
from shared.intake import log_analytics
from shared.models import Alert, Priority, incident_id_for
from shared.partners import Partner, PartnerRegistry, Workspace
from shared.response_plan import ActionDecision, plan_response
from shared.scoring import ScoringRules, score_alert
from shared.settings import Settings
from shared.source_judgement import judge


class PastAlertSource(Protocol):
    """Runs a KQL query over a time span, rows as column → value dicts (the Log Analytics adapter's shape,
    as ``shared.poller.SecurityEventSource``)."""

    def query(self, kql: str, start: datetime, end: datetime) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class ReplayWorkspace:
    """One workspace the replay reads (issue 13, since issue 11's partner workspaces): a partner's own Sentinel
    workspace attributes every row to that partner; the SOC-wide ``LOG_ANALYTICS_WORKSPACE_ID`` (``owner``
    None) resolves each row to its partner as ingest does (subscription, workspace, tenant)."""

    name: str
    source: PastAlertSource
    owner: str | None = None


SOC_WORKSPACE = "LOG_ANALYTICS_WORKSPACE_ID"
MAX_WINDOW = timedelta(days=92)  # a quarter: what a SOC tunes against, and what one query can carry
PAGE = 10000  # rows per table; more is reported as truncated


def _kql_time(dt: datetime) -> str:
    # Built from our own datetime, never from caller input.
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def replay_queries(start: datetime, end: datetime) -> dict[str, str]:
    """The two KQL queries over TimeGenerated in [start, end) (the latest state of each incident)."""
    window = f"| where TimeGenerated >= datetime({_kql_time(start)}) and TimeGenerated < datetime({_kql_time(end)})\n"
    return {
        "SecurityIncident": (
            "SecurityIncident\n" + window + "| summarize arg_max(TimeGenerated, *) by IncidentName\n"
            "| project TimeGenerated, IncidentName, IncidentNumber, Title, Description, Severity, Status, "
            "Classification, AlertIds, AdditionalData, FirstActivityTime, CreatedTime, IncidentUrl, TenantId\n"
            f"| take {PAGE}"
        ),
        "SecurityAlert": (
            "SecurityAlert\n" + window + "| summarize arg_max(TimeGenerated, *) by SystemAlertId\n"
            "| project TimeGenerated, SystemAlertId, AlertName, DisplayName, AlertSeverity, Description, "
            "ProviderName, ProductName, AlertType, CompromisedEntity, Tactics, Techniques, Entities, "
            f"ExtendedProperties, ResourceId, TenantId, VendorOriginalId, AlertLink, Status\n| take {PAGE}"
        ),
    }


@dataclass
class Tally:
    """What the runbook would have done, for one priority (of one partner)."""

    incidents: int = 0
    recorded_only: int = 0
    contained: int = 0  # incidents with at least one action executed (enforce)
    held: int = 0  # … held for approval (approve)
    planned_only: int = 0  # … planned, nothing changed (dry-run)
    nothing_containable: int = 0  # P1 with nothing to contain (containment.none-possible)
    phoned: int = 0
    digest: int = 0

    def wire(self) -> dict[str, int]:
        return {
            "incidents": self.incidents,
            "recordedOnly": self.recorded_only,
            "contained": self.contained,
            "held": self.held,
            "plannedOnly": self.planned_only,
            "nothingContainable": self.nothing_containable,
            "phoned": self.phoned,
            "digest": self.digest,
        }


@dataclass
class ReplayReport:
    start: datetime
    end: datetime
    partner: str | None
    rules_version: str
    rows: int = 0
    rejected: int = 0
    truncated: list[str] = field(default_factory=list)
    workspaces: list[dict[str, Any]] = field(default_factory=list)
    by_priority: dict[str, Tally] = field(default_factory=lambda: {p.value: Tally() for p in Priority})
    by_partner: dict[str, dict[str, Tally]] = field(default_factory=dict)
    rules: Counter = field(default_factory=Counter)

    def wire(self, top: int = 10) -> dict[str, Any]:
        return {
            "from": self.start.isoformat().replace("+00:00", "Z"),
            "to": self.end.isoformat().replace("+00:00", "Z"),
            "partner": self.partner,
            "rulesVersion": self.rules_version,
            "rows": self.rows,
            "rejected": self.rejected,
            "truncated": self.truncated,
            "workspaces": self.workspaces,
            "incidents": sum(t.incidents for t in self.by_priority.values()),
            "byPriority": {p: t.wire() for p, t in self.by_priority.items()},
            "byPartner": {
                partner: {p: t.wire() for p, t in tallies.items() if t.incidents}
                for partner, tallies in sorted(self.by_partner.items())
            },
            "topRules": [{"rule": r, "incidents": n} for r, n in self.rules.most_common(top)],
            "written": 0,  # a replay writes nothing and acts on nothing
        }


def parse_window(body: dict[str, Any], now: datetime) -> tuple[datetime, datetime, str | None]:
    """``{"from", "to", "partner"?}`` → (start, end, partner); a clear 400 naming the field otherwise."""
    if not isinstance(body, dict):
        raise ValidationError(
            "request body must be a JSON object", [{"field": "body", "message": "expected an object"}]
        )
    bounds = []
    for name in ("from", "to"):
        value = body.get(name)
        try:
            dt = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if isinstance(value, str) else None
        except ValueError:
            dt = None
        if dt is None:
            raise ValidationError(
                "request body failed validation", [{"field": name, "message": "must be an ISO 8601 date-time"}]
            )
        bounds.append(dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC))
    start, end = bounds
    if end <= start:
        raise ValidationError("request body failed validation", [{"field": "to", "message": "must be after from"}])
    if end - start > MAX_WINDOW:
        raise ValidationError(
            "request body failed validation",
            [{"field": "to", "message": f"the window is at most {MAX_WINDOW.days} days"}],
        )
    if start > now:
        raise ValidationError("request body failed validation", [{"field": "from", "message": "is in the future"}])
    partner = body.get("partner")
    if partner is not None and (not isinstance(partner, str) or not partner.strip()):
        raise ValidationError(
            "request body failed validation", [{"field": "partner", "message": "must be a partner id"}]
        )
    return start, end, partner.strip() if isinstance(partner, str) else None


class ReplayService:
    """Replays past rows through the current rules (reads only: the workspaces, the rules, the partners)."""

    def __init__(
        self,
        source: PastAlertSource | None,
        rules: ScoringRules,
        partners: PartnerRegistry,
        settings: Settings,
        source_for: Callable[[Workspace], PastAlertSource] | None = None,
    ):
        # ``source``: the SOC-wide workspace (None when LOG_ANALYTICS_WORKSPACE_ID is not set);
        # ``source_for``: a reader of one partner workspace (the composition root builds it, through Lighthouse).
        self.source, self.rules, self.partners, self.settings = source, rules, partners, settings
        self.source_for = source_for

    def workspaces(self, partner: Partner | None = None) -> list[ReplayWorkspace]:
        """What to read: the partner's own workspaces when one is given (else, if it has none, the SOC-wide
        workspace filtered to it); otherwise every registered workspace plus the SOC-wide one. A partner
        workspace that is also the SOC-wide one is read once, as the SOC-wide one (as the poll does)."""
        shared_id = (self.settings.log_analytics_workspace_id or "").lower()
        out: list[ReplayWorkspace] = []
        seen: set[str] = set()
        for p in [partner] if partner is not None else self.partners.partners:
            for ws in p.workspaces:
                key = ws.workspaceId.lower()
                if key == shared_id or key in seen or self.source_for is None:
                    continue
                seen.add(key)
                out.append(ReplayWorkspace(f"{p.id}/{ws.workspaceName}", self.source_for(ws), p.id))
        if self.source is not None and shared_id and (partner is None or not out):
            out.append(ReplayWorkspace(SOC_WORKSPACE, self.source))
        if not out:
            raise ConfigurationError(
                f"{SOC_WORKSPACE} is not set and "
                + (f"partner {partner.id!r} has" if partner is not None else "no partner has")
                + " a Sentinel workspace (workspaces in PARTNERS_FILE): the replay has no past alerts to read"
            )
        return out

    def _alerts(self, workspace: ReplayWorkspace, start: datetime, end: datetime, report: ReplayReport) -> list[Alert]:
        queries = replay_queries(start, end)
        entry: dict[str, Any] = {"workspace": workspace.name, "partner": workspace.owner, "rows": 0}
        report.workspaces.append(entry)
        try:
            incidents = workspace.source.query(queries["SecurityIncident"], start, end)
            alerts = workspace.source.query(queries["SecurityAlert"], start, end)
        except AdapterError as exc:
            # One refused or unreachable workspace must not hide the others: named in the answer.
            entry["error"] = exc.reason[:300]
            return []
        for table, rows in (("SecurityIncident", incidents), ("SecurityAlert", alerts)):
            if len(rows) >= PAGE:
                report.truncated.append(f"{workspace.name} {table}: the first {PAGE} rows only")
        entry["rows"] = len(incidents) + len(alerts)
        report.rows += entry["rows"]
        parsed: list[Alert] = []
        for rows, parse in ((incidents, log_analytics.parse_incident_row), (alerts, log_analytics.parse_alert_row)):
            for row in rows:
                try:
                    parsed.append(parse(row, end))
                except (ValidationError, ValueError, TypeError):
                    report.rejected += 1
        return parsed

    def run(self, start: datetime, end: datetime, partner_id: str | None = None) -> ReplayReport:
        report = ReplayReport(start, end, partner_id, self.rules.version)
        wanted = self.partners.get(partner_id) if partner_id is not None else None
        if partner_id is not None and wanted is None:
            raise ValidationError("unknown partner", [{"field": "partner", "message": f"no partner {partner_id!r}"}])
        claimed: set[str] = set()  # as ingest: an alert already inside an incident counts once, with it
        for workspace in self.workspaces(wanted):
            owner = self.partners.get(workspace.owner) if workspace.owner else None
            for alert in self._alerts(workspace, start, end, report):
                if claimed & set(alert.dedupe_keys):
                    continue
                claimed.update(alert.dedupe_keys)
                # A partner's own workspace holds that partner's alerts; the SOC-wide one is resolved per row.
                partner = owner if owner is not None else self.partners.resolve(alert)[0]
                if partner_id is not None and (partner is None or partner.id != partner_id):
                    continue
                self._count(alert, partner, report)
        return report

    def _count(self, alert: Alert, partner, report: ReplayReport) -> None:
        decision = score_alert(alert, self.rules, partner)
        tallies = [
            report.by_priority[decision.priority.value],
            report.by_partner.setdefault(
                partner.id if partner else "(SOC: no partner)", {p.value: Tally() for p in Priority}
            )[decision.priority.value],
        ]
        for hit in decision.rules_fired:
            if hit.rule_id not in ("severity-base", "default-base"):
                report.rules[hit.rule_id] += 1
        if judge(alert).starts_nothing:
            for t in tallies:
                t.incidents += 1
                t.recorded_only += 1
            return
        tz = partner.timezone if partner else self.partners.soc.timezone
        incident = open_incident(
            incident_id_for(alert.primary_key, alert.observed_at),
            alert,
            decision,
            partner,
            tz,
            alert.observed_at,
            alert.observed_at,
        )
        plan = plan_response(incident, self.partners, self.settings)
        decisions = {a.decision for a in plan.containment}
        for t in tallies:
            t.incidents += 1
            t.contained += ActionDecision.EXECUTE in decisions
            t.held += ActionDecision.HOLD in decisions
            t.planned_only += ActionDecision.PLAN_ONLY in decisions
            t.nothing_containable += plan.none_possible is not None
            t.phoned += plan.notification.phone_escalation
            t.digest += plan.notification.digest


HEADER = "priority  incidents contained  held planned nothing phoned digest recorded"


def render(report: dict[str, Any]) -> str:
    lines = [
        f"Replay {report['from']} → {report['to']}"
        + (f" (partner {report['partner']})" if report["partner"] else "")
        + f", rules {report['rulesVersion']}: {report['rows']} rows, {report['incidents']} incidents, "
        f"{report['rejected']} rejected; nothing written",
        HEADER,
    ]
    for p, t in report["byPriority"].items():
        lines.append(
            f"{p:8} {t['incidents']:>9} {t['contained']:>9} {t['held']:>5} {t['plannedOnly']:>7} "
            f"{t['nothingContainable']:>7} {t['phoned']:>6} {t['digest']:>6} {t['recordedOnly']:>8}"
        )
    for partner, tallies in report["byPartner"].items():
        lines.append(f"  {partner}: " + ", ".join(f"{p} {t['incidents']}" for p, t in tallies.items()))
    lines.append("Top rules: " + (", ".join(f"{r['rule']} ({r['incidents']})" for r in report["topRules"]) or "none"))
    for ws in report.get("workspaces") or []:
        if ws.get("error"):
            lines.append(f"NOT READ: workspace {ws['workspace']}: {ws['error']}")
    for note in report["truncated"]:
        lines.append(f"TRUNCATED: {note}")
    return "\n".join(lines)
