"""A local stand-in for the Durable Functions extension (Durable Task host).

``LocalDurableHost`` runs an app's orchestrations in-process on a simulated
clock, driving them through the durable SDK's OWN replay engine: each step
builds the orchestration-trigger context JSON the extension sends to Python
workers (history + input + schema version), calls the orchestrator function
the app registered (``Orchestrator.create`` handle from the ``DFApp``
decorator), and interprets the actions JSON it returns, exactly like the
extension's out-of-proc shim.  Activities are executed for real by calling
the app's activity functions.  A loopback plain-HTTP server implements the
part of the extension's HTTP API that ``DurableOrchestrationClient`` 1.7
calls through ``rpcBaseUrl``, so durable client bindings use the REAL client.

Typical use (usually through ``LocalFunctionsRuntime.durable``)::

    host = LocalDurableHost(app, now=datetime(2024, 5, 1, 9, tzinfo=timezone.utc))
    iid = host.start_new("call_escalation", "call-INC-1", {"incident": "INC-1"})
    host.advance(timedelta(minutes=15))        # due timers fire one at a time
    host.raise_event(iid, "Ack", {"actor": "bob"})
    host.status(iid)["runtimeStatus"]          # "Completed"

Faithful to the real host (checked against SDK 1.7 source and the extension)
---------------------------------------------------------------------------
* Context JSON: ``history``, ``input``, ``instanceId``, ``isReplaying``,
  ``parentInstanceId``, ``upperSchemaVersion`` 1 + ``upperSchemaVersionNew``
  2 (the SDK then speaks replay schema V3 with WhenAny/WhenAll compound
  actions), ``maximumShortTimerDuration`` "6.00:00:00" and
  ``longRunningTimerIntervalDuration`` "3.00:00:00" (Azure Storage values).
* History wire format: OrchestratorStarted(12) whose Timestamp is the
  orchestration's ``current_utc_datetime``, ExecutionStarted(0),
  TaskScheduled(4)/TaskCompleted(5)/TaskFailed(6), TimerCreated(10)/
  TimerFired(11), EventRaised(15), SubOrchestrationInstanceCreated(7)/
  Completed(8)/Failed(9), OrchestratorCompleted(13), ExecutionCompleted(1),
  ExecutionTerminated(3).  Older episodes are sent with ``IsPlayed: true``.
* Task ids: activities, timers and sub-orchestrations share one sequence in
  scheduling order; ``call_*_with_retry`` is retried BY THE HOST (as DTFx's
  retry interceptor does): each failure records TimerCreated for a retry timer
  (first interval x backoff^n, one more timer after the last attempt, as DTFx
  does and the SDK expects), each retry a new TaskScheduled.
* Payloads: activity input is the action's JSON text decoded by the real
  ``ActivityTriggerConverter``; the return value is encoded by it
  (``df_dumps``) into TaskCompleted.Result.  A raising activity becomes
  TaskFailed with Reason "Activity function 'X' failed: Result: Failure\\n
  Exception: Type: msg\\nStack: ..." (the Python worker's failure text); an
  unknown activity name fails the task with "Activity function 'X' does not
  exist." like the extension does.
* HTTP API status codes and bodies the client relies on: start 202 + the
  management payload; start for an instance id that exists and is
  Pending/Running/ContinuedAsNew/Suspended answers **409 Conflict**
  ``{"Message": "An Orchestration instance with the status Running already
  exists."}`` (DTFx OrchestrationAlreadyExistsException; host.json default
  ``overridableExistingInstanceStates: NonRunningStates``), and the Python
  client raises ``Exception`` with that body; a Completed/Failed/Terminated
  instance is replaced by the new start.  get_status 200/202/404 (Failed is
  200 unless ``returnInternalServerErrorOnFailure``), raise_event 202/404/410
  (+400 for non-JSON), terminate 202/404/410, purge 200/404/412.
* Input/event encodings, including the Python client's double encoding:
  ``client.start_new(input=obj)`` posts ``json.dumps(df_dumps(obj))``, so the
  status ``input`` is the JSON *text* while ``context.get_input()`` returns the
  object; ``client.raise_event(id, name, obj)`` likewise posts a JSON string,
  which the extension stores as a string, so ``wait_for_external_event``
  yields ``json.dumps(obj)`` (a ``str``) — see azure-functions-durable-python
  issue #295.  Posting a raw JSON body to the ``sendEventPostUri`` webhook
  (or calling ``host.raise_event``) delivers the object itself.
* Orchestrator failure (the SDK raises with an ``$OutOfProcData$`` payload):
  instance Failed, output ``"Orchestrator function 'X' failed: <message>"``,
  custom status kept; a failing sub-orchestration fails the parent's task
  with that text.  Terminate sets the output to the reason.
* Cancelled timers (``timer.cancel()`` after ``task_any``) never fire and
  show as ``cancelled`` in ``host.timers()``.

Simplified
----------
* One new event per orchestrator episode (the extension may batch several);
  this keeps task-id allocation unambiguous and is a legal schedule.
* Nothing runs by itself: work is driven by ``run_until_idle()``,
  ``advance()``/``advance_to()`` and the direct ``start_new/raise_event/
  terminate`` helpers (``run=True``).  Requests through the HTTP API only
  enqueue (``LocalFunctionsRuntime`` drives after every call).  Activities
  take zero simulated time; timers fire only when the clock reaches them.
* Unknown orchestrator names are rejected at start with 400 (the client
  raises "The function 'X' doesn't exist, is disabled, or is not an
  orchestrator function.") instead of leaving a stuck instance.
* Not implemented: entities (call/signal), ``call_http``, suspend/resume,
  rewind, restart (HTTP 501, or the instance fails with a clear message),
  ``wait_for_completion_or_create_check_status_response`` waiting (answers
  at once), host.json, task hubs isolation (the task hub name is cosmetic),
  ``retry_timeout``.  ``showHistory`` returns a simplified event list.
* Default sub-orchestration instance ids are ``"<parent>:<taskId>"``.
* State lives in memory; ``export_state()``/``from_state()`` give a JSON
  snapshot to simulate a host restart (activities that were scheduled but
  not finished are re-run: at-least-once, like the real host).

Gotchas for app authors (all of these hold on the real host too)
----------------------------------------------------------------
* Orchestrators are generators that are re-run from the top at every step
  (replay): no I/O, no ``datetime.now()``/``uuid4()``/random — use
  ``context.current_utc_datetime`` and ``context.new_uuid()``.  Changing the
  sequence of scheduled actions for a recorded history fails the instance
  ("Non-deterministic workflow detected").
* Everything crossing an activity/sub-orchestration boundary is JSON: dicts,
  lists, str, numbers, bool and None round-trip (tuples come back as lists);
  ``datetime``, ``set``, dataclasses fail with ``TypeError`` unless the class
  has ``to_json``/``from_json``.  The activity gets the decoded JSON, never
  the caller's object.
* Event data raised with the Python client (``client.raise_event``) arrives
  as a JSON *string*: ``json.loads`` it when ``isinstance(data, str)``.
  ``client.get_status(...).input_`` is likewise the JSON text.
* An event raised before the orchestrator waits for it is buffered, but the
  SDK (issue #507) hands that same buffered event to every later
  ``wait_for_external_event`` of the same name: do not rely on waiting twice
  for one name.
* Instance ids: at most 256 chars, no slash, backslash, ``?``, ``#`` or
  control characters, not starting with ``@``; the Python client does not
  URL-encode them, so keep to letters, digits and ``-_.:``.  Starting an id that is still
  Pending/Running raises ``Exception({'Message': 'An Orchestration instance
  with the status Running already exists.'})``; a finished id is silently
  replaced and its history reset.
* ``RetryOptions`` (Python) has only the first interval and max attempts:
  the delay is constant, and after the last failed attempt the orchestrator
  still waits one more interval before the failure is raised.
* ``timer.cancel()`` the losing timer after ``task_any`` if the orchestration
  goes on; otherwise the instance keeps waiting for it on the real host.
* ``wait_for_completion_or_create_check_status_response`` inside an HTTP
  function sees no progress here (orchestrations run after the call
  returns), so it answers 202 only after its timeout: keep it small.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import traceback
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter, OrchestrationTriggerConverter
from dateutil.parser import parse as _dt_parse

from .functions_runtime import FunctionIndex, function_index

logger = logging.getLogger("devtools.durable_host")

__all__ = [
    "DurableHostError",
    "InstanceAlreadyExistsError",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "LocalDurableHost",
    "UnknownFunctionError",
]

# History event types (azure.durable_functions.models.history.HistoryEventType)
EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
EXECUTION_TERMINATED = 3
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_ORCHESTRATION_CREATED = 7
SUB_ORCHESTRATION_COMPLETED = 8
SUB_ORCHESTRATION_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13
EVENT_RAISED = 15

EVENT_NAMES = {
    0: "ExecutionStarted",
    1: "ExecutionCompleted",
    2: "ExecutionFailed",
    3: "ExecutionTerminated",
    4: "TaskScheduled",
    5: "TaskCompleted",
    6: "TaskFailed",
    7: "SubOrchestrationInstanceCreated",
    8: "SubOrchestrationInstanceCompleted",
    9: "SubOrchestrationInstanceFailed",
    10: "TimerCreated",
    11: "TimerFired",
    12: "OrchestratorStarted",
    13: "OrchestratorCompleted",
    14: "EventSent",
    15: "EventRaised",
    16: "ContinueAsNew",
    17: "GenericEvent",
    18: "HistoryState",
    19: "ExecutionSuspended",
    20: "ExecutionResumed",
}

# Action types (azure.durable_functions.models.actions.ActionType)
CALL_ACTIVITY = 0
CALL_ACTIVITY_WITH_RETRY = 1
CALL_SUB_ORCHESTRATOR = 2
CALL_SUB_ORCHESTRATOR_WITH_RETRY = 3
CONTINUE_AS_NEW = 4
CREATE_TIMER = 5
WAIT_FOR_EXTERNAL_EVENT = 6
CALL_ENTITY = 7
CALL_HTTP = 8
SIGNAL_ENTITY = 9
WHEN_ANY = 11
WHEN_ALL = 12

_UNSUPPORTED_ACTIONS = {CALL_ENTITY: "call_entity", CALL_HTTP: "call_http", SIGNAL_ENTITY: "signal_entity"}

TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
NOT_OVERRIDABLE = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})

_OUT_OF_PROC_LABEL = "\n\n$OutOfProcData$:"


class DurableHostError(Exception):
    """Base class for errors raised by LocalDurableHost's direct API."""


