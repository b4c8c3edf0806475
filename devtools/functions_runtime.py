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

See ``devtools/durable_host.py`` for the Durable Functions side.
"""

from __future__ import annotations

import asyncio
import atexit
import inspect
import json
import logging
import os
import re
import threading
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import azure.functions as func
from azure.functions import _abc as func_abc
from azure.functions.timer import TimerRequest

logger = logging.getLogger("devtools.functions_runtime")

__all__ = [
    "FunctionEntry",
    "FunctionIndex",
    "LocalFunctionsRuntime",
    "background_loop",
    "function_index",
    "run_coroutine",
]

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"
DURABLE_CLIENT = "durableClient"

_ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


# --------------------------------------------------------------------------
# The shared event loop (one per process, like the worker's)
# --------------------------------------------------------------------------

_DURABLE_CREATE_LOCK = threading.Lock()


class _LoopThread:
    """A daemon thread running one asyncio loop for the whole process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="functions-runtime-loop", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def stop(self) -> None:
        if self.loop.is_closed():
            return

        async def _shutdown() -> None:
            try:  # close the durable SDK's shared aiohttp session, if any
                from azure.durable_functions.models.utils import http_utils

                await http_utils._close_session()
            except Exception:  # pragma: no cover - best effort at exit
                pass

        try:
            asyncio.run_coroutine_threadsafe(_shutdown(), self.loop).result(5)
        except Exception:  # pragma: no cover
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


