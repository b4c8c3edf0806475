"""Issue 14: one phone escalation per contact number — the pager orchestration and its activities.

- ``contact_pager``: one instance per contact number, ``pager-{key}`` (``key``: a hash of the number, never the
  number). It owns the number's call schedule (``shared/notify/contact_schedule.py``) and its line: one call at
  a time, each announcing every incident then waiting for the number (``shared/notify/contact_pages.py``). It
  waits for ``Page`` (an incident was paged to it), ``LineFree`` (its call ended) and its timers; when nothing
  waits any more it continues as new (history truncated) and sleeps until the next page.
- ``page_contacts``: an incident's escalation pages its contacts (the pages rows first, then each pager is
  woken, or started). ``call_escalation`` (functions/escalation.py) calls it instead of dialling.
- ``plan_contact_calls``, ``place_contact_call``, ``release_contact_line``: the pager's steps.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from shared import runtime
from shared.notify.contact_schedule import (
    MAX_CALL,
    next_call_due,
    pager_instance_id,
    recent_calls,
    slot_after_call,
)
from shared.notify.names import LINE_FREE_EVENT, PAGE_EVENT, PAGER_ORCHESTRATOR, PAGES_EXHAUSTED_EVENT

bp = df.Blueprint()
log = logging.getLogger("soc_responder.notify")

IDLE_RECHECK = timedelta(minutes=30)
MAX_TURNS = 20
"""Turns of one execution before the pager continues as new with its state (keeps its history short)."""


def _data(value: Any) -> dict:
    import json

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@bp.orchestration_trigger(context_name="context")
def contact_pager(context: df.DurableOrchestrationContext):
    """The call schedule and line of one contact number (see the module docstring)."""
    state = _data(context.get_input())
    key = state["contact"]
    calls = [_at(t) for t in state.get("calls") or []]
    episode: dict | None = state.get("episode")
    # A pager started by a page gets the first plan in its input: its first call is dispatched at once.
    first_plan: dict | None = state.get("plan")
    page = context.wait_for_external_event(PAGE_EVENT)
    line = context.wait_for_external_event(LINE_FREE_EVENT)

    def show(what: str, plan: dict | None = None, due: datetime | None = None) -> None:
        context.set_custom_status(
            {
                "contact": key,
                "state": what,
                "waiting": (plan or {}).get("pending"),
                "episodeStart": (episode or {}).get("start"),
                "callsThisEpisode": (episode or {}).get("n", 0),
                "nextCallAt": due.isoformat() if due else None,
            }
        )

    def carry_on() -> dict:
        return {"contact": key, "calls": [c.isoformat() for c in calls], "episode": episode}

    turns = 0
    while True:
        turns += 1
        now = context.current_utc_datetime
        calls = recent_calls(calls, now)
        if first_plan is not None:
            plan, first_plan = first_plan, None
        else:
            plan = yield context.call_activity("plan_contact_calls", {"contact": key})
        if not plan.get("pending"):
            if episode is not None or turns > 1:
                # The episode is over (or a wake found nothing): start afresh, keeping the calls that still
                # count against the hourly cap; the new execution reads the pages row before it sleeps.
                episode = None
                context.continue_as_new(carry_on())
                return {"contact": key, "state": "idle"}
            show("idle", plan)
            # A page wakes it; the timer is a safety net should a wake ever be lost (the pages row holds the page).
            nap = context.create_timer(now + IDLE_RECHECK)
            winner = yield context.task_any([page, nap])
            if winner is page:
                nap.cancel()
                first_plan = _data(page.result).get("plan")  # the waker read the row for us: no plan step
                page = context.wait_for_external_event(PAGE_EVENT)
            continue
        if turns > MAX_TURNS:
            context.continue_as_new(carry_on())
            return {"contact": key, "state": "continued"}
        if episode is None:
            episode = {
                "id": now.strftime("%Y%m%dT%H%M%S"),
                "start": now.isoformat(),
                "slot": 1,
                "n": 0,
                "tz": plan.get("timezone") or "UTC",
            }
        start, tz = _at(episode["start"]), episode["tz"]
        due = next_call_due(start, int(episode["slot"]), calls, bool(plan.get("fresh")), now, tz)
        if due > now:
            show("waiting", plan, due)
            timer = context.create_timer(due)
            winner = yield context.task_any([page, timer])
            if winner is page:  # a new page may bring the call forward: plan again (the waker read the row)
                timer.cancel()
                first_plan = _data(page.result).get("plan")
                page = context.wait_for_external_event(PAGE_EVENT)
            continue
        show("calling", plan)
        placed = yield context.call_activity(
            "place_contact_call",
            {"contact": key, "number": int(episode["n"]) + 1, "episode": episode["id"], "scheduledAt": due.isoformat()},
        )
        if placed.get("retryAfterSeconds"):  # every caller number has two calls in progress: wait a little
            show("caller numbers busy", plan)
            yield context.create_timer(now + timedelta(seconds=int(placed["retryAfterSeconds"])))
            continue
        if not placed.get("attempted"):
            continue  # nothing left to announce (settled or exhausted): the next plan ends the episode
        placed_at = context.current_utc_datetime
        calls.append(placed_at)
        episode = {
            **episode,
            "n": int(episode["n"]) + 1,
            "slot": slot_after_call(start, int(episode["slot"]), placed_at, tz),
        }
        if not placed.get("live"):
            continue
        show("on the line", plan)
        deadline = context.create_timer(placed_at + MAX_CALL)
        while True:
            # Pages that arrive meanwhile are not consumed one by one: the next plan, once the line is free,
            # reads them all from the pages row (a storm's pages do not each cost the pager a turn).
            winner = yield context.task_any([line, deadline])
            if winner is line:
                ended = _data(line.result)
                line = context.wait_for_external_event(LINE_FREE_EVENT)
                if ended.get("recordId") != placed.get("recordId"):
                    continue  # the end of an earlier call, reported late
                deadline.cancel()
                break
            # No end of call from ACS within the longest call: hang up, free the line and the caller number.
            yield context.call_activity(
                "release_contact_line", {"contact": key, "recordId": placed.get("recordId"), "timedOut": True}
            )
            break


@bp.activity_trigger(input_name="request")
def plan_contact_calls(request: dict) -> dict:
    """How many pages wait for the number, and whether one was never announced to it."""
    return runtime.context().notifications.contact_pages.plan(request["contact"])


@bp.activity_trigger(input_name="request")
@bp.durable_client_input(client_name="client")
async def place_contact_call(request: dict, client: df.DurableOrchestrationClient) -> dict:
    """One call of the number, announcing every page still waiting; tells escalations a number gave up on them."""
    pages = runtime.context().notifications.contact_pages
    result = await asyncio.to_thread(
        pages.place_call, request["contact"], int(request["number"]), request["episode"], request.get("scheduledAt")
    )
    for gone in result.get("exhausted") or []:
        if gone.get("escalationId"):
            await _raise(
                client,
                gone["escalationId"],
                PAGES_EXHAUSTED_EVENT,
                {"contact": request["contact"], "attempts": gone.get("attempts"), "reason": gone.get("reason")},
            )
    return result


@bp.activity_trigger(input_name="request")
def release_contact_line(request: dict) -> dict:
    """The call held the line longer than any call can: hang up, free the line and the caller number."""
    return runtime.context().notifications.contact_pages.release_line(
        request["contact"], request["recordId"], bool(request.get("timedOut"))
    )


@bp.activity_trigger(input_name="request")
@bp.durable_client_input(client_name="client")
async def page_contacts(request: dict, client: df.DurableOrchestrationClient) -> dict:
    """An incident's escalation pages its contact numbers (``call_escalation``'s first step)."""
    return await page(client, request)


async def page(client: df.DurableOrchestrationClient, request: dict) -> dict:
    """Write the incident's page to each number's pages row, then wake each number's pager (start it if needed)."""
    pages = runtime.context().notifications.contact_pages
    result = await asyncio.to_thread(pages.register, request)
    for key in result.pop("wake", None) or []:  # not when a wake is already on its way to that pager
        try:
            await wake_pager(client, key)
        except Exception:
            await asyncio.to_thread(pages.wake_failed, key)
            raise
    return result


