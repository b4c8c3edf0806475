"""What a durable host holds: its instances, their inboxes and tasks, the work queue and the clock.

``DurableState`` owns that state and the primitives every part of the host uses on it (create an
instance, enqueue an event for it, allocate task ids), plus the durable client binding (the JSON the
extension hands a ``durable_client_input`` function, pointing at the host's loopback API). The
replay engine, the scheduler and the HTTP API build on it; ``LocalDurableHost`` puts them together.

An instance is a plain JSON-able dict (``export_state()`` snapshots them as they are):
``status``, ``history`` (committed wire-format events), ``inbox`` (events not yet delivered),
``tasks`` (activities, timers and sub-orchestrations by task id), ``retry`` (host-side retry
groups), ``flat`` (the actions seen so far, to detect non-determinism).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

from devtools.durable.history import NOT_OVERRIDABLE, event, execution_started, iso, utc
from devtools.worker.index import FunctionIndex, function_index


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


class DurableState:
    """The host's state and its primitives (see module docstring); parameters as ``LocalDurableHost``'s."""

    def __init__(
        self,
        functions: Any,
        *,
        now: datetime | None = None,
        task_hub: str = "TestHubName",
        connection_name: str = "Storage",
        overridable_existing_instance_states: str = "NonRunningStates",
        maximum_short_timer_duration: timedelta = timedelta(days=6),
        long_running_timer_interval: timedelta = timedelta(days=3),
        system_key: str = "local-system-key",
        max_steps: int = 10_000,
        invoke_timeout: float = 120.0,
    ) -> None:
        self.functions: FunctionIndex = function_index(functions)
        self._now = utc(now) if now is not None else datetime.now(UTC).replace(microsecond=0)
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

        # the loopback HTTP API (started by LocalDurableHost)
        self._server: ThreadingHTTPServer | None = None
        self._server_thread: threading.Thread | None = None

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
        return f"http://{host if isinstance(host, str) else host.decode()}:{port}"

    @property
    def rpc_base_url(self) -> str:
        return f"{self.url}/durabletask/"

    @property
    def webhook_base_url(self) -> str:
        return f"{self.url}/runtime/webhooks/durabletask"

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
        return event(event_type, when or self._now, **fields)

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
        now = iso(self._now)
        execution_id = uuid.uuid4().hex
        inst: dict[str, Any] = {
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
        return execution_started(inst, self._now)

    def _abandon_timers(self, inst: dict) -> None:
        for task in inst["tasks"].values():
            if task["kind"] == "timer" and task["status"] == "pending":
                task["status"] = "abandoned"
