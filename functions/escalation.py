"""The phone escalation of one incident (docs/spec/notification.md): orchestration and activities.

- ``call_escalation``: instance ``escalation-{incidentId}`` (so ack finds it by incident id, and a second
  start while it runs is refused by the host: one escalation per incident). Issue 14: it pages the
  incident's contact numbers, whose pagers (functions/contact_pager.py, one per number) place the calls —
  one call at a time per number, announcing all its incidents — and it waits for the acknowledgement, a
  stop, or every number giving up on it.
- Activities ``notify_incident`` / ``start_call_escalation`` (the runbook's notify step) and
  ``end_call_escalation`` (the calls' activities are the pagers', functions/contact_pager.py).
- ``start_escalation``: what the operator routes (functions/notify.py) and the runbook use to start one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import azure.durable_functions as df

from functions.contact_pager import page as page_contacts_now
from functions.contact_pager import wake_pager
from functions.orchestrations import RUNNING, status_name
from shared import runtime
from shared.notify.names import (
    ACK_EVENT,
    ESCALATION_ORCHESTRATOR,
    PAGES_EXHAUSTED_EVENT,
    STOP_EVENT,
    escalation_instance_id,
)

bp = df.Blueprint()
log = logging.getLogger("soc_responder.notify")


# -- the escalation orchestration -------------------------------------------------------------------


def _event_data(value: Any) -> dict:
    """External event payloads arrive as JSON text from the Python client (double encoding) or as objects."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"note": value}
    return value if isinstance(value, dict) else {}


@bp.orchestration_trigger(context_name="context")
def call_escalation(context: df.DurableOrchestrationContext):
    """Page the incident's contact numbers, then wait: acknowledged, stopped, or every number gave up.

    Issue 14: the calls themselves are placed by each number's pager (``contact_pager``), on the number's own
    schedule (0/+15/+30/+45 min, then hourly) and one at a time, each announcing every incident waiting for that
    number. The ``Acknowledged`` and ``StopEscalation`` events are raised here as before (the ack route, a key
    press, a lowered priority); ``PagesExhausted`` comes from a pager that announced the incident
    ``maxAttempts`` times without acknowledgement. The event tasks are created once, so an event that arrives
    while the contacts are being paged is not lost.
    """
    request = _event_data(context.get_input())
    request.setdefault("requestKey", "manual")
    incident_id = request.get("incidentId")
    limit = max(1, int(request.get("maxAttempts") or 12))
    started = context.current_utc_datetime
    acknowledged = context.wait_for_external_event(ACK_EVENT)
    stopped = context.wait_for_external_event(STOP_EVENT)
    exhausted = context.wait_for_external_event(PAGES_EXHAUSTED_EVENT)
    attempts, given_up = 0, set()
    contacts: list[str] = []
    outcome, reason, by = "exhausted", f"limit of {limit} attempt(s) reached", None

    def show(state: str) -> None:
        context.set_custom_status(
            {
                "incidentId": incident_id,
                "state": state,
                "attempts": attempts,
                "maxAttempts": limit,
                "startedAt": started.isoformat(),
                "contacts": len(contacts),
                "pagers": [f"pager-{k}" for k in contacts],
                "trigger": request.get("trigger"),
            }
        )

    show("paging")
    # Paged by the starter already (``paged``): the pagers are dialling. The page is checked again here (it is
    # idempotent): an acknowledgement, a lowered priority or a close since then ends the escalation at once.
    prepaged = request.pop("paged", None) or {}
    contacts = list(prepaged.get("contacts") or [])
    paged = prepaged if prepaged.get("stop") else None
    if paged is None:
        retry = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)
        try:
            paged = yield context.call_activity_with_retry(
                "page_contacts", retry, {**request, "instanceId": context.instance_id}
            )
        except Exception as exc:
            paged = {"stop": f"the contacts could not be paged: {str(exc)[:200]}", "impossible": True}
    if paged.get("stop"):
        stop = paged["stop"]
        outcome = "impossible" if paged.get("impossible") else ("acknowledged" if stop == "acknowledged" else "stopped")
        reason = stop
    else:
        contacts = list(dict.fromkeys([*contacts, *(paged.get("contacts") or [])]))
        show("paged")
        while True:
            winner = yield context.task_any([acknowledged, stopped, exhausted])
            data = _event_data(winner.result)
            if winner is exhausted:
                given_up.add(data.get("contact"))
                attempts = max(attempts, int(data.get("attempts") or 0))
                if given_up >= set(contacts):
                    reason = data.get("reason") or reason
                    break
                exhausted = context.wait_for_external_event(PAGES_EXHAUSTED_EVENT)
                continue
            outcome = "acknowledged" if winner is acknowledged else "stopped"
            reason, by = data.get("reason") or outcome, data.get("actor")
            break

    show(outcome)
    summary = {
        "incidentId": incident_id,
        "outcome": outcome,
        "attempts": attempts,
        "reason": reason,
        "by": by,
        "startedAt": started.isoformat(),
        "requestKey": request.get("requestKey"),
        "instanceId": context.instance_id,
        "skippedSlots": [],
        "contacts": contacts,
    }
    try:
        ended = yield context.call_activity("end_call_escalation", summary)
        summary["attempts"] = (ended or {}).get("attempts", attempts)
    except Exception as exc:
        summary["endError"] = str(exc)[:300]
    return summary


