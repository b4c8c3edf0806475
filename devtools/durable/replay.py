"""Replay: each orchestrator episode driven through the durable SDK's own replay engine.

An episode delivers ONE new event to an instance: the host builds the context JSON the extension
sends out-of-proc workers (played history + OrchestratorStarted + the event), calls the app's
orchestrator function (the SDK replays the history and runs user code until it yields), and
interprets the actions JSON it returns the way the extension's shim does: new activities,
timers and sub-orchestrations are recorded as history and scheduled, a replay that no longer
matches the recorded actions fails the instance ("Non-deterministic workflow detected"),
``call_*_with_retry`` is retried by the host (retry timers, as DTFx's retry interceptor does),
and completion, failure, termination and continue-as-new are recorded and reported to a parent.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from datetime import timedelta
from typing import Any

from azure.functions import meta
from azure.functions.durable_functions import OrchestrationTriggerConverter

from devtools.durable.history import (
    CALL_ACTIVITY,
    CALL_ACTIVITY_WITH_RETRY,
    CALL_SUB_ORCHESTRATOR,
    CALL_SUB_ORCHESTRATOR_WITH_RETRY,
    CONTINUE_AS_NEW,
    CREATE_TIMER,
    EVENT_NAMES,
    EXECUTION_COMPLETED,
    EXECUTION_STARTED,
    EXECUTION_TERMINATED,
    ORCHESTRATOR_COMPLETED,
    ORCHESTRATOR_STARTED,
    OUT_OF_PROC_LABEL,
    SUB_ORCHESTRATION_COMPLETED,
    SUB_ORCHESTRATION_CREATED,
    SUB_ORCHESTRATION_FAILED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_SCHEDULED,
    TERMINAL,
    TIMER_CREATED,
    TIMER_FIRED,
    UNSUPPORTED_ACTIONS,
    WAIT_FOR_EXTERNAL_EVENT,
    action_name,
    context_json,
    flatten,
    iso,
    parse,
)
from devtools.durable.state import DurableState, InstanceAlreadyExistsError

logger = logging.getLogger("devtools.durable")


class ReplayEngine(DurableState):
    """Orchestrator episodes and their outcome (see module docstring)."""

    # ---------------------------------------------------------- episodes
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
            context_json_text = context_json(
                inst,
                [started, dict(message, IsPlayed=False)],
                self.long_running_timer_interval,
                self.maximum_short_timer_duration,
            )
            execution_id = inst["execution_id"]

        error: str | None = None
        state: dict[str, Any] = {}
        try:
            decoded = OrchestrationTriggerConverter.decode(
                meta.Datum(value=context_json_text, type="json"), trigger_metadata={}
            )
            result = self.functions.invoke(entry_fn, {entry_fn.trigger_name: decoded}, timeout=self.invoke_timeout)
            encoded = OrchestrationTriggerConverter.encode(result, expected_type=None)
            state = json.loads(encoded.value)
        except Exception as exc:  # the SDK raises with the out-of-proc payload
            text = str(exc)
            if OUT_OF_PROC_LABEL in text:
                error, _, payload = text.partition(OUT_OF_PROC_LABEL)
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
                    "fire_at": iso(fire_at),
                    "status": "pending",
                    "order": self._timer_order,
                    "retry_group": group["gid"],
                }
                decisions.append(self._ev(TIMER_CREATED, EventId=timer_id, FireAt=iso(fire_at)))
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
        name: str | None,
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
            "scheduled_at": iso(self._now),
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
        flat = flatten(state.get("actions") or [])
        seen = inst["flat"]
        for i, record in enumerate(seen):
            action = flat[i] if i < len(flat) else None
            if action is None or action.get("actionType") != record["type"] or action_name(action) != record["name"]:
                got = None if action is None else (action.get("actionType"), action_name(action))
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
            at: Any = action.get("actionType")
            record = {"type": at, "name": action_name(action), "id": None}
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
                    "fire_at": iso(parse(action["fireAt"])),
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
                unsupported = UNSUPPORTED_ACTIONS.get(at, f"action type {at}")
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
        inst["updated"] = iso(self._now)
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
        inst["updated"] = iso(self._now)
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
        inst["updated"] = iso(self._now)
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
                "updated": iso(self._now),
            }
        )
        # messages addressed to the old execution are dropped when dequeued;
        # external events (instance-scoped) carry over to the new execution
        self._enqueue(inst, self._execution_started(inst), front=True)
