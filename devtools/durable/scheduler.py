"""Scheduling: the simulated clock, durable timers and the queue of pending work.

Nothing runs by itself: ``run_until_idle()`` takes work items (orchestrator episodes, activities)
off the queue until none is left and no timer is due; ``advance()``/``advance_to()`` move the clock,
firing due timers one at a time in ``fire_at`` order. Activities are run for real by calling the
app's activity functions (input and result through the SDK's ``ActivityTriggerConverter``) and take
zero simulated time; a failing one becomes TaskFailed with the Python worker's failure text.

Activities waiting side by side in the queue (a fan-out: ``task_all`` over several ``call_activity``)
run concurrently in threads, as the real host dispatches them to several workers, so the wall-clock
latency of the Azure calls they make overlaps; their results are recorded in the order they were
scheduled, so histories (and tests) stay deterministic whatever finishes first.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devtools.durable.history import TASK_COMPLETED, TASK_FAILED, TERMINAL, TIMER_FIRED, parse, utc
from devtools.durable.replay import ReplayEngine
from devtools.durable.state import DurableHostError

logger = logging.getLogger("devtools.durable")
# Set in the threads running a fan-out's activities: a nested run_until_idle from there is ignored
# (as from the driving thread), instead of waiting for the drive lock its own driver holds.
_in_activity = threading.local()


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
        if self._driver == threading.get_ident() or getattr(_in_activity, "active", False):
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
                        with self._lock:
                            batch = [item]
                            while self._work and self._work[0]["kind"] == "activity":
                                batch.append(self._work.popleft())
                        steps += len(batch) - 1
                        self._run_activities(batch)
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
    #: Most activities of one fan-out run at once (the real host's maxConcurrentActivityFunctions).
    max_concurrent_activities = 16

    def _run_activities(self, items: list[dict]) -> None:
        """Run queued activities concurrently; record their results in queue order."""
        claimed = [c for c in (self._claim_activity(item) for item in items) if c is not None]
        if len(claimed) <= 1:
            for c in claimed:
                self._finish_activity(c, self._invoke_activity(c))
            return
        with ThreadPoolExecutor(
            max_workers=min(len(claimed), self.max_concurrent_activities), thread_name_prefix="durable-activity"
        ) as pool:
            futures = [pool.submit(self._invoke_in_thread, c) for c in claimed]
            outcomes = [f.result() for f in futures]
        for c, outcome in zip(claimed, outcomes, strict=True):
            self._finish_activity(c, outcome)

    def _invoke_in_thread(self, claimed: dict) -> dict:
        _in_activity.active = True
        try:
            return self._invoke_activity(claimed)
        finally:
            _in_activity.active = False

    def _run_activity(self, item: dict) -> None:
        claimed = self._claim_activity(item)
        if claimed is not None:
            self._finish_activity(claimed, self._invoke_activity(claimed))

    def _claim_activity(self, item: dict) -> dict | None:
        with self._lock:
            inst = self._instances.get(item["instance_id"])
            if inst is None or inst["execution_id"] != item["execution_id"] or inst["status"] in TERMINAL:
                return None
            task = inst["tasks"].get(str(item["task_id"]))
            if task is None or task["status"] != "scheduled":
                return None
            task["status"] = "running"
            group = inst["retry"].get(task.get("retry_group") or "")
            return {
                "item": item,
                "inst": inst,
                "task": task,
                "name": task["name"],
                "input_json": task["input"],
                "now": self._now,
                "attempt": group["attempts"] if group else 1,
            }

    def _invoke_activity(self, claimed: dict) -> dict:
        item, name, input_json, attempt = claimed["item"], claimed["name"], claimed["input_json"], claimed["attempt"]
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
        return {
            "result_json": result_json,
            "reason": reason,
            "details": details,
            "error_text": error_text,
            "tb_text": tb_text,
            "decoded_input": decoded_input,
        }

    def _finish_activity(self, claimed: dict, outcome: dict) -> None:
        item, name, now = claimed["item"], claimed["name"], claimed["now"]
        inst: dict = claimed["inst"]
        task: dict = claimed["task"]
        result_json, reason, details = outcome["result_json"], outcome["reason"], outcome["details"]
        error_text, tb_text, decoded_input = outcome["error_text"], outcome["tb_text"], outcome["decoded_input"]
        attempt = claimed["attempt"]
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