_LOOP: _LoopThread | None = None
_LOOP_LOCK = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """The process-wide event loop async functions run on (started lazily)."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None:
            _LOOP = _LoopThread()
            atexit.register(_LOOP.stop)
        return _LOOP.loop


def _forget_foreign_durable_session(loop: asyncio.AbstractEventLoop) -> None:
    """Drop the durable SDK's global aiohttp session if another loop made it.

    ``azure.durable_functions.models.utils.http_utils`` caches one
    ``aiohttp.ClientSession`` per process; a session created by a different
    (possibly closed) loop cannot be used from ours.
    """
    try:
        from azure.durable_functions.models.utils import http_utils
    except Exception:  # pragma: no cover
        return
    session = getattr(http_utils, "_client_session", None)
    if session is not None and getattr(session, "_loop", loop) is not loop:
        http_utils._client_session = None


def run_coroutine(coro, timeout: float | None = 120.0) -> Any:
    """Run ``coro`` on the shared loop from a non-loop thread and wait for it."""
    loop = background_loop()
    if threading.current_thread() is _LOOP.thread:  # type: ignore[union-attr]
        coro.close()
        raise RuntimeError(
            "devtools: a function running on the runtime's event loop called the "
            "runtime synchronously (this would deadlock). Call it from a test/driver "
            "thread instead."
        )
    _forget_foreign_durable_session(loop)
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


# --------------------------------------------------------------------------
# Function index
# --------------------------------------------------------------------------


@dataclass
class _RouteSegment:
    # precedence: 0 literal, 1 complex, 2 constrained, 3 param, 4 optional, 5 catch-all
    kind: int
    literal: str = ""
    name: str = ""
    regex: re.Pattern | None = None
    names: tuple[str, ...] = ()


_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "alpha": r"[A-Za-z]+",
    "guid": r"(?i:\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?)",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
    "datetime": r".+",
}

_PARAM_RE = re.compile(r"^\{(\*{1,2})?([A-Za-z_][A-Za-z0-9_]*)((?::[^}?=]+)*)(\?)?(?:=[^}]*)?\}$")


class RouteTemplate:
    """An ASP.NET-style route template as the Functions host understands it."""

    def __init__(self, template: str) -> None:
        self.template = template.strip("/")
        self.segments: list[_RouteSegment] = []
        for raw in [s for s in self.template.split("/") if s]:
            m = _PARAM_RE.match(raw)
            if m:
                star, name, constraints, optional = m.group(1), m.group(2), m.group(3), m.group(4)
                if star:
                    self.segments.append(_RouteSegment(5, name=name))
                    continue
                regex = None
                for c in [c for c in constraints.split(":") if c]:
                    base = c.split("(")[0].lower()
                    if base in _CONSTRAINTS:
                        regex = re.compile(_CONSTRAINTS[base])
                if optional:
                    self.segments.append(_RouteSegment(4, name=name, regex=regex))
                elif regex is not None:
                    self.segments.append(_RouteSegment(2, name=name, regex=regex))
                else:
                    self.segments.append(_RouteSegment(3, name=name))
            elif "{" in raw:
                names: list[str] = []
                pattern = ""
                for piece in re.split(r"(\{[^}]+\})", raw):
                    pm = _PARAM_RE.match(piece) if piece.startswith("{") else None
                    if pm:
                        names.append(pm.group(2))
                        pattern += f"(?P<{pm.group(2)}>.+?)"
                    else:
                        pattern += re.escape(piece)
                self.segments.append(_RouteSegment(1, regex=re.compile(pattern, re.I), names=tuple(names)))
            else:
                self.segments.append(_RouteSegment(0, literal=raw.lower()))

    @property
    def precedence(self) -> tuple[int, ...]:
        return tuple(s.kind for s in self.segments)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        params: dict[str, str] = {}
        i = 0
        for seg in self.segments:
            if seg.kind == 5:
                params[seg.name] = "/".join(segments[i:])
                return params
            if i >= len(segments):
                if seg.kind == 4:
                    continue
                return None
            value = segments[i]
            if seg.kind == 0:
                if value.lower() != seg.literal:
                    return None
            elif seg.kind == 1:
                m = seg.regex.fullmatch(value)  # type: ignore[union-attr]
                if not m:
                    return None
                params.update({k: v for k, v in m.groupdict().items()})
            else:
                if seg.regex is not None and not seg.regex.fullmatch(value):
                    return None
                params[seg.name] = value
            i += 1
        return params if i == len(segments) else None


@dataclass
class FunctionEntry:
    """One indexed function and what the runtime needs to call it."""

    name: str
    function: Any  # azure.functions.decorators.function_app.Function
    trigger_type: str
    trigger: Any
    user_function: Callable[..., Any]
    bindings: list[Any] = field(default_factory=list)
    #: (parameter name, task_hub, connection_name) of each durable client binding
    client_bindings: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    route: RouteTemplate | None = None
    methods: frozenset | None = None

    @property
    def trigger_name(self) -> str:
        return self.trigger.name

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    def accepts_any_keyword(self) -> bool:
        try:
            return any(
                p.kind is inspect.Parameter.VAR_KEYWORD
                for p in inspect.signature(self.user_function).parameters.values()
            )
        except (TypeError, ValueError):  # pragma: no cover
            return True

    def parameter_names(self) -> list[str]:
        try:
            return list(inspect.signature(self.user_function).parameters)
        except (TypeError, ValueError):  # pragma: no cover
            return []


class FunctionIndex:
    """The app's functions indexed by name, trigger type and HTTP route."""

    def __init__(self, functions: Iterable[Any]) -> None:
        self.entries: dict[str, FunctionEntry] = {}
        self._aliases: dict[tuple[str, str], str] = {}
        for fn in functions:
            entry = self._entry(fn)
            if entry.name in self.entries:
                raise ValueError(f"duplicate function name {entry.name!r}")
            self.entries[entry.name] = entry
        # Orchestrations/activities can carry an explicit name on the trigger
        for entry in self.entries.values():
            alias = getattr(entry.trigger, "orchestration", None) or getattr(entry.trigger, "activity", None)
            if alias and alias != entry.name:
                self._aliases.setdefault((entry.trigger_type, alias), entry.name)

    @staticmethod
    def _entry(fn: Any) -> FunctionEntry:
        trigger = fn.get_trigger()
        trigger_type = trigger.get_binding_name() if trigger is not None else ""
        entry = FunctionEntry(
            name=fn.get_function_name(),
            function=fn,
            trigger_type=trigger_type,
            trigger=trigger,
            user_function=fn.get_user_function(),
            bindings=list(fn.get_bindings()),
        )
        for b in entry.bindings:
            if getattr(b, "type", None) == DURABLE_CLIENT:
                entry.client_bindings.append(
                    (b.name, getattr(b, "task_hub", None), getattr(b, "connection_name", None))
                )
        if trigger_type == HTTP_TRIGGER:
            entry.route = RouteTemplate(getattr(trigger, "route", None) or entry.name)
            methods = getattr(trigger, "methods", None)
            if methods:
                entry.methods = frozenset((m.value if hasattr(m, "value") else str(m)).upper() for m in methods)
        return entry

    # -- lookups ---------------------------------------------------------
    def get(self, name: str) -> FunctionEntry | None:
        return self.entries.get(name)

    def by_trigger(self, trigger_type: str) -> list[FunctionEntry]:
        return [e for e in self.entries.values() if e.trigger_type == trigger_type]

    def _typed(self, trigger_type: str, name: str) -> FunctionEntry | None:
        entry = self.entries.get(name)
        if entry is None:
            alias = self._aliases.get((trigger_type, name))
            entry = self.entries.get(alias) if alias else None
        if entry is None:  # the host resolves function names case-insensitively
            for candidate in self.entries.values():
                if candidate.name.lower() == name.lower():
                    entry = candidate
                    break
        if entry is not None and entry.trigger_type == trigger_type:
            return entry
        return None

    def orchestrator(self, name: str) -> FunctionEntry | None:
        return self._typed(ORCHESTRATION_TRIGGER, name)

    def activity(self, name: str) -> FunctionEntry | None:
        return self._typed(ACTIVITY_TRIGGER, name)

    def routes(self) -> list[tuple[str, str, str]]:
        """(methods, route template, function name) for every HTTP function."""
        return [
            (",".join(sorted(e.methods or _ALL_METHODS)), e.route.template, e.name)
            for e in self.by_trigger(HTTP_TRIGGER)
            if e.route is not None
        ]

    def match_route(self, method: str, segments: list[str]) -> tuple[FunctionEntry | None, dict[str, str], bool]:
        """Best route for ``segments``: (entry, route params, path_matched)."""
        candidates = []
        for order, entry in enumerate(self.by_trigger(HTTP_TRIGGER)):
            params = entry.route.match(segments) if entry.route else None
            if params is not None:
                candidates.append((entry.route.precedence, order, entry, params))
        if not candidates:
            return None, {}, False
        allowed = [c for c in candidates if c[2].methods is None or method in c[2].methods]
        if not allowed:
            return None, {}, True
        allowed.sort(key=lambda c: (c[0], c[1]))
        return allowed[0][2], allowed[0][3], True

    # -- calling -----------------------------------------------------------
    def invoke(
        self,
        entry: FunctionEntry,
        kwargs: dict[str, Any],
        client_binding: Callable[[str | None, str | None], str] | None = None,
        outputs: list[tuple[str, str, Any]] | None = None,
        timeout: float | None = 120.0,
    ) -> Any:
        """Call ``entry``'s user function the way the Python worker does."""
        kwargs = dict(kwargs)
        params = entry.parameter_names()
        for name, task_hub, connection in entry.client_bindings:
            if name not in kwargs:
                if client_binding is None:
                    raise RuntimeError(
                        f"function {entry.name!r} has a durable client binding but no durable host is available"
                    )
                kwargs[name] = client_binding(task_hub, connection)
        out_objects: list[tuple[str, _Out]] = []
        for b in entry.bindings:
            if b is entry.trigger or b.name in kwargs or b.name == "$return":
                continue
            if getattr(b, "type", None) == DURABLE_CLIENT:
                continue
            if b.name not in params:
                continue
            if getattr(b, "direction", 0) == 1:  # BindingDirection.OUT
                out = _Out()
                kwargs[b.name] = out
                out_objects.append((b.name, out))
            else:
                raise RuntimeError(
                    f"function {entry.name!r}: input binding {b.name!r} of type "
                    f"{getattr(b, 'type', '?')!r} is not provided by LocalFunctionsRuntime; "
                    "pass it explicitly with runtime.invoke(name, **{...})"
                )
        if "context" in params and "context" not in kwargs:
            kwargs["context"] = InvocationContext(entry.name)
        if not entry.accepts_any_keyword():
            unknown = [k for k in kwargs if k not in params]
            if unknown:
                raise TypeError(
                    f"function {entry.name!r} has no parameter named {unknown} for its "
                    f"binding(s); parameters are {params}. The Python worker matches "
                    "bindings to parameters by name and would refuse to index it."
                )
        fn = entry.user_function
        wrapped = getattr(fn, "client_function", None)
        if entry.client_bindings and wrapped is not None and not inspect.iscoroutinefunction(wrapped):
            raise TypeError(
                f"function {entry.name!r} has a durable client binding but is not "
                "'async def': the durable SDK's client wrapper awaits it, which fails on "
                "the real worker too. Declare it 'async def' and await the client calls."
            )
        if inspect.iscoroutinefunction(fn):
            result = run_coroutine(fn(**kwargs), timeout)
        else:
            result = fn(**kwargs)
            if inspect.isawaitable(result):
                result = run_coroutine(_await(result), timeout)
        if outputs is not None:
            for name, out in out_objects:
                if out.was_set:
                    outputs.append((entry.name, name, out.get()))
        return result


