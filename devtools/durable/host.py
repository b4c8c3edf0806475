"""``LocalDurableHost``: the replay engine, scheduler and HTTP API of one in-process durable host.

Also what a test or demo calls directly: ``start_new``/``raise_event``/``terminate``/``purge`` (the
same encodings as the Python client), ``status``/``history``, and ``export_state``/``from_state``
to simulate a host restart. See ``devtools.durable`` for what is faithful and what is simplified.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from devtools.durable.api import ApiServer, DurableApi, make_handler
from devtools.durable.history import EVENT_RAISED, EXECUTION_TERMINATED, TERMINAL, iso, parse
from devtools.durable.scheduler import Scheduler
from devtools.durable.state import DurableHostError, InstanceGoneError, UnknownFunctionError


class LocalDurableHost(Scheduler, DurableApi):
    """An in-process Durable Task host for one app (see ``devtools.durable``).

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

    # The snapshot format name; it predates the package layout, and snapshots taken before still load.
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
        super().__init__(
            functions,
            now=now,
            task_hub=task_hub,
            connection_name=connection_name,
            overridable_existing_instance_states=overridable_existing_instance_states,
            maximum_short_timer_duration=maximum_short_timer_duration,
            long_running_timer_interval=long_running_timer_interval,
            system_key=system_key,
            max_steps=max_steps,
            invoke_timeout=invoke_timeout,
        )
        if start_server:
            self._server = ApiServer(("127.0.0.1", 0), make_handler(self))
            self._server_thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="durable-host-api", daemon=True
            )
            self._server_thread.start()

    # ------------------------------------------------------------------ basics

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
                    "createdTime": parse(inst["created"]),
                    "lastUpdatedTime": parse(inst["updated"]),
                    "failure": inst["failure"],
                    "parentInstanceId": (inst["parent"] or {}).get("instance_id"),
                }
            )

    def history(self, instance_id: str) -> list[dict]:
        """The committed history events (wire format) of the current execution."""
        with self._lock:
            return copy.deepcopy(self._instance(instance_id)["history"])

    # ------------------------------------------------------- persistence
    def export_state(self) -> dict:
        """A JSON-serialisable snapshot of everything the durable store would
        hold: instances (history, inbox, timers, retries), queued work, the
        activity log and the clock."""
        with self._lock:
            calls = []
            for call in self._activity_calls:
                call = dict(call)
                call["time"] = iso(call["time"])
                calls.append(call)
            state = {
                "format": self.STATE_FORMAT,
                "now": iso(self._now),
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
        kwargs["now"] = parse(state["now"])
        host = cls(functions, **kwargs)
        with host._lock:
            host._timer_order = state.get("timer_order", 0)
            host._instances = {i["instance_id"]: i for i in state["instances"]}
            host._activity_calls = []
            for call in state.get("activity_calls", []):
                call["time"] = parse(call["time"])
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