async def wake_pager(client: df.DurableOrchestrationClient, key: str) -> str:
    """Raise ``Page`` on the number's pager; start it when there is none (or it ended). Never fails the page:
    the pages row already holds it, and a running pager reads the row at every turn."""
    instance_id = pager_instance_id(key)
    # The plan travels with the wake (one durable hop less before the call); the pager re-reads the row anyway
    # at every later turn and when it dials.
    plan = await asyncio.to_thread(runtime.context().notifications.contact_pages.plan, key)
    for _ in range(3):
        if await _raise(client, instance_id, PAGE_EVENT, {"plan": plan}):
            return "woken"
        try:
            await client.start_new(PAGER_ORCHESTRATOR, instance_id, {"contact": key, "plan": plan})
            return "started"
        except Exception as exc:
            if "already exists" not in str(exc).lower():
                log.error("could not start pager %s: %s", instance_id, exc)
                raise
    return "busy"


async def _raise(client: df.DurableOrchestrationClient, instance_id: str, event: str, data: dict) -> bool:
    try:
        await client.raise_event(instance_id, event, data)
    except Exception as exc:
        log.info("%s not delivered to %s: %s", event, instance_id, exc)
        return False
    return True


async def line_free(client: df.DurableOrchestrationClient, pager: str, record_id: str) -> None:
    """Tell a number's pager its call ended (the ACS callback)."""
    await _raise(client, pager, LINE_FREE_EVENT, {"recordId": record_id})