async def _await(awaitable):
    return await awaitable


class _Out(func_abc.Out):
    """A minimal ``func.Out`` for output bindings (values are recorded)."""

    def __init__(self) -> None:
        self._value: Any = None
        self.was_set = False

    def set(self, val: Any) -> None:
        self._value = val
        self.was_set = True

    def get(self) -> Any:
        return self._value


class _TraceContext(func_abc.TraceContext):
    def __init__(self) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(func_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func_abc.Context):
    """The ``context`` argument the worker passes to functions that ask for it."""

    def __init__(self, function_name: str) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._tls = threading.local()
        self._trace = _TraceContext()
        self._retry = _RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self):
        return self._tls

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return ""

    @property
    def trace_context(self):
        return self._trace

    @property
    def retry_context(self):
        return self._retry


_INDEX_CACHE: weakref.WeakKeyDictionary[Any, FunctionIndex] = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


def function_index(app_or_functions: Any) -> FunctionIndex:
    """The ``FunctionIndex`` of an app (``get_functions()`` called once per app).

    Accepts a ``FunctionApp``/``DFApp`` (indexed once and cached), a list of
    ``Function`` objects (what ``app.get_functions()`` returned), or an
    existing ``FunctionIndex``.
    """
    if isinstance(app_or_functions, FunctionIndex):
        return app_or_functions
    if isinstance(app_or_functions, (list, tuple)):
        return FunctionIndex(app_or_functions)
    app = app_or_functions
    with _INDEX_LOCK:
        cached = _INDEX_CACHE.get(app)
        if cached is not None:
            return cached
        if getattr(app, "functions_bindings", None):
            raise RuntimeError(
                "app.get_functions() was already called on this app object elsewhere "
                "(a second call raises 'does not have a unique function name'). "
                "Pass the list it returned instead: LocalFunctionsRuntime(functions)."
            )
        index = FunctionIndex(app.get_functions())
        _INDEX_CACHE[app] = index
        return index


