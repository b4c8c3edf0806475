"""A local stand-in for the Durable Functions extension (Durable Task host).

Modules (imports point down only): ``history`` (wire format, event builders) ← ``state``
(instances, work queue, client binding) ← ``replay`` (episodes through the SDK's replay engine)
← ``scheduler`` (clock, timers, activities); ``api`` (the extension's HTTP API) builds on
``state``; ``host`` (``LocalDurableHost``) puts them together. Functions are found and called
through ``devtools.worker``.

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
  Activities waiting side by side (a ``task_all`` fan-out) run concurrently
  in threads, at most ``max_concurrent_activities`` at once (host.json's
  ``maxConcurrentActivityFunctions`` through ``LocalFunctionsRuntime``), so
  their real wall-clock latency overlaps as on the real host; their results
  are recorded in scheduling order, so histories stay deterministic.
* ``task_all`` fails fast on the first failed child (the SDK's ``WhenAllTask``);
  to collect every result of a fan-out of retried activities, catch it and
  ``yield`` each task on its own afterwards (a finished task answers at once).
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

from devtools.durable.host import LocalDurableHost
from devtools.durable.state import (
    DurableHostError,
    InstanceAlreadyExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    UnknownFunctionError,
)

__all__ = [
    "DurableHostError",
    "InstanceAlreadyExistsError",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "LocalDurableHost",
    "UnknownFunctionError",
]
