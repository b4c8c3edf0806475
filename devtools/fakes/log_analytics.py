"""Log Analytics in the fake: ``/v1/workspaces/{id}/query`` and ``/v1/$batch``.

Queries are answered with the tables set by ``set_log_analytics_tables`` (per workspace, or for any),
optionally with a partial error beside them, or by ``log_analytics_handler(workspace, body)``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from devtools.fakes.records import FakeResponse, RecordedRequest, coerce
from devtools.fakes.server import FakeServer


class LogAnalyticsFake(FakeServer):
    """The Log Analytics part of ``AzureFake``."""

    def _init_state(self) -> None:
        super()._init_state()
        self._la_tables: dict[str, list[dict]] = {}
        self._la_error: dict[str, dict | None] = {}
        #: ``fn(workspace_id, body) -> dict | FakeResponse`` answering Log Analytics queries
        #: (``body`` has ``query`` and ``timespan``); None: the tables set with
        #: ``set_log_analytics_tables``.
        self.log_analytics_handler: Callable[[str, dict], Any] | None = None

    @staticmethod
    def la_table(columns: Iterable[Any], rows: Iterable[Iterable[Any]], name: str = "PrimaryResult") -> dict:
        """A Log Analytics table; columns as {"name","type"} dicts or (name, type) pairs."""
        cols = [c if isinstance(c, dict) else {"name": c[0], "type": c[1]} for c in columns]
        return {"name": name, "columns": cols, "rows": [list(r) for r in rows]}

    def set_log_analytics_tables(
        self,
        tables: Iterable[Mapping[str, Any]],
        *,
        workspace: str | None = None,
        partial_error: Mapping[str, Any] | str | None = None,
    ) -> None:
        """Answer queries (to ``workspace``, or any) with these tables; ``partial_error``
        adds an "error" beside them (the SDK then returns a LogsQueryPartialResult)."""
        if isinstance(partial_error, str):
            partial_error = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [{"code": "EngineError", "message": partial_error}],
            }
        with self._lock:
            self._la_tables[(workspace or "*").lower()] = [copy.deepcopy(dict(t)) for t in tables]
            self._la_error[(workspace or "*").lower()] = copy.deepcopy(dict(partial_error)) if partial_error else None

    def log_analytics_queries(self) -> list[dict]:
        """[{"workspace", "query", "timespan", "body"}] for each query received (batch items included)."""
        out = []
        for r in self.requests(api="logs"):
            m = re.match(r"^/v1/workspaces/([^/]+)/query$", r.path)
            if m and isinstance(r.body, dict):
                out.append(
                    {
                        "workspace": m.group(1),
                        "query": r.body.get("query"),
                        "timespan": r.body.get("timespan"),
                        "body": r.body,
                    }
                )
            elif r.path == "/v1/$batch" and isinstance(r.body, dict):
                for item in r.body.get("requests") or []:
                    b = item.get("body") or {}
                    out.append(
                        {
                            "workspace": item.get("workspace"),
                            "query": b.get("query"),
                            "timespan": b.get("timespan"),
                            "body": b,
                        }
                    )
        return out

    def _la_result(self, workspace: str, body: dict) -> FakeResponse:
        if self.log_analytics_handler is not None:
            return coerce(self.log_analytics_handler(workspace, copy.deepcopy(body)))
        key = workspace.lower() if workspace.lower() in self._la_tables else "*"
        tables = self._la_tables.get(key) or [{"name": "PrimaryResult", "columns": [], "rows": []}]
        result: dict[str, Any] = {"tables": copy.deepcopy(tables)}
        if self._la_error.get(key):
            result["error"] = copy.deepcopy(self._la_error[key])
        return FakeResponse(200, result)

    def _logs_answer(self, req: RecordedRequest) -> FakeResponse:
        m = re.match(r"^/v1/workspaces/([^/]+)/query$", req.path)
        if m and req.method == "POST":
            if not isinstance(req.body, dict) or not req.body.get("query"):
                return FakeResponse(
                    400,
                    {
                        "error": {
                            "code": "BadArgumentError",
                            "message": "The request had some invalid properties",
                            "details": [{"code": "QueryValidationError", "message": "query is required"}],
                        }
                    },
                )
            return self._la_result(m.group(1), req.body)
        if req.path == "/v1/$batch" and req.method == "POST":
            responses = []
            for item in (req.body or {}).get("requests") or []:
                r = self._la_result(item.get("workspace") or "", item.get("body") or {})
                responses.append(
                    {
                        "id": item.get("id"),
                        "status": r.status,
                        "body": r.body,
                        "headers": {"Content-Type": "application/json; charset=utf-8"},
                    }
                )
            return FakeResponse(200, {"responses": responses})
        return FakeResponse(
            404, {"error": {"code": "PathNotFoundError", "message": f"The requested path does not exist: {req.path}"}}
        )