# --------------------------------------------------------------------------
# The runtime
# --------------------------------------------------------------------------

BodyType = Union[bytes, bytearray, str, dict, list, None]


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
        ``extensions.durableTask.hubName`` and
        ``overridableExistingInstanceStates`` are honoured (nothing else).
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
        if host_json is not None:
            with open(host_json, encoding="utf-8") as fh:
                extensions = json.load(fh).get("extensions") or {}
            route_prefix = (extensions.get("http") or {}).get("routePrefix", route_prefix)
            durable_task = extensions.get("durableTask") or {}
            task_hub = durable_task.get("hubName", task_hub)
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
        self._durable = None
        self._closed = False
        background_loop()

    # -- durable -----------------------------------------------------------
    @property
    def durable(self):
        """The ``LocalDurableHost`` behind the app's durable client bindings."""
        if self._durable is not None:
            return self._durable
        # Concurrent first calls (several request threads) must share one host.
        with _DURABLE_CREATE_LOCK:
            if self._durable is not None:
                return self._durable
            if self._closed:
                raise RuntimeError("runtime is closed")
            from .durable_host import LocalDurableHost

            options = dict(self._durable_options)
            options.setdefault("task_hub", self._task_hub)
            if self._durable_state is not None:
                self._durable = LocalDurableHost.from_state(self._durable_state, self.functions, **options)
            else:
                self._durable = LocalDurableHost(self.functions, now=self._now, **options)
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
