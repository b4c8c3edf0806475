"""Log Analytics adapter (azure-monitor-query), behind ``SecurityEventSource``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.errors import TransientError
from shared.settings import Settings


class LogAnalyticsQueryError(TransientError):
    """A query failed or returned only part of its result (issue 13: in the domain's error vocabulary, so the
    what-if replay can name a workspace it could not read and go on with the others)."""


class LogAnalyticsSource:
    """Runs KQL against the configured workspace (or, issue 11, a partner's workspaces: the first queried
    with the others as ``additional_workspaces``, through Lighthouse with the managed identity); rows come
    back as dicts."""

    def __init__(self, settings: Settings, client=None, workspace_ids: list[str] | None = None):
        ids = list(
            workspace_ids or ([settings.log_analytics_workspace_id] if settings.log_analytics_workspace_id else [])
        )
        if not ids:
            raise LogAnalyticsQueryError("LOG_ANALYTICS_WORKSPACE_ID is not set")
        self._settings = settings
        self._client = client
        self.workspace_id, self._additional = ids[0], ids[1:]

    def _extra(self) -> dict[str, Any]:
        return {"additional_workspaces": self._additional} if self._additional else {}

    @property
    def client(self):
        if self._client is None:
            from shared.adapters.clients import logs_client

            self._client = logs_client(self._settings)
        return self._client

    def query(self, kql: str, start: datetime, end: datetime, allow_partial: bool = False) -> list[dict[str, Any]]:
        from azure.monitor.query import LogsQueryStatus

        try:
            result = self.client.query_workspace(self.workspace_id, kql, timespan=(start, end), **self._extra())
        except Exception as exc:  # issue 13: an azure-core failure as the domain's AdapterError
            from shared.adapters.arm_network import translate

            raise translate(exc, f"Log Analytics workspace {self.workspace_id}") from exc
        if result.status == LogsQueryStatus.PARTIAL:
            if not allow_partial:
                raise LogAnalyticsQueryError(f"partial result: {getattr(result.partial_error, 'message', '')}")
            tables = result.partial_data
        elif result.status == LogsQueryStatus.SUCCESS:
            tables = result.tables
        else:  # pragma: no cover — the SDK raises for failures
            raise LogAnalyticsQueryError("query failed")
        return _rows(tables)

    def run(self, kql: str, start: datetime, end: datetime, timeout_seconds: int = 60):
        """Investigation query (``shared.enrichment.InvestigationSource``): never raises for a failed,
        partial or timed-out query, reports it in the ``QueryOutcome``.

        ``timeout_seconds`` bounds the server (``Prefer: wait``) and the client read; one transport retry
        only, so a slow workspace cannot hold the runbook for minutes.
        """
        from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
        from azure.monitor.query import LogsQueryStatus

        from shared.enrichment import QueryOutcome

        try:
            result = self.client.query_workspace(
                self.workspace_id,
                kql,
                **self._extra(),
                timespan=(start, end),
                server_timeout=max(1, min(int(timeout_seconds), 600)),
                read_timeout=timeout_seconds,
                connection_timeout=min(timeout_seconds, 30),
                retry_total=1,
            )
        except ServiceResponseError as exc:  # no answer in time (read timeout, dropped connection)
            return QueryOutcome("timeout", error=f"no answer within {timeout_seconds} s ({type(exc).__name__})")
        except ServiceRequestError as exc:
            return QueryOutcome("failed", error=f"workspace unreachable ({type(exc).__name__})")
        except HttpResponseError as exc:
            code = getattr(getattr(exc, "error", None), "code", None) or ""
            status = "timeout" if exc.status_code in (408, 504) or "timeout" in code.lower() else "failed"
            return QueryOutcome(status, error=f"HTTP {exc.status_code}{' ' + code if code else ''}")
        if result.status == LogsQueryStatus.PARTIAL:
            err = result.partial_error
            parts = [getattr(err, "message", None) or getattr(err, "code", None) or "partial result"]
            for d in getattr(err, "details", None) or []:  # dicts or the SDK's ErrorDetail models
                message = d.get("message") if hasattr(d, "get") else getattr(d, "message", None)
                if message:
                    parts.append(message)
            detail = "; ".join(str(x) for x in parts)[:300]
            return QueryOutcome("partial", rows=_rows(result.partial_data), error=detail)
        return QueryOutcome("ok", rows=_rows(result.tables))


def _rows(tables) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for table in tables:
        columns = list(table.columns)
        rows.extend(dict(zip(columns, row, strict=True)) for row in table.rows)
    return rows
