"""Scheduling: the simulated clock, durable timers and the queue of pending work.

Nothing runs by itself: ``run_until_idle()`` takes work items (orchestrator episodes, activities)
off the queue until none is left and no timer is due; ``advance()``/``advance_to()`` move the clock,
firing due timers one at a time in ``fire_at`` order. Activities are run for real by calling the
app's activity functions (input and result through the SDK's ``ActivityTriggerConverter``) and take
zero simulated time; a failing one becomes TaskFailed with the Python worker's failure text.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import traceback
from datetime import datetime, timedelta
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devtools.durable.history import TASK_COMPLETED, TASK_FAILED, TERMINAL, TIMER_FIRED, parse, utc
from devtools.durable.replay import ReplayEngine
from devtools.durable.state import DurableHostError

logger = logging.getLogger("devtools.durable")


class Scheduler(ReplayEngine):
    """The clock, timers and work queue of the host (see module docstring)."""

    # ------------------------------------------------------------- timers
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
                            "fire_at": parse(task["fire_at"]),
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
        target = utc(when)
        if target < self._now:
            raise ValueError(f"cannot move the clock back from {self._now} to {target}")
        fired = 0
        while True:
            self.run_until_idle()
            with self._lock:
                due = self._earliest_timer(target)
                if due is None:
                    break
                fire_at = parse(self._instances[due[0]]["tasks"][str(due[1])]["fire_at"])
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
                fire_at = parse(task["fire_at"])
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