class InstanceNotFoundError(DurableHostError):
    pass


class InstanceGoneError(DurableHostError):
    pass


class InstanceAlreadyExistsError(DurableHostError):
    pass


class UnknownFunctionError(DurableHostError):
    pass


# ---------------------------------------------------------------------------
# time helpers
# ---------------------------------------------------------------------------


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _iso(dt: datetime) -> str:
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_seconds(dt: datetime) -> str:
    return _utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> datetime:
    return _utc(_dt_parse(value))


def _timespan(td: timedelta) -> str:
    """A .NET TimeSpan "c" string (what the extension sends)."""
    total = int(td.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{seconds:02d}"


def _flatten(actions: Any) -> list[dict]:
    """Atomic actions in scheduling order (compound WhenAny/WhenAll expanded)."""
    out: list[dict] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("actionType") in (WHEN_ANY, WHEN_ALL):
                walk(node.get("compoundActions") or [])
            else:
                out.append(node)

    walk(actions)
    return out


def _action_name(action: dict) -> str | None:
    return action.get("functionName") or action.get("externalEventName")


def _json_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() == "true"


# ---------------------------------------------------------------------------
# loopback HTTP API server
# ---------------------------------------------------------------------------


class _ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def _make_handler(host: LocalDurableHost):
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
            status, headers, payload = host.handle_api_request(
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


class LocalDurableHost:
    """An in-process Durable Task host for one app (see module docstring).

    Parameters
    ----------
    functions:
        The app (``DFApp``), the list from ``app.get_functions()``, or a
        ``FunctionIndex``.
    now:
        Initial simulated time (aware UTC; naive is taken as UTC).  Defaults
        to the current time truncated to seconds.
    task_hub / connection_name:
        Names used in the client binding and management URLs.
    start_server:
        Start the loopback HTTP API (needed for durable client bindings).
    overridable_existing_instance_states:
        "NonRunningStates" (host.json default: starting over a running
        instance is a 409) or "AnyState" (it is replaced).
    max_steps:
        Safety limit for one ``run_until_idle`` (catches endless loops).
    """

    STATE_FORMAT = "devtools.durable_host/1"

    def __init__(
        self,
        functions: Any,
        *,
        now: datetime | None = None,
        task_hub: str = "TestHubName",
        connection_name: str = "Storage",
        start_server: bool = True,
        overridable_existing_instance_states: str = "NonRunningStates",
        maximum_short_timer_duration: timedelta = timedelta(days=6),
        long_running_timer_interval: timedelta = timedelta(days=3),
        system_key: str = "local-system-key",
        max_steps: int = 10_000,
        invoke_timeout: float = 120.0,
    ) -> None:
        self.functions: FunctionIndex = function_index(functions)
        self._now = _utc(now) if now is not None else datetime.now(UTC).replace(microsecond=0)
        self.task_hub = task_hub
        self.connection_name = connection_name
        self.system_key = system_key
        self.max_steps = max_steps
        self.invoke_timeout = invoke_timeout
        self.maximum_short_timer_duration = maximum_short_timer_duration
        self.long_running_timer_interval = long_running_timer_interval
        if overridable_existing_instance_states not in ("NonRunningStates", "AnyState"):
            raise ValueError("overridable_existing_instance_states must be 'NonRunningStates' or 'AnyState'")
        self.overridable_existing_instance_states = overridable_existing_instance_states

        self._lock = threading.RLock()
        self._drive_lock = threading.Lock()
        self._driver: int | None = None
        self._instances: dict[str, dict] = {}
        self._work: deque[dict] = deque()
        self._activity_calls: list[dict] = []
        self._timer_order = 0

        self._server: _ApiServer | None = None
        self._server_thread: threading.Thread | None = None
        if start_server:
            self._server = _ApiServer(("127.0.0.1", 0), _make_handler(self))
            self._server_thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="durable-host-api", daemon=True
            )
            self._server_thread.start()

    # ------------------------------------------------------------------ basics
    @property
    def now(self) -> datetime:
        """The simulated current time (aware UTC)."""
        return self._now

    @property
    def url(self) -> str:
        """Origin of the loopback HTTP API, e.g. ``http://127.0.0.1:40123``."""
        if self._server is None:
            raise DurableHostError("this host was created with start_server=False")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def rpc_base_url(self) -> str:
        return f"{self.url}/durabletask/"

    @property
    def webhook_base_url(self) -> str:
        return f"{self.url}/runtime/webhooks/durabletask"

    def close(self) -> None:
        """Stop the loopback server (state stays inspectable)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalDurableHost:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -------------------------------------------------------- client binding
    def _query_suffix(self, task_hub: str | None = None, connection_name: str | None = None) -> str:
        return (
            f"taskHub={quote(task_hub or self.task_hub)}"
            f"&connection={quote(connection_name or self.connection_name)}"
            f"&code={self.system_key}"
        )

    def management_urls(
        self,
        instance_id: str = "INSTANCEID",
        *,
        origin: str | None = None,
        task_hub: str | None = None,
        connection_name: str | None = None,
    ) -> dict[str, str]:
        base = (origin.rstrip("/") + "/runtime/webhooks/durabletask") if origin else self.webhook_base_url
        prefix = f"{base}/instances/{instance_id}"
        q = self._query_suffix(task_hub, connection_name)
        return {
            "id": instance_id,
            "statusQueryGetUri": f"{prefix}?{q}",
            "sendEventPostUri": f"{prefix}/raiseEvent/{{eventName}}?{q}",
            "terminatePostUri": f"{prefix}/terminate?reason={{text}}&{q}",
            "rewindPostUri": f"{prefix}/rewind?reason={{text}}&{q}",
            "purgeHistoryDeleteUri": f"{prefix}?{q}",
            "restartPostUri": f"{prefix}/restart?{q}",
            "suspendPostUri": f"{prefix}/suspend?reason={{text}}&{q}",
            "resumePostUri": f"{prefix}/resume?reason={{text}}&{q}",
        }

    def client_binding_json(self, task_hub: str | None = None, connection_name: str | None = None) -> str:
        """The durable client binding value (a JSON string) for this host."""
        hub = task_hub or self.task_hub
        base = self.webhook_base_url
        create = f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
        return json.dumps(
            {
                "taskHubName": hub,
                "creationUrls": {
                    "createNewInstancePostUri": f"{create}?code={self.system_key}",
                    "createAndWaitOnNewInstancePostUri": f"{create}?timeout={{timeoutInSeconds}}&pollingInterval="
                    f"{{intervalInSeconds}}&code={self.system_key}",
                },
                "managementUrls": self.management_urls(task_hub=hub, connection_name=connection_name),
                "baseUrl": base,
                "requiredQueryStringParameters": f"code={self.system_key}",
                "rpcBaseUrl": self.rpc_base_url,
                "httpBaseUrl": base,
                "maxGrpcMessageSizeInBytes": 0,
                "grpcHttpClientTimeout": "00:01:40",
            }
        )

    # ------------------------------------------------------------ primitives
    def _ev(self, event_type: int, when: datetime | None = None, **fields: Any) -> dict:
        event = {"EventType": event_type, "EventId": -1, "IsPlayed": False, "Timestamp": _iso(when or self._now)}
        event.update(fields)
        return event

    @staticmethod
    def _next_id(inst: dict) -> int:
        tid = inst["seq"]
        inst["seq"] += 1
        return tid

    def _enqueue(self, inst: dict, event: dict, *, execution_scoped: bool = True, front: bool = False) -> None:
        entry = {"event": event, "execution_id": inst["execution_id"] if execution_scoped else None}
        if front:
            inst["inbox"].insert(0, entry)
        else:
            inst["inbox"].append(entry)
        if not inst["queued"]:
            inst["queued"] = True
            self._work.append({"kind": "orchestration", "instance_id": inst["instance_id"]})

    def _instance(self, instance_id: str) -> dict:
        inst = self._instances.get(instance_id)
        if inst is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        return inst

    @staticmethod
    def _validate_instance_id(instance_id: str) -> None:
        if not instance_id or not instance_id.strip():
            raise ValueError("Instance ID must not be empty.")
        if len(instance_id) > 256:
            raise ValueError("Instance ID must be at most 256 characters.")
        bad = [c for c in instance_id if c in "/\\?#" or ord(c) < 32 or ord(c) == 127]
        if bad:
            raise ValueError(
                f"Instance ID '{instance_id}' contains invalid characters "
                "('/', '\\', '?', '#' and control characters are not allowed)."
            )
        if instance_id.startswith("@"):
            raise ValueError("Instance IDs starting with '@' are reserved for entities.")

    def _create_instance(
        self,
        name: str,
        instance_id: str,
        input_ctx: str | None,
        input_raw: str | None,
        *,
        parent: dict | None = None,
        version: str = "",
    ) -> dict:
        existing = self._instances.get(instance_id)
        if (
            existing is not None
            and existing["status"] in NOT_OVERRIDABLE
            and self.overridable_existing_instance_states == "NonRunningStates"
        ):
            raise InstanceAlreadyExistsError(
                f"An Orchestration instance with the status {existing['status']} already exists."
            )
        if existing is not None:
            self._abandon_timers(existing)
            del self._instances[instance_id]
        now = _iso(self._now)
        execution_id = uuid.uuid4().hex
        inst = {
            "instance_id": instance_id,
            "name": name,
            "version": version or "",
            "execution_id": execution_id,
            "status": "Pending",
            "created": now,
            "updated": now,
            "input_raw": input_raw,
            "input_ctx": input_ctx,
            "output": None,
            "custom_status": None,
            "failure": None,
            "parent": parent,
            "history": [],
            "inbox": [],
            "queued": False,
            "seq": 0,
            "flat": [],
            "tasks": {},
            "retry": {},
            "generation": 0,
        }
        self._instances[instance_id] = inst
        self._enqueue(inst, self._execution_started(inst))
        return inst

    def _execution_started(self, inst: dict) -> dict:
        parent = inst.get("parent")
        parent_info = None
        if parent:
            parent_info = {
                "Name": parent["name"],
                "TaskScheduleId": parent["task_id"],
                "OrchestrationInstance": {"InstanceId": parent["instance_id"], "ExecutionId": parent["execution_id"]},
            }
        return self._ev(
            EXECUTION_STARTED,
            Name=inst["name"],
            Version=inst["version"],
            Input=inst["input_raw"],
            ParentInstance=parent_info,
            Tags=None,
            OrchestrationInstance={"InstanceId": inst["instance_id"], "ExecutionId": inst["execution_id"]},
        )

    # ---------------------------------------------------------- direct API
    def start_new(
        self, name: str, instance_id: str | None = None, input: Any = None, *, version: str = "", run: bool = True
    ) -> str:
        """Start an orchestration as ``client.start_new`` would (same encodings)."""
        if self.functions.orchestrator(name) is None:
            raise UnknownFunctionError(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator function."
            )
        from azure.durable_functions.models.utils.df_serialization import df_dumps

        instance_id = instance_id or uuid.uuid4().hex
        self._validate_instance_id(instance_id)
        input_ctx = df_dumps(input) if input is not None else None
        input_raw = json.dumps(input_ctx) if input_ctx is not None else None
        with self._lock:
            self._create_instance(name, instance_id, input_ctx, input_raw, version=version)
        if run:
            self.run_until_idle()
        return instance_id

    def raise_event(self, instance_id: str, event_name: str, data: Any = None, *, run: bool = True) -> None:
        """Deliver an external event (like POSTing JSON ``data`` to sendEventPostUri)."""
        if not event_name:
            raise ValueError("event_name must be a non-empty string.")
        with self._lock:
            inst = self._instance(instance_id)
            if inst["status"] in TERMINAL:
                raise InstanceGoneError(f"Instance with ID {instance_id} is gone: either completed or failed")
            self._enqueue(inst, self._ev(EVENT_RAISED, Name=event_name, Input=json.dumps(data)), execution_scoped=False)
        if run:
            self.run_until_idle()

    def terminate(self, instance_id: str, reason: str = "", *, run: bool = True) -> None:
        with self._lock:
            inst = self._instance(instance_id)
            if inst["status"] in TERMINAL:
                raise InstanceGoneError(f"Instance with ID {instance_id} is already {inst['status']}")
            self._enqueue(inst, self._ev(EXECUTION_TERMINATED, Input=reason), execution_scoped=False)
        if run:
            self.run_until_idle()

    def purge(self, instance_id: str) -> bool:
        """Delete a terminal instance's state; False if it does not exist."""
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return False
            if inst["status"] not in TERMINAL:
                raise DurableHostError(
                    f"Only orchestrations in a terminal state can be purged, but the "
                    f"orchestration with instance ID {instance_id} has status {inst['status']}"
                )
            del self._instances[instance_id]
            return True

    # ------------------------------------------------------------ inspection
    def instance_ids(self) -> list[str]:
        with self._lock:
            return list(self._instances)

    def status(self, instance_id: str) -> dict | None:
        """Status of an instance, or None.  ``input`` is what ``get_input()`` returns."""
        from azure.durable_functions.models.utils.df_serialization import df_loads

        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return None
            decoded_input = None
            if inst["input_ctx"] is not None:
                try:
                    decoded_input = df_loads(inst["input_ctx"])
                except Exception:  # pragma: no cover - undecodable custom objects
                    decoded_input = inst["input_ctx"]
            return copy.deepcopy(
                {
                    "instanceId": inst["instance_id"],
                    "name": inst["name"],
                    "runtimeStatus": inst["status"],
                    "input": decoded_input,
                    "output": inst["output"],
                    "customStatus": inst["custom_status"],
                    "createdTime": _parse(inst["created"]),
                    "lastUpdatedTime": _parse(inst["updated"]),
                    "failure": inst["failure"],
                    "parentInstanceId": (inst["parent"] or {}).get("instance_id"),
                }
            )

    def history(self, instance_id: str) -> list[dict]:
        """The committed history events (wire format) of the current execution."""
        with self._lock:
            return copy.deepcopy(self._instance(instance_id)["history"])

    def timers(self, instance_id: str | None = None) -> list[dict]:
        """Every durable timer with its status: pending/fired/cancelled/abandoned."""
        with self._lock:
            out = []
            for inst in self._instances.values():
                if instance_id is not None and inst["instance_id"] != instance_id:
                    continue
                for task in inst["tasks"].values():
                    if task["kind"] != "timer":
                        continue
                    out.append(
                        {
                            "instance_id": inst["instance_id"],
                            "timer_id": task["id"],
                            "fire_at": _parse(task["fire_at"]),
                            "status": task["status"],
                            "retry": task.get("retry_group") is not None,
                            "order": task["order"],
                        }
                    )
            out.sort(key=lambda t: (t["fire_at"], t["order"]))
            for t in out:
                del t["order"]
            return out

    def pending_timers(self, instance_id: str | None = None) -> list[dict]:
        """Timers that will still fire (cancelled/abandoned ones excluded)."""
        return [t for t in self.timers(instance_id) if t["status"] == "pending"]

    def next_timer(self) -> datetime | None:
        pending = self.pending_timers()
        return pending[0]["fire_at"] if pending else None

    def activity_calls(self, name: str | None = None, instance_id: str | None = None) -> list[dict]:
        """Ordered log of executed activities: name, input, time, result/error."""
        with self._lock:
            return copy.deepcopy(
                [
                    c
                    for c in self._activity_calls
                    if (name is None or c["name"] == name) and (instance_id is None or c["instance_id"] == instance_id)
                ]
            )

    # ------------------------------------------------------------- driving
    def run_until_idle(self) -> int:
        """Run every instance that has work until nothing can happen without
        time moving (due timers, i.e. ``fire_at <= now``, fire too).

        Returns the number of work items processed.  Calls from inside a
        function this host is running are ignored (the outer call continues).
        """
        if self._driver == threading.get_ident():
            return 0
        with self._drive_lock:
            self._driver = threading.get_ident()
            try:
                steps = 0
                while True:
                    with self._lock:
                        item = self._work.popleft() if self._work else None
                        if item is None:
                            due = self._earliest_timer(self._now)
                            if due is None:
                                return steps
                            self._fire_timer(*due)
                            continue
                    steps += 1
                    if steps > self.max_steps:
                        raise DurableHostError(
                            f"no idle state after {self.max_steps} steps: an orchestration "
                            "is probably looping without waiting on a timer or event"
                        )
                    if item["kind"] == "orchestration":
                        self._run_episode(item["instance_id"])
                    else:
                        self._run_activity(item)
            finally:
                self._driver = None

    def advance_to(self, when: datetime) -> int:
        """Move the clock to ``when``, firing due timers one at a time in
        ``fire_at`` order (the clock is set to each timer's time first) and
        running until idle after each.  Returns the number of timers fired."""
        target = _utc(when)
        if target < self._now:
            raise ValueError(f"cannot move the clock back from {self._now} to {target}")
        fired = 0
        while True:
            self.run_until_idle()
            with self._lock:
                due = self._earliest_timer(target)
                if due is None:
                    break
                fire_at = _parse(self._instances[due[0]]["tasks"][str(due[1])]["fire_at"])
                if fire_at > self._now:
                    self._now = fire_at
                self._fire_timer(*due)
                fired += 1
        self._now = target
        self.run_until_idle()
        return fired

    def advance(self, delta: timedelta) -> int:
        """``advance_to(now + delta)``."""
        return self.advance_to(self._now + delta)

    def advance_to_next_timer(self) -> datetime | None:
        """Advance exactly to the earliest pending timer (None if there is none)."""
        nxt = self.next_timer()
        if nxt is not None:
            self.advance_to(max(nxt, self._now))
        return nxt

    def _earliest_timer(self, limit: datetime) -> tuple[str, int] | None:
        best = None
        for inst in self._instances.values():
            if inst["status"] in TERMINAL:
                continue
            for task in inst["tasks"].values():
                if task["kind"] != "timer" or task["status"] != "pending":
                    continue
                fire_at = _parse(task["fire_at"])
                if fire_at <= limit:
                    key = (fire_at, task["order"])
                    if best is None or key < best[0]:
                        best = (key, inst["instance_id"], task["id"])
        return (best[1], best[2]) if best else None

    def _fire_timer(self, instance_id: str, timer_id: int) -> None:
        inst = self._instances[instance_id]
        task = inst["tasks"][str(timer_id)]
        task["status"] = "fired"
        self._enqueue(inst, self._ev(TIMER_FIRED, TimerId=timer_id, FireAt=task["fire_at"]))

    # ---------------------------------------------------------- episodes
    def _context_json(self, inst: dict, new_events: list[dict]) -> str:
        history = [dict(e, IsPlayed=True) for e in inst["history"]] + new_events
        parent = inst.get("parent")
        return json.dumps(
            {
                "history": history,
                "input": inst["input_ctx"],
                "instanceId": inst["instance_id"],
                "isReplaying": False,
                "parentInstanceId": parent["instance_id"] if parent else None,
                "upperSchemaVersion": 1,
                "upperSchemaVersionNew": 2,
                "longRunningTimerIntervalDuration": _timespan(self.long_running_timer_interval),
                "maximumShortTimerDuration": _timespan(self.maximum_short_timer_duration),
                "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
            }
        )

    def _run_episode(self, instance_id: str) -> None:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return
            inst["queued"] = False
            if not inst["inbox"]:
                return
            entry = inst["inbox"].pop(0)
            if inst["inbox"]:
                inst["queued"] = True
                self._work.append({"kind": "orchestration", "instance_id": instance_id})
            message = entry["event"]
            if entry["execution_id"] not in (None, inst["execution_id"]):
                return  # a result for an execution that continued-as-new
            if inst["status"] in TERMINAL:
                logger.debug(
                    "dropping %s for %s instance %s", EVENT_NAMES.get(message["EventType"]), inst["status"], instance_id
                )
                return
            if message["EventType"] == EXECUTION_TERMINATED:
                self._terminate_now(inst, message)
                return
            entry_fn = self.functions.orchestrator(inst["name"])
            if entry_fn is None:
                inst["history"].extend([self._ev(ORCHESTRATOR_STARTED), message])
                self._fail(
                    inst,
                    f"The function '{inst['name']}' doesn't exist, is disabled, or is not an orchestrator function.",
                )
                return
            if message["EventType"] == EXECUTION_STARTED:
                inst["status"] = "Running"
            started = self._ev(ORCHESTRATOR_STARTED)
            decisions: list[dict] = []
            effects: list[tuple[str, int]] = []
            self._before_episode(inst, message, decisions, effects)
            context_json = self._context_json(inst, [started, dict(message, IsPlayed=False)])
            execution_id = inst["execution_id"]

        error: str | None = None
        state: dict[str, Any] = {}
        try:
            decoded = OrchestrationTriggerConverter.decode(
                meta.Datum(value=context_json, type="json"), trigger_metadata={}
            )
            result = self.functions.invoke(entry_fn, {entry_fn.trigger_name: decoded}, timeout=self.invoke_timeout)
            encoded = OrchestrationTriggerConverter.encode(result, expected_type=None)
            state = json.loads(encoded.value)
        except Exception as exc:  # the SDK raises with the out-of-proc payload
            text = str(exc)
            if _OUT_OF_PROC_LABEL in text:
                error, _, payload = text.partition(_OUT_OF_PROC_LABEL)
                try:
                    state = json.loads(payload)
                except ValueError:
                    state = {}
            else:
                error = f"{type(exc).__name__}: {exc}"
                logger.debug("orchestrator %s raised outside the SDK:\n%s", inst["name"], traceback.format_exc())

        with self._lock:
            if self._instances.get(instance_id) is not inst or inst["execution_id"] != execution_id:
                return
            inst["history"].extend([started, message])
            inst["updated"] = started["Timestamp"]
            if error is not None:
                if state.get("customStatus") is not None:
                    inst["custom_status"] = state.get("customStatus")
                self._fail(inst, error)
                return
            self._apply_state(inst, state, decisions, effects)

    def _before_episode(self, inst: dict, message: dict, decisions: list[dict], effects: list[tuple[str, int]]) -> None:
        """Task bookkeeping for the delivered event, incl. host-side retries.

        Must allocate ids in the order the SDK does: the retry timer/task ids
        are allocated while the event is replayed, before user code resumes.
        """
        et = message["EventType"]
        tid = message.get("TaskScheduledId") if et != TIMER_FIRED else message.get("TimerId")
        task = inst["tasks"].get(str(tid)) if tid is not None else None
        if task is None:
            return
        group = inst["retry"].get(task.get("retry_group") or "")
        if et in (TASK_COMPLETED, SUB_ORCHESTRATION_COMPLETED):
            task["status"] = "completed"
            if group is not None:
                group["state"] = "succeeded"
        elif et in (TASK_FAILED, SUB_ORCHESTRATION_FAILED):
            task["status"] = "failed"
            if group is not None and group["state"] == "running":
                delay_ms = group["first_ms"] * (group["backoff"] ** (group["attempts"] - 1))
                if group.get("max_interval_ms"):
                    delay_ms = min(delay_ms, group["max_interval_ms"])
                fire_at = self._now + timedelta(milliseconds=delay_ms)
                timer_id = self._next_id(inst)
                self._timer_order += 1
                inst["tasks"][str(timer_id)] = {
                    "id": timer_id,
                    "kind": "timer",
                    "fire_at": _iso(fire_at),
                    "status": "pending",
                    "order": self._timer_order,
                    "retry_group": group["gid"],
                }
                decisions.append(self._ev(TIMER_CREATED, EventId=timer_id, FireAt=_iso(fire_at)))
                group["state"] = "waiting"
                group["timer_id"] = timer_id
        elif et == TIMER_FIRED and group is not None and group["state"] == "waiting" and group.get("timer_id") == tid:
            if group["attempts"] < group["max_attempts"]:
                group["attempts"] += 1
                group["state"] = "running"
                self._schedule(
                    inst,
                    group["kind"],
                    group["name"],
                    group["input"],
                    decisions,
                    effects,
                    retry_group=group["gid"],
                    child_instance_id=group.get("child_instance_id"),
                    version=group.get("version"),
                )
            else:
                group["state"] = "failed"

    def _schedule(
        self,
        inst: dict,
        kind: str,
        name: str,
        input_: str | None,
        decisions: list[dict],
        effects: list[tuple[str, int]],
        *,
        retry_group: str | None = None,
        child_instance_id: str | None = None,
        version: str | None = None,
    ) -> int:
        tid = self._next_id(inst)
        task = {
            "id": tid,
            "kind": kind,
            "name": name,
            "input": input_,
            "status": "scheduled",
            "scheduled_at": _iso(self._now),
            "retry_group": retry_group,
        }
        if kind == "activity":
            decisions.append(self._ev(TASK_SCHEDULED, EventId=tid, Name=name, Version="", Input=input_))
        else:
            child = child_instance_id or f"{inst['instance_id']}:{tid}"
            task["child_instance_id"] = child
            task["version"] = version or ""
            decisions.append(
                self._ev(
                    SUB_ORCHESTRATION_CREATED,
                    EventId=tid,
                    Name=name,
                    InstanceId=child,
                    Input=input_,
                    Version=version or "",
                )
            )
        inst["tasks"][str(tid)] = task
        effects.append((kind, tid))
        return tid

    def _apply_state(self, inst: dict, state: dict, decisions: list[dict], effects: list[tuple[str, int]]) -> None:
        flat = _flatten(state.get("actions") or [])
        seen = inst["flat"]
        for i, record in enumerate(seen):
            action = flat[i] if i < len(flat) else None
            if action is None or action.get("actionType") != record["type"] or _action_name(action) != record["name"]:
                got = None if action is None else (action.get("actionType"), _action_name(action))
                self._fail(
                    inst,
                    "Non-deterministic workflow detected: action #"
                    f"{i} was {(record['type'], record['name'])} in the "
                    f"recorded history but the orchestrator now produced {got}.",
                )
                return
            if action.get("actionType") == CREATE_TIMER and action.get("isCanceled") and record["id"] is not None:
                timer = inst["tasks"].get(str(record["id"]))
                if timer is not None and timer["status"] == "pending":
                    timer["status"] = "cancelled"

        continue_as_new: dict | None = None
        unsupported: str | None = None
        for action in flat[len(seen) :]:
            at = action.get("actionType")
            record = {"type": at, "name": _action_name(action), "id": None}
            if at in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CALL_SUB_ORCHESTRATOR, CALL_SUB_ORCHESTRATOR_WITH_RETRY):
                kind = "activity" if at in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY) else "suborchestration"
                gid = None
                if at in (CALL_ACTIVITY_WITH_RETRY, CALL_SUB_ORCHESTRATOR_WITH_RETRY):
                    gid = str(inst["seq"])
                    options = action.get("retryOptions") or {}
                    inst["retry"][gid] = {
                        "gid": gid,
                        "kind": kind,
                        "name": action.get("functionName"),
                        "input": action.get("input"),
                        "child_instance_id": action.get("instanceId"),
                        "version": action.get("version"),
                        "first_ms": options.get("firstRetryIntervalInMilliseconds", 1000),
                        "max_attempts": options.get("maxNumberOfAttempts", 1),
                        "backoff": options.get("backoffCoefficient", 1.0),
                        "max_interval_ms": options.get("maxRetryIntervalInMilliseconds"),
                        "attempts": 1,
                        "state": "running",
                        "timer_id": None,
                    }
                record["id"] = self._schedule(
                    inst,
                    kind,
                    action.get("functionName"),
                    action.get("input"),
                    decisions,
                    effects,
                    retry_group=gid,
                    child_instance_id=action.get("instanceId"),
                    version=action.get("version"),
                )
            elif at == CREATE_TIMER:
                tid = self._next_id(inst)
                record["id"] = tid
                self._timer_order += 1
                inst["tasks"][str(tid)] = {
                    "id": tid,
                    "kind": "timer",
                    "fire_at": _iso(_parse(action["fireAt"])),
                    "status": "cancelled" if action.get("isCanceled") else "pending",
                    "order": self._timer_order,
                    "retry_group": None,
                }
                decisions.append(self._ev(TIMER_CREATED, EventId=tid, FireAt=action["fireAt"]))
            elif at == WAIT_FOR_EXTERNAL_EVENT:
                pass  # matched by name, no sequence number
            elif at == CONTINUE_AS_NEW:
                self._next_id(inst)
                continue_as_new = action
            else:
                self._next_id(inst)
                unsupported = _UNSUPPORTED_ACTIONS.get(at, f"action type {at}")
            seen.append(record)

        if unsupported is not None:
            self._fail(
                inst,
                f"LocalDurableHost does not support {unsupported} (entities and durable HTTP are not implemented).",
            )
            return
        inst["history"].extend(decisions)
        inst["history"].append(self._ev(ORCHESTRATOR_COMPLETED))
        for event in inst["history"]:
            event["IsPlayed"] = True
        inst["custom_status"] = state.get("customStatus")
        if state.get("isDone"):
            if continue_as_new is not None:
                self._continue_as_new(inst, continue_as_new)
            else:
                self._complete(inst, state.get("output"))
            return
        for kind, tid in effects:
            if kind == "activity":
                self._work.append(
                    {
                        "kind": "activity",
                        "instance_id": inst["instance_id"],
                        "execution_id": inst["execution_id"],
                        "task_id": tid,
                    }
                )
            else:
                self._start_child(inst, tid)

    def _start_child(self, inst: dict, tid: int) -> None:
        task = inst["tasks"][str(tid)]
        parent = {
            "instance_id": inst["instance_id"],
            "execution_id": inst["execution_id"],
            "task_id": tid,
            "name": inst["name"],
        }
        input_ctx = task["input"]
        input_raw = json.dumps(input_ctx) if input_ctx is not None else None
        try:
            self._validate_instance_id(task["child_instance_id"])
            self._create_instance(
                task["name"],
                task["child_instance_id"],
                input_ctx,
                input_raw,
                parent=parent,
                version=task.get("version") or "",
            )
        except (InstanceAlreadyExistsError, ValueError) as exc:
            self._enqueue(inst, self._ev(SUB_ORCHESTRATION_FAILED, TaskScheduledId=tid, Reason=str(exc), Details=None))

    # --------------------------------------------------------- completion
    def _abandon_timers(self, inst: dict) -> None:
        for task in inst["tasks"].values():
            if task["kind"] == "timer" and task["status"] == "pending":
                task["status"] = "abandoned"

    def _notify_parent(self, inst: dict, event_type: int, **fields: Any) -> None:
        parent = inst.get("parent")
        if not parent:
            return
        pinst = self._instances.get(parent["instance_id"])
        if pinst is None or pinst["execution_id"] != parent["execution_id"] or pinst["status"] in TERMINAL:
            return
        self._enqueue(pinst, self._ev(event_type, TaskScheduledId=parent["task_id"], **fields))

    def _complete(self, inst: dict, output: Any) -> None:
        inst["status"] = "Completed"
        inst["output"] = output
        inst["updated"] = _iso(self._now)
        inst["history"].append(
            self._ev(EXECUTION_COMPLETED, OrchestrationStatus="Completed", Result=json.dumps(output), IsPlayed=True)
        )
        self._abandon_timers(inst)
        self._notify_parent(inst, SUB_ORCHESTRATION_COMPLETED, Result=json.dumps(output))

    def _fail(self, inst: dict, message: str, details: str | None = None) -> None:
        output = f"Orchestrator function '{inst['name']}' failed: {message}"
        logger.warning("orchestration %s (%s) failed: %s", inst["instance_id"], inst["name"], message)
        inst["status"] = "Failed"
        inst["output"] = output
        inst["failure"] = {"message": message, "details": details}
        inst["updated"] = _iso(self._now)
        inst["history"].append(
            self._ev(
                EXECUTION_COMPLETED,
                OrchestrationStatus="Failed",
                Result=output,
                IsPlayed=True,
                FailureDetails={"ErrorType": "OrchestrationFailureException", "ErrorMessage": message},
            )
        )
        self._abandon_timers(inst)
        self._notify_parent(
            inst, SUB_ORCHESTRATION_FAILED, Reason=output, Details=details or json.dumps({"Message": message})
        )

    def _terminate_now(self, inst: dict, message: dict) -> None:
        reason = message.get("Input") or ""
        inst["status"] = "Terminated"
        inst["output"] = reason
        inst["updated"] = _iso(self._now)
        inst["history"].extend(
            [
                self._ev(ORCHESTRATOR_STARTED, IsPlayed=True),
                dict(message, IsPlayed=True),
                self._ev(
                    EXECUTION_COMPLETED, OrchestrationStatus="Terminated", Result=json.dumps(reason), IsPlayed=True
                ),
            ]
        )
        self._abandon_timers(inst)
        self._notify_parent(
            inst, SUB_ORCHESTRATION_FAILED, Reason=f"Orchestration was terminated: {reason}", Details=None
        )

    def _continue_as_new(self, inst: dict, action: dict) -> None:
        inst["history"].append(
            self._ev(EXECUTION_COMPLETED, OrchestrationStatus="ContinuedAsNew", Result=None, IsPlayed=True)
        )
        self._abandon_timers(inst)
        new_input = action.get("input")
        inst.update(
            {
                "status": "ContinuedAsNew",
                "execution_id": uuid.uuid4().hex,
                "input_ctx": new_input,
                "input_raw": json.dumps(new_input) if new_input is not None else None,
                "history": [],
                "seq": 0,
                "flat": [],
                "tasks": {},
                "retry": {},
                "generation": inst.get("generation", 0) + 1,
                "updated": _iso(self._now),
            }
        )
        # messages addressed to the old execution are dropped when dequeued;
        # external events (instance-scoped) carry over to the new execution
        self._enqueue(inst, self._execution_started(inst), front=True)

    # ---------------------------------------------------------- activities
    def _run_activity(self, item: dict) -> None:
        with self._lock:
            inst = self._instances.get(item["instance_id"])
            if inst is None or inst["execution_id"] != item["execution_id"] or inst["status"] in TERMINAL:
                return
            task = inst["tasks"].get(str(item["task_id"]))
            if task is None or task["status"] != "scheduled":
                return
            task["status"] = "running"
            name, input_json = task["name"], task["input"]
            now = self._now
            group = inst["retry"].get(task.get("retry_group") or "")
            attempt = group["attempts"] if group else 1
        entry = self.functions.activity(name)
        result_json: str | None = None
        reason = details = error_text = tb_text = None
        decoded_input: Any = None
        if input_json is not None:
            try:
                decoded_input = json.loads(input_json)
            except ValueError:
                decoded_input = input_json
        if entry is None:
            message = f"Activity function '{name}' does not exist."
            reason = f"Activity function '{name}' failed: {message}"
            details = json.dumps(
                {
                    "ClassName": "Microsoft.Azure.WebJobs.Extensions.DurableTask.FunctionFailedException",
                    "Message": message,
                }
            )
            error_text = message
            logger.warning(
                "orchestration %s called unknown activity %r (known: %s)",
                item["instance_id"],
                name,
                sorted(e.name for e in self.functions.by_trigger("activityTrigger")),
            )
        else:
            try:
                value = ActivityTriggerConverter.decode(
                    meta.Datum(value=input_json if input_json is not None else "null", type="json"), trigger_metadata={}
                )
                result = self.functions.invoke(
                    entry,
                    {entry.trigger_name: value},
                    client_binding=self._client_binding_for_functions,
                    timeout=self.invoke_timeout,
                )
                result_json = ActivityTriggerConverter.encode(result, expected_type=None).value
            except Exception as exc:
                tb_text = traceback.format_exc()
                error_text = f"{type(exc).__name__}: {exc}"
                reason = (
                    f"Activity function '{name}' failed: Result: Failure\n"
                    f"Exception: {error_text}\nStack: "
                    f"{''.join(traceback.format_tb(exc.__traceback__))}"
                )
                details = json.dumps(
                    {
                        "ClassName": "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException",
                        "Message": error_text,
                        "PythonExceptionType": type(exc).__name__,
                    }
                )
                logger.info("activity %s failed (attempt %s): %s", name, attempt, error_text)
        with self._lock:
            call = {
                "name": name,
                "instance_id": item["instance_id"],
                "task_id": item["task_id"],
                "attempt": attempt,
                "input": decoded_input,
                "time": now,
                "result": None,
                "error": error_text,
                "traceback": tb_text,
            }
            if result_json is not None:
                try:
                    call["result"] = json.loads(result_json)
                except ValueError:  # pragma: no cover
                    call["result"] = result_json
            self._activity_calls.append(call)
            if (
                self._instances.get(item["instance_id"]) is not inst
                or inst["execution_id"] != item["execution_id"]
                or inst["status"] in TERMINAL
            ):
                return
            if reason is None:
                task["status"] = "completed"
                self._enqueue(inst, self._ev(TASK_COMPLETED, TaskScheduledId=item["task_id"], Result=result_json))
            else:
                task["status"] = "failed"
                self._enqueue(
                    inst, self._ev(TASK_FAILED, TaskScheduledId=item["task_id"], Reason=reason, Details=details)
                )

    def _client_binding_for_functions(self, task_hub: str | None, connection_name: str | None) -> str:
        return self.client_binding_json(task_hub=task_hub, connection_name=connection_name)

    # ---------------------------------------------------------- HTTP API
    def handle_api_request(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
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

    def _api_start(
        self, name: str, instance_id: str | None, query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
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
            "createdTime": _iso_seconds(_parse(inst["created"])),
            "lastUpdatedTime": _iso_seconds(_parse(inst["updated"])),
        }
        if show_input and inst["input_raw"] is not None:
            try:
                payload["input"] = json.loads(inst["input_raw"])
            except ValueError:
                payload["input"] = inst["input_raw"]
        if show_history:
            payload["historyEvents"] = [
                self._history_view(e, show_history_output)
                for e in inst["history"]
                if e["EventType"] not in (ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED)
            ]
        return payload

    @staticmethod
    def _history_view(event: dict, with_output: bool) -> dict:
        view = {
            "EventType": EVENT_NAMES.get(event["EventType"], str(event["EventType"])),
            "Timestamp": event["Timestamp"],
        }
        for key in (
            "EventId",
            "Name",
            "TaskScheduledId",
            "TimerId",
            "FireAt",
            "InstanceId",
            "Reason",
            "OrchestrationStatus",
        ):
            if event.get(key) not in (None, -1):
                view[key] = event[key]
        if with_output:
            for key in ("Result", "Input", "Details"):
                if event.get(key) is not None:
                    view[key] = event[key]
        return view

    def _api_status(self, instance_id: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return _empty(404)
            payload = self._status_payload(
                inst,
                _json_bool(query.get("showHistory"), False),
                _json_bool(query.get("showHistoryOutput"), False),
                _json_bool(query.get("showInput"), True),
            )
            status = inst["status"]
        if status in ("Running", "Pending", "ContinuedAsNew", "Suspended"):
            return _json_response(202, payload, {"Retry-After": "5"})
        if status == "Failed" and _json_bool(query.get("returnInternalServerErrorOnFailure"), False):
            return _json_response(500, payload)
        return _json_response(200, payload)

    def _api_list(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        statuses = {s.strip() for s in (query.get("runtimeStatus") or "").split(",") if s.strip()}
        prefix = query.get("instanceIdPrefix")
        created_from = _parse(query["createdTimeFrom"]) if query.get("createdTimeFrom") else None
        created_to = _parse(query["createdTimeTo"]) if query.get("createdTimeTo") else None
        show_input = _json_bool(query.get("showInput"), False)
        with self._lock:
            result = []
            for inst in self._instances.values():
                created = _parse(inst["created"])
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

    def _api_terminate(self, instance_id: str, reason: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            inst = self._instances.get(instance_id)
            if inst is None:
                return _empty(404)
            if inst["status"] in TERMINAL:
                return _empty(410)
            self._enqueue(inst, self._ev(EXECUTION_TERMINATED, Input=reason), execution_scoped=False)
        return _empty(202)

    def _api_raise(
        self, instance_id: str, event_name: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
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

    def _api_purge(self, instance_id: str) -> tuple[int, dict[str, str], bytes]:
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

    def _api_purge_filter(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if not query.get("createdTimeFrom"):
            return _json_response(400, "Please provide value for 'createdTimeFrom' parameter.")
        created_from = _parse(query["createdTimeFrom"])
        created_to = _parse(query["createdTimeTo"]) if query.get("createdTimeTo") else None
        statuses = {s.strip() for s in (query.get("runtimeStatus") or "").split(",") if s.strip()}
        with self._lock:
            doomed = [
                iid
                for iid, inst in self._instances.items()
                if inst["status"] in TERMINAL
                and (not statuses or inst["status"] in statuses)
                and _parse(inst["created"]) >= created_from
                and (created_to is None or _parse(inst["created"]) <= created_to)
            ]
            for iid in doomed:
                del self._instances[iid]
        if not doomed:
            return _empty(404)
        return _json_response(200, {"instancesDeleted": len(doomed)})

    # ------------------------------------------------------- persistence
    def export_state(self) -> dict:
        """A JSON-serialisable snapshot of everything the durable store would
        hold: instances (history, inbox, timers, retries), queued work, the
        activity log and the clock."""
        with self._lock:
            calls = []
            for call in self._activity_calls:
                call = dict(call)
                call["time"] = _iso(call["time"])
                calls.append(call)
            state = {
                "format": self.STATE_FORMAT,
                "now": _iso(self._now),
                "task_hub": self.task_hub,
                "connection_name": self.connection_name,
                "timer_order": self._timer_order,
                "instances": list(self._instances.values()),
                "work": list(self._work),
                "activity_calls": calls,
            }
            return json.loads(json.dumps(state))

    @classmethod
    def from_state(cls, state: dict, functions: Any, **kwargs: Any) -> LocalDurableHost:
        """A new host (new server) resuming from ``export_state()`` output."""
        if state.get("format") != cls.STATE_FORMAT:
            raise ValueError(f"not a {cls.STATE_FORMAT} snapshot")
        state = json.loads(json.dumps(state))
        kwargs.setdefault("task_hub", state.get("task_hub", "TestHubName"))
        kwargs.setdefault("connection_name", state.get("connection_name", "Storage"))
        kwargs["now"] = _parse(state["now"])
        host = cls(functions, **kwargs)
        with host._lock:
            host._timer_order = state.get("timer_order", 0)
            host._instances = {i["instance_id"]: i for i in state["instances"]}
            host._activity_calls = []
            for call in state.get("activity_calls", []):
                call["time"] = _parse(call["time"])
                host._activity_calls.append(call)
            host._work = deque(w for w in state.get("work", []) if w["kind"] == "activity")
            queued_activities = {(w["instance_id"], w["task_id"]) for w in host._work}
            for inst in host._instances.values():
                inst["queued"] = False
                for task in inst["tasks"].values():
                    # at-least-once: an activity that was running is run again
                    if (
                        task["kind"] == "activity"
                        and task["status"] in ("scheduled", "running")
                        and inst["status"] not in TERMINAL
                        and (inst["instance_id"], task["id"]) not in queued_activities
                    ):
                        task["status"] = "scheduled"
                        host._work.append(
                            {
                                "kind": "activity",
                                "instance_id": inst["instance_id"],
                                "execution_id": inst["execution_id"],
                                "task_id": task["id"],
                            }
                        )
                if inst["inbox"]:
                    inst["queued"] = True
                    host._work.append({"kind": "orchestration", "instance_id": inst["instance_id"]})
        return host


def _json_response(
    status: int, payload: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    out = {"Content-Type": "application/json; charset=utf-8"}
    out.update(headers or {})
    return status, out, json.dumps(payload).encode("utf-8")


def _empty(status: int) -> tuple[int, dict[str, str], bytes]:
    return status, {}, b""
