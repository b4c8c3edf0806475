"""The Durable Task history wire format: event and action types, event builders, time formats.

What the extension sends an out-of-proc worker (``context_json``) and what the HTTP API shows of a
history (``history_view``) are built here; the replay engine (``replay.py``) appends the events.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil.parser import parse as _dt_parse  # type: ignore[import-untyped]  # no stubs installed

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

UNSUPPORTED_ACTIONS = {CALL_ENTITY: "call_entity", CALL_HTTP: "call_http", SIGNAL_ENTITY: "signal_entity"}

TERMINAL = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
NOT_OVERRIDABLE = frozenset({"Pending", "Running", "ContinuedAsNew", "Suspended"})

OUT_OF_PROC_LABEL = "\n\n$OutOfProcData$:"


def utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def iso(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_seconds(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str) -> datetime:
    return utc(_dt_parse(value))


def timespan(td: timedelta) -> str:
    """A .NET TimeSpan "c" string (what the extension sends)."""
    total = int(td.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{seconds:02d}"


def flatten(actions: Any) -> list[dict]:
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


def action_name(action: dict) -> str | None:
    return action.get("functionName") or action.get("externalEventName")


def json_bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() == "true"


def event(event_type: int, when: datetime, **fields: Any) -> dict:
    """A history event as the extension records it (``EventId`` -1 unless ``fields`` says otherwise)."""
    built = {"EventType": event_type, "EventId": -1, "IsPlayed": False, "Timestamp": iso(when)}
    built.update(fields)
    return built


def execution_started(inst: dict, when: datetime) -> dict:
    """The ExecutionStarted event of ``inst``'s current execution (with its parent, if a sub-orchestration)."""
    parent = inst.get("parent")
    parent_info = None
    if parent:
        parent_info = {
            "Name": parent["name"],
            "TaskScheduleId": parent["task_id"],
            "OrchestrationInstance": {"InstanceId": parent["instance_id"], "ExecutionId": parent["execution_id"]},
        }
    return event(
        EXECUTION_STARTED,
        when,
        Name=inst["name"],
        Version=inst["version"],
        Input=inst["input_raw"],
        ParentInstance=parent_info,
        Tags=None,
        OrchestrationInstance={"InstanceId": inst["instance_id"], "ExecutionId": inst["execution_id"]},
    )


def context_json(
    inst: dict, new_events: list[dict], long_running_timer_interval: timedelta, maximum_short_timer_duration: timedelta
) -> str:
    """The orchestration-trigger context the extension sends: the played history plus ``new_events``."""
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
            "longRunningTimerIntervalDuration": timespan(long_running_timer_interval),
            "maximumShortTimerDuration": timespan(maximum_short_timer_duration),
            "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
        }
    )


def history_view(recorded: dict, with_output: bool) -> dict:
    """One event as the status API's ``showHistory`` lists it (type names, no empty fields)."""
    view = {
        "EventType": EVENT_NAMES.get(recorded["EventType"], str(recorded["EventType"])),
        "Timestamp": recorded["Timestamp"],
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
        if recorded.get(key) not in (None, -1):
            view[key] = recorded[key]
    if with_output:
        for key in ("Result", "Input", "Details"):
            if recorded.get(key) is not None:
                view[key] = recorded[key]
    return view
