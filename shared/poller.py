"""Timer poll of Sentinel's ``SecurityIncident`` and ``SecurityAlert`` tables (docs/spec/ingest.md).

The watermark is the ingestion time of the rows already taken. It only moves
past a row once that row is recorded, so a failed row is queried again next
run (duplicates are harmless: ingest de-duplicates). A row that can never be
parsed is recorded as rejected and skipped, so it cannot block the poll.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared.errors import ValidationError
from shared.etag import Versioned, update_under_etag
from shared.ingest import IngestOutcome, IngestService
from shared.intake import log_analytics
from shared.models import Alert
from shared.settings import Settings
from shared.store import EvidenceStore

log = logging.getLogger("soc_responder.poller")
STATE_NAME = "log-analytics-watermark"
# Rows become queryable a little after their ingestion time; stay behind "now" by this much.
SETTLE = timedelta(minutes=2)
PAGE = 2000

_COLUMNS_ALERT = (
    "TimeGenerated, SystemAlertId, AlertName, DisplayName, AlertSeverity, Description, ProviderName, "
    "ProductName, AlertType, CompromisedEntity, Tactics, Entities, ExtendedProperties, ResourceId, "
    "TenantId, VendorOriginalId, AlertLink, Status, IngestedAt"
)
_COLUMNS_INCIDENT = (
    "TimeGenerated, IncidentName, IncidentNumber, Title, Description, Severity, Status, AlertIds, "
    "AdditionalData, FirstActivityTime, CreatedTime, IncidentUrl, TenantId, Classification, IngestedAt"
)


class SecurityEventSource(Protocol):
    """Runs a KQL query over a time span and returns rows as column → value dicts."""

    def query(self, kql: str, start: datetime, end: datetime) -> list[dict[str, Any]]: ...


def _kql_time(dt: datetime) -> str:
    # Built from our own datetime, never from caller input.
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_queries(since: datetime, until: datetime) -> dict[str, str]:
    """The two KQL queries for the window (since, until]."""
    window = (
        f"| extend IngestedAt = ingestion_time()\n"
        f"| where IngestedAt > datetime({_kql_time(since)}) and IngestedAt <= datetime({_kql_time(until)})\n"
    )
    return {
        "SecurityIncident": (
            "SecurityIncident\n" + window + "| summarize arg_max(TimeGenerated, *) by IncidentName\n"
            f"| project {_COLUMNS_INCIDENT}\n| order by IngestedAt asc\n| take {PAGE}"
        ),
        "SecurityAlert": (
            "SecurityAlert\n" + window + f"| project {_COLUMNS_ALERT}\n| order by IngestedAt asc\n| take {PAGE}"
        ),
    }


@dataclass
class PollReport:
    watermark_before: str
    watermark_after: str
    rows: int = 0
    created: int = 0
    grouped: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0
    outcomes: list[IngestOutcome] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _row_time(row: dict[str, Any]) -> datetime | None:
    for col in ("IngestedAt", "TimeGenerated"):
        v = row.get(col)
        if isinstance(v, datetime):
            return v if v.tzinfo else v.replace(tzinfo=UTC)
        if isinstance(v, str) and v:
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                continue
    return None


def _page_limit(rows: list[dict[str, Any]], since: datetime) -> datetime:
    """The watermark a full page allows: just below its last row's ingestion time, so rows of the
    same batch beyond the page are queried again (duplicates are harmless). A page whose rows all
    share one time cannot be split that way; then the watermark moves to that time and the rest
    of that batch is left to the pushed copies — logged, since it means a batch over the page size."""
    times = [t for t in (_row_time(r) for r in rows) if t]
    if not times:
        return since
    first, last = min(times), max(times)
    if first == last:
        log.warning(
            "Log Analytics returned a full page of %d rows ingested at one instant (%s); rows beyond "
            "the page at that instant are not polled",
            len(rows),
            last.isoformat(),
        )
        return last
    return last - timedelta(microseconds=1)


class LogAnalyticsPoller:
    """Catches up on what no push delivered."""

    def __init__(
        self,
        store: EvidenceStore,
        ingest: IngestService,
        source: SecurityEventSource,
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        state_name: str = STATE_NAME,
        decorate: Callable[[str, Alert], Alert] | None = None,
    ):
        self.store, self.ingest, self.source, self.settings, self.clock = store, ingest, source, settings, clock
        # Issue 11: one watermark per workspace (``log-analytics-watermark-{workspaceId}`` for a partner's).
        self.state_name = state_name
        # Issue 11: what the workspace poll knows that a row does not say (the incident's ARM id).
        self.decorate = decorate

    def _read_state(self) -> Versioned[dict[str, Any]]:
        got = self.store.get_state(self.state_name)
        return Versioned(got[0], got[1]) if got else Versioned({}, None)

    def poll(self) -> PollReport:
        """One run: query since the watermark, ingest each row, move the watermark as far as is safe."""
        now = self.clock()
        state = self.store.get_state(self.state_name)
        if state:
            since = datetime.fromisoformat(state[0]["watermark"].replace("Z", "+00:00"))
        else:
            since = now - timedelta(minutes=self.settings.log_analytics_lookback_minutes)
        until = max(since, now - SETTLE)
        report = PollReport(watermark_before=since.isoformat(), watermark_after=since.isoformat())
        if until <= since:
            return report
        first_failure: datetime | None = None
        # Where a table's full page ended: rows beyond it are fetched next run, so the watermark
        # must stay below the page's last ingestion time (rows of one batch share that time).
        page_limit: datetime | None = None
        for table, kql in build_queries(since, until).items():
            parse = log_analytics.parse_incident_row if table == "SecurityIncident" else log_analytics.parse_alert_row
            try:
                rows = self.source.query(kql, since, until)
            except Exception as exc:
                log.warning("Log Analytics query of %s failed: %s", table, exc)
                report.errors.append(f"{table}: query failed ({type(exc).__name__})")
                first_failure = since
                continue
            if len(rows) >= PAGE:
                limit = _page_limit(rows, since)
                page_limit = limit if page_limit is None else min(page_limit, limit)
            for row in rows:
                report.rows += 1
                at = _row_time(row) or since
                try:
                    alert = parse(row, self.clock())
                    if self.decorate is not None:
                        alert = self.decorate(table, alert)
                    outcome = self.ingest.ingest(alert)
                except ValidationError as exc:
                    report.rejected += 1
                    report.errors.append(f"{table}: row rejected ({exc.message})")
                    continue
                except Exception as exc:
                    report.failed += 1
                    report.errors.append(f"{table}: ingest failed ({type(exc).__name__})")
                    first_failure = at if first_failure is None else min(first_failure, at)
                    continue
                report.outcomes.append(outcome)
                counter = "duplicates" if outcome.outcome == "duplicate" else outcome.outcome
                setattr(report, counter, getattr(report, counter) + 1)
        new_mark = until
        if page_limit is not None:
            new_mark = min(new_mark, page_limit)
        if first_failure is not None:
            new_mark = min(new_mark, first_failure - timedelta(microseconds=1))
        new_mark = max(since, new_mark)
        report.watermark_after = new_mark.isoformat()
        if new_mark > since:
            read_mark = state[0]["watermark"] if state else None
            doc = {
                "watermark": new_mark.isoformat(),
                "updatedAt": now.isoformat(),
                "lastRun": {
                    k: getattr(report, k) for k in ("rows", "created", "grouped", "duplicates", "rejected", "failed")
                },
            }

            def advance(current: dict[str, Any]) -> dict[str, Any] | None:
                # Only from the watermark this run queried from: a concurrent run that moved it meanwhile
                # polled the same window, and its watermark stands (it may be lower, after a failure).
                return doc if current.get("watermark") == read_mark else None

            done = update_under_etag(
                self._read_state,
                lambda value, etag: self.store.set_state(self.state_name, value, etag),
                advance,
                what="the Log Analytics watermark",
                first=Versioned(state[0], state[1]) if state else None,
            )
            if done is None or not done.written:
                report.errors.append("watermark changed by a concurrent run")
        return report
