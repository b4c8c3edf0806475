"""Run an Azure Functions v2-model app's real handlers in-process.

``LocalFunctionsRuntime(app)`` indexes the functions a ``func.FunctionApp`` /
``df.DFApp`` registered (blueprints included) and lets a test or a demo call
them the way the Functions host and the Python worker would:

    with LocalFunctionsRuntime(app, now=datetime(2024, 5, 1, tzinfo=timezone.utc)) as rt:
        resp = rt.http("POST", "/api/alerts", body={"score": 9})     # real HttpRequest
        rt.timer("poll_log_analytics", past_due=True)                 # real TimerRequest
        rt.durable.advance(timedelta(minutes=15))                     # durable timers fire
        rt.durable.status(instance_id)["runtimeStatus"]

What is faithful to the real host/worker
----------------------------------------
* Function discovery is the worker's: ``app.get_functions()`` (called exactly
  once per app object; the result is cached per app, because a second call
  raises), function names from ``get_function_name()``, bindings read from the
  ``Function`` objects (HTTP route template and methods, timer, durable client,
  orchestration and activity triggers).
* HTTP: the route prefix (``api``) and ASP.NET-style route templates
  (``incidents/{id}/ack``, ``{id:int}``, optional ``{id?}``, catch-all
  ``{*rest}``), literal segments win over parameters, matching is
  case-insensitive.  The function receives a real ``azure.functions.HttpRequest``
  (method, url, headers, params, route_params, body bytes) and may return an
  ``HttpResponse`` or a ``str`` (200, text/plain) like the worker's converter.
* Parameters are passed by name like the worker does: the trigger argument,
  each ``durable_client_input`` binding as the JSON *string* the Durable
  extension passes (the SDK's async wrapper builds the real
  ``DurableOrchestrationClient`` from it), and ``context`` when the function
  declares it.
* Async functions run on ONE long-lived event loop in a background thread,
  shared by every runtime in the process, as the worker does.  (The durable
  SDK keeps a module-global aiohttp session bound to the loop that created
  it; ``asyncio.run`` per call, or a loop per runtime, breaks it.)  Sync
  functions are called directly in the caller's thread.
* Unhandled exceptions in an HTTP function become a 500 response (like the
  host) unless ``raise_errors=True``; they are also kept in ``runtime.errors``.

What is simplified
------------------
* No auth: function keys / auth levels are not checked.
* host.json is only read if given (``host_json=``), and then only for the
  route prefix, the task hub name and ``overridableExistingInstanceStates``.
* Only HTTP, timer, durable client, orchestration and activity bindings are
  wired.  Other *input* bindings are not resolved (pass them yourself with
  ``runtime.invoke(name, **kwargs)``); other *output* bindings receive a
  simple ``func.Out`` whose values are recorded in ``runtime.outputs``.
* An HTTP function that returns ``None`` gets a 204; other non-HttpResponse,
  non-str return values are a 500.  Timer functions are invoked on demand
  (``runtime.timer``), never on their CRON schedule.
* After every ``http()``/``timer()``/``invoke()`` call the runtime drives the
  durable host until idle (``auto_run=True``), i.e. orchestrations started or
  events raised by the call have been processed when the call returns.  The
  real host does this asynchronously "soon after".

Gotchas for app authors (true on the real worker as well)
---------------------------------------------------------
* A function with ``durable_client_input`` must be ``async def`` (the SDK's
  wrapper awaits it); this runtime says so explicitly instead of failing
  with "object HttpResponse can't be used in 'await' expression".
* Bindings are matched to parameters BY NAME: ``route(trigger_arg_name=...)``
  / ``client_name=`` / ``input_name=`` must equal the parameter names, and an
  orchestrator's ``context_name`` must be ``"context"`` (the SDK's wrapper
  takes ``context``).
* Call ``app.get_functions()`` at most once per app object (build a fresh
  app per test run, or pass the same app to every runtime: the index is
  cached per app).
* Sync handlers run in the caller's thread, async ones on the shared loop:
  never block the loop, and never call the runtime synchronously from an
  async handler (it raises instead of deadlocking).

Pieces: ``devtools.worker`` indexes and calls the functions (what the Python worker
does), ``devtools.durable`` is the Durable Functions side (``LocalDurableHost``); this
module is the host around them: HTTP and timer triggers, and the durable wiring.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import traceback
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import azure.functions as func
from azure.functions import _abc as func_abc
from azure.functions.timer import TimerRequest

from devtools.durable import LocalDurableHost
from devtools.worker.index import TIMER_TRIGGER, function_index
from devtools.worker.loop import background_loop

logger = logging.getLogger("devtools.functions_runtime")

__all__ = ["LocalFunctionsRuntime"]

# Concurrent first calls (several request threads) must share one durable host.
_DURABLE_CREATE_LOCK = threading.Lock()

BodyType = bytes | bytearray | str | dict | list | None


class LocalFunctionsRuntime:
    """The app's registered functions, callable in-process like the host would.

    Parameters
    ----------
    app:
        A ``FunctionApp``/``DFApp`` (or the list from ``app.get_functions()``).
    now:
        Start of the durable host's simulated clock (aware UTC datetime).
    durable_state:
        A ``LocalDurableHost.export_state()`` snapshot to resume from (a "host
        restart").
    auto_run:
        Drive the durable host until idle after every call (default True).
    base_url / route_prefix:
        Used to build ``HttpRequest.url`` and to strip the ``/api`` prefix.
    raise_errors:
        Re-raise exceptions from HTTP functions instead of answering 500.
    durable_options:
        Extra keyword arguments for ``LocalDurableHost``.
    host_json:
        Path of the app's host.json: ``extensions.http.routePrefix``,
        ``extensions.durableTask.hubName``,
        ``overridableExistingInstanceStates`` and ``maxConcurrentActivityFunctions`` (how many
        activities of a fan-out run at once) are honoured (nothing else).
    """

    def __init__(
        self,
        app: Any,
        *,
        now: datetime | None = None,
        durable_state: dict | None = None,
        auto_run: bool = True,
        base_url: str = "http://localhost:7071",
        route_prefix: str = "api",
        raise_errors: bool = False,
        task_hub: str = "TestHubName",
        invoke_timeout: float = 120.0,
        durable_options: dict[str, Any] | None = None,
        host_json: str | os.PathLike[str] | None = None,
    ) -> None:
        durable_options = dict(durable_options or {})
        max_activities: int | None = None
        if host_json is not None:
            with open(host_json, encoding="utf-8") as fh:
                extensions = json.load(fh).get("extensions") or {}
            route_prefix = (extensions.get("http") or {}).get("routePrefix", route_prefix)
            durable_task = extensions.get("durableTask") or {}
            task_hub = durable_task.get("hubName", task_hub)
            max_activities = durable_task.get("maxConcurrentActivityFunctions")
            if "overridableExistingInstanceStates" in durable_task:
                durable_options.setdefault(
                    "overridable_existing_instance_states", durable_task["overridableExistingInstanceStates"]
                )
        self.functions = function_index(app)
        self.base_url = base_url.rstrip("/")
        self.route_prefix = route_prefix.strip("/")
        self.auto_run = auto_run
        self.raise_errors = raise_errors
        self.invoke_timeout = invoke_timeout
        self.errors: list[BaseException] = []
        self.outputs: list[tuple[str, str, Any]] = []
        self._now = now
        self._durable_state = durable_state
        self._task_hub = task_hub
        self._durable_options = durable_options
        self._max_activities = int(max_activities) if max_activities else None
        self._durable: LocalDurableHost | None = None
        self._closed = False
        background_loop()

    # -- durable -----------------------------------------------------------
    @property
    def durable(self) -> LocalDurableHost:
        """The ``LocalDurableHost`` behind the app's durable client bindings."""
        if self._durable is not None:
            return self._durable
        with _DURABLE_CREATE_LOCK:
            if self._durable is not None:
                return self._durable
            if self._closed:
                raise RuntimeError("runtime is closed")
            options = dict(self._durable_options)
            options.setdefault("task_hub", self._task_hub)
            if self._durable_state is not None:
                self._durable = LocalDurableHost.from_state(self._durable_state, self.functions, **options)
            else:
                self._durable = LocalDurableHost(self.functions, now=self._now, **options)
            if self._max_activities:
                self._durable.max_concurrent_activities = self._max_activities
        return self._durable

    def _client_binding(self, task_hub: str | None, connection: str | None) -> str:
        return self.durable.client_binding_json(task_hub=task_hub, connection_name=connection)

    def _after_call(self) -> None:
        if self.auto_run and self._durable is not None:
            self._durable.run_until_idle()

    # -- generic invoke ------------------------------------------------------
    def invoke(self, name: str, **kwargs: Any) -> Any:
        """Call any function by name with explicit binding values.

        Durable client bindings and ``context`` are filled in if not given.
        """
        entry = self.functions.get(name)
        if entry is None:
            raise KeyError(f"no function named {name!r}; known: {sorted(self.functions.entries)}")
        try:
            return self.functions.invoke(entry, kwargs, self._client_binding, self.outputs, self.invoke_timeout)
        finally:
            self._after_call()

    # -- timer -----------------------------------------------------------------
    def timer(self, name: str, past_due: bool = False) -> Any:
        """Invoke a timer-triggered function with a real ``TimerRequest``."""
        entry = self.functions.get(name)
        if entry is None or entry.trigger_type != TIMER_TRIGGER:
            timers = [e.name for e in self.functions.by_trigger(TIMER_TRIGGER)]
            raise KeyError(f"no timer function named {name!r}; timer functions: {timers}")
        request = TimerRequest(past_due=past_due)
        try:
            return self.functions.invoke(
                entry, {entry.trigger_name: request}, self._client_binding, self.outputs, self.invoke_timeout
            )
        finally:
            self._after_call()

    # -- http ------------------------------------------------------------------
    def routes(self) -> list[tuple[str, str, str]]:
        return self.functions.routes()

    def http(
        self,
        method: str,
        path: str,
        body: BodyType = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> func.HttpResponse:
        """Send one HTTP request to the app and return its ``HttpResponse``.

        ``path`` is ``/api/...`` (or a full URL on any origin, e.g. a
        ``statusQueryGetUri``); a query string in it is merged with
        ``params``.  ``body`` may be bytes, str, or a dict/list (JSON-encoded
        with ``Content-Type: application/json``).
        """
        method = method.upper()
        parts = urlsplit(path)
        raw_path = parts.path or "/"
        query: dict[str, str] = dict(parse_qsl(parts.query, keep_blank_values=True))
        query.update(params or {})
        hdrs: dict[str, str] = dict(headers or {})
        lower = {k.lower() for k in hdrs}
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode("utf-8")
            if "content-type" not in lower:
                hdrs["Content-Type"] = "application/json"
        elif isinstance(body, str):
            data = body.encode("utf-8")
        elif body is None:
            data = b""
        else:
            data = bytes(body)

        webhook_prefix = "/runtime/webhooks/durabletask"
        if raw_path.lower().startswith(webhook_prefix):
            status, resp_headers, resp_body = self.durable.handle_api_request(
                method, raw_path[len(webhook_prefix) :], query, hdrs, data
            )
            response = func.HttpResponse(resp_body, status_code=status, headers=resp_headers)
            self._after_call()
            return response

        segments = [unquote(s) for s in raw_path.split("/") if s]
        prefix = [s for s in self.route_prefix.split("/") if s]
        if [s.lower() for s in segments[: len(prefix)]] != [p.lower() for p in prefix]:
            return func.HttpResponse("Not Found", status_code=404)
        segments = segments[len(prefix) :]
        entry, route_params, path_matched = self.functions.match_route(method, segments)
        if entry is None:
            if path_matched:
                return func.HttpResponse("Method Not Allowed", status_code=405)
            return func.HttpResponse("Not Found", status_code=404)

        url = self.base_url + raw_path + (("?" + urlencode(query)) if query else "")
        request = func.HttpRequest(
            method=method, url=url, headers=hdrs, params=query, route_params=route_params, body=data
        )
        try:
            result = self.functions.invoke(
                entry, {entry.trigger_name: request}, self._client_binding, self.outputs, self.invoke_timeout
            )
            response = _to_http_response(result, entry.name)
        except Exception as exc:
            self.errors.append(exc)
            if self.raise_errors:
                self._after_call()
                raise
            logger.error("Executed 'Functions.%s' (Failed): %s\n%s", entry.name, exc, traceback.format_exc())
            response = func.HttpResponse(
                f"Exception while executing function: Functions.{entry.name}. {type(exc).__name__}: {exc}",
                status_code=500,
            )
        self._after_call()
        return response

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        """Stop the durable host's loopback server (the shared loop stays up)."""
        self._closed = True
        if self._durable is not None:
            self._durable.close()

    def __enter__(self) -> LocalFunctionsRuntime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _to_http_response(result: Any, name: str) -> func.HttpResponse:
    if isinstance(result, func.HttpResponse):
        return result
    if isinstance(result, func_abc.HttpResponse):  # pragma: no cover - other impls
        return func.HttpResponse(
            result.get_body(), status_code=result.status_code, headers=dict(result.headers), mimetype=result.mimetype
        )
    if isinstance(result, (str, bytes)):
        return func.HttpResponse(result, status_code=200)
    if result is None:
        return func.HttpResponse(status_code=204)
    raise TypeError(
        f"function {name!r} returned {type(result).__name__}; the HTTP output binding accepts HttpResponse or str"
    )
