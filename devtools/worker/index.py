"""The app's functions as the worker indexes them, and how one is called.

``function_index(app)`` calls ``app.get_functions()`` once per app (a second call raises) and
indexes the functions by name, trigger type and HTTP route (ASP.NET-style route templates:
literal segments win over parameters, matching ignores case). ``FunctionIndex.invoke`` passes the
bindings by parameter name like the worker: the trigger, each durable client binding as the JSON
string the extension passes, ``context`` if declared, and a recording ``Out`` per output binding.
"""

from __future__ import annotations

import inspect
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from devtools.worker.context import InvocationContext, Out
from devtools.worker.loop import run_coroutine

HTTP_TRIGGER = "httpTrigger"
TIMER_TRIGGER = "timerTrigger"
ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
ENTITY_TRIGGER = "entityTrigger"
DURABLE_CLIENT = "durableClient"

_ALL_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


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
                params.update(m.groupdict())
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
            route = entry.route
            params = route.match(segments) if route else None
            if route is not None and params is not None:
                candidates.append((route.precedence, order, entry, params))
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
        out_objects: list[tuple[str, Out]] = []
        for b in entry.bindings:
            if b is entry.trigger or b.name in kwargs or b.name == "$return":
                continue
            if getattr(b, "type", None) == DURABLE_CLIENT:
                continue
            if b.name not in params:
                continue
            if getattr(b, "direction", 0) == 1:  # BindingDirection.OUT
                out = Out()
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