# -- activities ------------------------------------------------------------------------------------


@bp.activity_trigger(input_name="request")
def notify_incident(request: dict) -> dict:
    """The runbook's notify step: incident email (or P4 digest queue) and whether to phone."""
    return runtime.context().notifications.notify_runbook(
        request["incidentId"],
        int(request.get("epoch") or 1),
        request.get("containment"),
        request.get("reason"),
        request.get("previousPriority"),
        request.get("actor"),
    )


async def ensure_escalation(client: df.DurableOrchestrationClient, request: dict) -> dict:
    """Start the incident's escalation unless one runs (or this very request already ran)."""
    instance_id = escalation_instance_id(request["incidentId"])
    try:
        status = await client.get_status(instance_id, show_input=True)
    except Exception as exc:
        log.warning("status of %s unavailable: %s", instance_id, exc)
        status = None
    state = status_name(status)
    if state in RUNNING:
        return {"instanceId": instance_id, "state": "already-running"}
    if state and _event_data(getattr(status, "input_", None)).get("requestKey") == request["requestKey"]:
        return {"instanceId": instance_id, "state": "already-done"}
    # issue 14: page the contact numbers now, so the numbers' pagers dial without waiting for the escalation's
    # first step (the escalation checks its page again when it starts: an acknowledgement in between counts).
    request = {**request, "paged": await page_contacts_now(client, {**request, "instanceId": instance_id})}
    try:
        await client.start_new(ESCALATION_ORCHESTRATOR, instance_id, request)
    except Exception as exc:
        if "already exists" in str(exc).lower():
            return {"instanceId": instance_id, "state": "already-running"}
        raise
    return {"instanceId": instance_id, "state": "started"}


async def start_escalation(
    client: df.DurableOrchestrationClient,
    incident_id: str,
    trigger: str,
    request_key: str,
    reason: str,
    actor: str | None = None,
    epoch: int | None = None,
) -> dict:
    from shared.models import ActorType, Phase
    from shared.notify.incidents import load_incident

    notifier = runtime.context().notifications
    incident = await asyncio.to_thread(load_incident, notifier.store, incident_id)
    request = notifier.escalation_request(incident, trigger, request_key, reason, actor, epoch)
    result = await ensure_escalation(client, request)
    words = {
        "started": "started",
        "already-running": "already running: not started twice",
        "already-done": "already done for this request",
    }[result["state"]]
    await asyncio.to_thread(
        notifier.record_evidence,
        incident_id,
        f"escalation.{result['state']}",
        f"Phone escalation {words} ({reason})",
        {
            "instanceId": result["instanceId"],
            "trigger": trigger,
            "requestKey": request_key,
            "reason": reason,
            "maxAttempts": request["maxAttempts"],
            "timezone": request["timezone"],
        },
        Phase.NOTIFY,
        actor or "soc-responder",
        ActorType.ANALYST if actor else ActorType.APP,
    )
    return result


@bp.activity_trigger(input_name="request")
@bp.durable_client_input(client_name="client")
async def start_call_escalation(request: dict, client: df.DurableOrchestrationClient) -> dict:
    """Start ``escalation-{incidentId}`` for the runbook (async: it needs the durable client).

    Issue 14: a breaker page for the SOC's duty contacts (``socPage``, decided by the notify step) is paged to
    their numbers here too, so it waits for their line like every other call.
    """
    epoch = int(request.get("epoch") or 1)
    soc_page = request.get("socPage")
    if isinstance(soc_page, dict) and soc_page.get("incidentId"):
        try:
            await page_contacts_now(client, soc_page)
        except Exception as exc:  # the partner's escalation must still start
            log.error("SOC breaker page of %s failed: %s", request.get("incidentId"), exc)
    return await start_escalation(
        client,
        request["incidentId"],
        request.get("trigger") or "p1",
        f"runbook-e{epoch}",
        request.get("reason") or "P1 runbook",
        epoch=epoch,
    )


@bp.activity_trigger(input_name="request")
@bp.durable_client_input(client_name="client")
async def end_call_escalation(request: dict, client: df.DurableOrchestrationClient) -> dict:
    """Withdraw the incident's pages (issue 14: a call announcing only it is hung up, and each number's pager is
    woken to see what still waits), evidence the escalation's end, and email people when it was exhausted or
    impossible."""
    notifier = runtime.context().notifications
    contacts = request.get("contacts") or []
    if contacts:
        withdrawn = await asyncio.to_thread(
            notifier.contact_pages.withdraw, request["incidentId"], request.get("requestKey"), contacts
        )
        request = {**request, "attempts": max(int(request.get("attempts") or 0), withdrawn["attempts"])}
        for key in contacts:
            if await asyncio.to_thread(notifier.contact_pages.needs_wake, key):
                await wake_pager(client, key)
    ended = await asyncio.to_thread(notifier.escalation_ended, request)
    return {**ended, "attempts": int(request.get("attempts") or 0)}
