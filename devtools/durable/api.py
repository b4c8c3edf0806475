"""The durable extension's HTTP API: what ``DurableOrchestrationClient`` and the webhook URLs call.

Served on a loopback plain-HTTP server (``rpcBaseUrl`` ``/durabletask/...`` and the webhooks
``/runtime/webhooks/durabletask/...``), and also callable directly (``handle_api_request``, which
``LocalFunctionsRuntime.http`` uses for status URLs sent to the app's own origin). Status codes and
bodies are the ones the client relies on: start 202 (409 over a running instance), status
200/202/404 (500 on failure if asked), raise event 202/404/410/400, terminate 202/404/410, purge
200/404/412. Requests only enqueue work: whoever drives the host runs it.
"""

from __future__ import annotations

import json
import logging
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devtools.durable.history import (
    EVENT_RAISED,
    EXECUTION_TERMINATED,
    ORCHESTRATOR_COMPLETED,
    ORCHESTRATOR_STARTED,
    TERMINAL,
    history_view,
    iso_seconds,
    json_bool,
    parse,
)
from devtools.durable.state import DurableState, InstanceAlreadyExistsError

logger = logging.getLogger("devtools.durable")

Response = tuple[int, dict[str, str], bytes]


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_handler(api: DurableApi) -> type[BaseHTTPRequestHandler]:
    """The request handler class of ``api``'s loopback server."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: no stale pools

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            path = parts.path
            for prefix in ("/runtime/webhooks/durabletask", "/durabletask"):
                if path.lower().startswith(prefix):
                    path = path[len(prefix) :]
                    break
            else:
                path = "/__unknown__"
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            status, headers, payload = api.handle_api_request(
                self.command, path, query, dict(self.headers.items()), body
            )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _handle

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet
            logger.debug("durable api: " + fmt, *args)

    return Handler


# ---------------------------------------------------------------------------
# the host
# ---------------------------------------------------------------------------


class DurableApi(DurableState):
    """The HTTP API of the host (see module docstring)."""

    # ---------------------------------------------------------- HTTP API
    def handle_api_request(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Response:
        """Serve one request of the extension's HTTP API.

        ``path`` is relative to ``/durabletask`` (RPC) or
        ``/runtime/webhooks/durabletask`` (webhooks): e.g. ``/instances/ID``.
        Returns (status, headers, body).
        """
        method = method.upper()
        segments = [s for s in unquote(path).strip("/").split("/") if s]
        try:
            if segments and segments[0].lower() == "orchestrators" and len(segments) in (2, 3):
                if method != "POST":
                    return _empty(404)
                return self._api_start(segments[1], segments[2] if len(segments) == 3 else None, query, body)
            if segments and segments[0].lower() == "instances":
                if len(segments) == 1:
                    if method == "GET":
                        return self._api_list(query)
                    if method == "DELETE":
                        return self._api_purge_filter(query)
                    return _empty(404)
                instance_id = segments[1]
                if len(segments) == 2:
                    if method == "GET":
                        return self._api_status(instance_id, query)
                    if method == "DELETE":
                        return self._api_purge(instance_id)
                    return _empty(404)
                operation = segments[2].lower()
                if method != "POST":
                    return _empty(404)
                if operation == "raiseevent" and len(segments) == 4:
                    return self._api_raise(instance_id, segments[3], headers, body)
                if len(segments) == 3 and operation == "terminate":
                    return self._api_terminate(instance_id, query.get("reason") or "")
                if len(segments) == 3 and operation in ("suspend", "resume", "rewind", "restart"):
                    return _json_response(501, {"Message": f"'{operation}' is not implemented by LocalDurableHost"})
                return _empty(404)
            if segments and segments[0].lower() == "entities":
                return _json_response(501, {"Message": "Durable entities are not implemented by LocalDurableHost"})
            return _empty(404)
        except Exception as exc:  # pragma: no cover - reported like the extension
            logger.exception("durable api error")
            return _json_response(
                500,
                {
                    "Message": "Something went wrong while processing your request",
                    "ExceptionMessage": str(exc),
                    "ExceptionType": type(exc).__name__,
                },
            )

    def _api_start(self, name: str, instance_id: str | None, query: dict[str, str], body: bytes) -> Response:
        if self.functions.orchestrator(name) is None:
            return _json_response(
                400,
                {
                    "Message": "One or more of the arguments submitted is incorrect",
                    "ExceptionMessage": f"The function '{name}' doesn't exist, is disabled, or is "
                    "not an orchestrator function. Additional info: the "
                    "LocalDurableHost knows these orchestrators: "
                    + ", ".join(sorted(e.name for e in self.functions.by_trigger("orchestrationTrigger"))),
                    "ExceptionType": "System.ArgumentException",
                    "StackTrace": None,
                },
            )
        text = body.decode("utf-8") if body else None
        input_ctx: str | None = None
        if text:
            try:
                token = json.loads(text)
            except ValueError as exc:
                return _json_response(400, {"Message": "Invalid JSON content", "ExceptionMessage": str(exc)})
            if token is not None:
                input_ctx = token if isinstance(token, str) else json.dumps(token)
        instance_id = instance_id or uuid.uuid4().hex
        try:
            self._validate_instance_id(instance_id)
        except ValueError as exc:
            return _json_response(
                400, {"Message": str(exc), "ExceptionMessage": str(exc), "ExceptionType": "System.ArgumentException"}
            )
        with self._lock:
            try:
                self._create_instance(name, instance_id, input_ctx, text or None, version=query.get("version") or "")
            except InstanceAlreadyExistsError as exc:
                return _json_response(409, {"Message": str(exc)})
        payload = self.management_urls(instance_id)
        return _json_response(202, payload, {"Location": payload["statusQueryGetUri"], "Retry-After": "10"})

    def _status_payload(self, inst: dict, show_history: bool, show_history_output: bool, show_input: bool) -> dict:
        payload: dict[str, Any] = {
            "name": inst["name"],
            "instanceId": inst["instance_id"],
            "runtimeStatus": inst["status"],
            "input": None,
            "customStatus": inst["custom_status"],
            "output": inst["output"],
            "createdTime": iso_seconds(parse(inst["created"])),
            "lastUpdatedTime": iso_seconds(parse(inst["updated"])),
        }
        if show_input and inst["input_raw"] is not None:
            try:
                payload["input"] = json.loads(inst["input_raw"])
            except ValueError:
                payload["input"] = inst["input_raw"]
        if show_history:
            payload["historyEvents"] = [
                history_view(e, show_history_output)
                for e in inst["history"]
                if e["EventType"] not in (ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED)
            ]
        return payload

    def _api_status(self, instance_id: str, query: dict[str, str]) -> Response:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return _empty(404)
            payload = self._status_payload(
                inst,
                json_bool(query.get("showHistory"), False),
                json_bool(query.get("showHistoryOutput"), False),
                json_bool(query.get("showInput"), True),
            )
            status = inst["status"]
        if status in ("Running", "Pending", "ContinuedAsNew", "Suspended"):
            return _json_response(202, payload, {"Retry-After": "5"})
        if status == "Failed" and json_bool(query.get("returnInternalServerErrorOnFailure"), False):
            return _json_response(500, payload)
        return _json_response(200, payload)

    def _api_list(self, query: dict[str, str]) -> Response:
        statuses = {s.strip() for s in (query.get("runtimeStatus") or "").split(",") if s.strip()}
        prefix = query.get("instanceIdPrefix")
        created_from = parse(query["createdTimeFrom"]) if query.get("createdTimeFrom") else None
        created_to = parse(query["createdTimeTo"]) if query.get("createdTimeTo") else None
        show_input = json_bool(query.get("showInput"), False)
        with self._lock:
            result = []
            for inst in self._instances.values():
                created = parse(inst["created"])
                if statuses and inst["status"] not in statuses:
                    continue
                if prefix and not inst["instance_id"].startswith(prefix):
                    continue
                if created_from and created < created_from:
                    continue
                if created_to and created > created_to:
                    continue
                result.append(self._status_payload(inst, False, False, show_input))
        return _json_response(200, result)

    def _api_terminate(self, instance_id: str, reason: str) -> Response:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return _empty(404)
            if inst["status"] in TERMINAL:
                return _empty(410)
            self._enqueue(inst, self._ev(EXECUTION_TERMINATED, Input=reason), execution_scoped=False)
        return _empty(202)

    def _api_raise(self, instance_id: str, event_name: str, headers: dict[str, str], body: bytes) -> Response:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return _empty(404)
            if inst["status"] in TERMINAL:
                return _empty(410)
            content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
            if content_type.split(";")[0].strip().lower() != "application/json":
                return _json_response(400, {"Message": "Only application/json request content is supported"})
            try:
                token = json.loads(body.decode("utf-8"))
            except ValueError as exc:
                return _json_response(400, {"Message": "Invalid JSON content", "ExceptionMessage": str(exc)})
            self._enqueue(
                inst, self._ev(EVENT_RAISED, Name=event_name, Input=json.dumps(token)), execution_scoped=False
            )
        return _empty(202)

    def _api_purge(self, instance_id: str) -> Response:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return _empty(404)
            if inst["status"] not in TERMINAL:
                return _json_response(
                    412,
                    (
                        "Only orchestrations in a terminal state can be purged, but the "
                        f"orchestration with instance ID {instance_id} has status {inst['status']}"
                    ),
                )
            del self._instances[instance_id]
        return _json_response(200, {"instancesDeleted": 1})

    def _api_purge_filter(self, query: dict[str, str]) -> Response:
        if not query.get("createdTimeFrom"):
            return _json_response(400, "Please provide value for 'createdTimeFrom' parameter.")
        created_from = parse(query["createdTimeFrom"])
        created_to = parse(query["createdTimeTo"]) if query.get("createdTimeTo") else None
        statuses = {s.strip() for s in (query.get("runtimeStatus") or "").split(",") if s.strip()}
        with self._lock:
            doomed = [
                iid
                for iid, inst in self._instances.items()
                if inst["status"] in TERMINAL
                and (not statuses or inst["status"] in statuses)
                and parse(inst["created"]) >= created_from
                and (created_to is None or parse(inst["created"]) <= created_to)
            ]
            for iid in doomed:
                del self._instances[iid]
        if not doomed:
            return _empty(404)
        return _json_response(200, {"instancesDeleted": len(doomed)})


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    out = {"Content-Type": "application/json; charset=utf-8"}
    out.update(headers or {})
    return status, out, json.dumps(payload).encode("utf-8")


def _empty(status: int) -> Response:
    return status, {}, b""
