"""Log Analytics adapter (azure-monitor-query), behind ``SecurityEventSource``."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.settings import Settings


class LogAnalyticsQueryError(Exception):
    """A query failed or returned only part of its result."""


class LogAnalyticsSource:
    """Runs KQL against the configured workspace; rows come back as dicts."""

    def __init__(self, settings: Settings, client=None):
        if not settings.log_analytics_workspace_id:
            raise LogAnalyticsQueryError("LOG_ANALYTICS_WORKSPACE_ID is not set")
        self._settings = settings
        self._client = client

    @property
    def client(self):
        if self._client is None:
            from shared.adapters.clients import logs_client

            self._client = logs_client(self._settings)
        return self._client

    def query(self, kql: str, start: datetime, end: datetime, allow_partial: bool = False) -> list[dict[str, Any]]:
        from azure.monitor.query import LogsQueryStatus

        result = self.client.query_workspace(self._settings.log_analytics_workspace_id, kql, timespan=(start, end))
        if result.status == LogsQueryStatus.PARTIAL:
            if not allow_partial:
                raise LogAnalyticsQueryError(f"partial result: {getattr(result.partial_error, 'message', '')}")
            tables = result.partial_data
        elif result.status == LogsQueryStatus.SUCCESS:
            tables = result.tables
        else:  # pragma: no cover — the SDK raises for failures
            raise LogAnalyticsQueryError("query failed")
        rows: list[dict[str, Any]] = []
        for table in tables:
            columns = list(table.columns)
            rows.extend(dict(zip(columns, row)) for row in table.rows)
        return rows
