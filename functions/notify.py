"""Notification and phone escalation (docs/spec/triage.md, docs/spec/notification.md, docs/spec/operator-api.md): orchestration, activities, operator routes, ACS callbacks, timers.

- ``call_escalation``: the phone escalation of one incident, instance
  ``escalation-{incidentId}`` (so ack finds it by incident id, and a second
  start while it runs is refused by the host: one escalation per incident).
  Issue 14: it pages the incident's contact numbers, whose pagers
  (functions/contact_pager.py, one per number) place the calls — one call
  at a time per number, announcing all its incidents — and it waits for the
  acknowledgement, a stop, or every number giving up on it.
- Activities ``notify_incident`` / ``start_call_escalation`` (the runbook's
  notify step) and ``end_call_escalation`` (the calls' activities are the
  pagers', functions/contact_pager.py).
- ``POST /api/incidents/{id}/ack|priority|call`` (docs/spec/operator-api.md) and
  ``POST /api/callbacks/acs`` (ACS call events, validated per call).
- Timers ``sla_watchdog`` (every minute) and ``p4_daily_digest`` (hourly;
  each partner's digest goes out once a day at its local digest hour).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Literal, overload

import azure.durable_functions as df
import azure.functions as func

from functions.access import operator_access
from functions.contact_pager import line_free, wake_pager
from functions.contact_pager import page as page_contacts_now
from functions.http import handle_errors, json_response, read_json
from functions.orchestrations import ENDED_UNFINISHED, RUNNING, status_name
from shared import runtime
from shared.errors import ConflictError, ValidationError
from shared.notify.names import (
    ACK_EVENT,
    ESCALATION_ORCHESTRATOR,
    PAGES_EXHAUSTED_EVENT,
    STOP_EVENT,
    escalation_instance_id,
)

bp = df.Blueprint()
log = logging.getLogger("soc_responder.notify")

RUNBOOK = "incident_runbook"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


async def _start_escalation(
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
    return await _start_escalation(
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


# -- operator routes (docs/spec/operator-api.md) ------------------------------------------------------------------------


def _body(req: func.HttpRequest) -> dict:
    body = read_json(req)
    if not isinstance(body, dict):
        raise ValidationError(
            "request body must be a JSON object", [{"field": "body", "message": "expected an object"}]
        )
    return body


def _operator_request(req: func.HttpRequest) -> tuple[str, dict, str]:
    """(incident id, JSON object body, actor) of an operator route (docs/spec/operator-api.md): every call names its actor."""
    body = _body(req)
    return req.route_params.get("id", ""), body, _text(body, "actor")


@overload
def _text(body: dict, name: str, *, required: Literal[True] = True, max_len: int = 256) -> str: ...


@overload
def _text(body: dict, name: str, *, required: bool, max_len: int = 256) -> str | None: ...


def _text(body: dict, name: str, *, required: bool = True, max_len: int = 256) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} is required", [{"field": name, "message": "a non-empty string is required"}])
    value = value.strip()
    if len(value) > max_len:
        raise ValidationError(f"{name} is too long", [{"field": name, "message": f"at most {max_len} characters"}])
    if name == "actor" and _CONTROL.search(value):
        raise ValidationError("actor is invalid", [{"field": name, "message": "control characters are not allowed"}])
    return value


async def _signal(client: df.DurableOrchestrationClient, incident_id: str, event: str, data: dict) -> str:
    """Raise ``event`` on the incident's escalation: "signalled", or "not running"."""
    try:
        await client.raise_event(escalation_instance_id(incident_id), event, data)
    except Exception as exc:
        log.info("%s not delivered to %s: %s", event, escalation_instance_id(incident_id), exc)
        return "not running"
    return "signalled"


def _stamp(moment: datetime) -> str:
    from shared.models import isoformat

    return re.sub(r"[^0-9A-Za-z]", "", isoformat(moment))


@bp.route(route="incidents/{id}/ack", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@operator_access("ack")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def acknowledge_incident(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Contact established: stops the phone escalation at once. Body ``{"actor", "note"?}``."""
    from shared.models import ActorType, isoformat

    incident_id, body, actor = _operator_request(req)
    note = _text(body, "note", required=False, max_len=2000)
    notifier = runtime.context().notifications
    incident, first = await asyncio.to_thread(notifier.acknowledge, incident_id, actor, ActorType.ANALYST, "api", note)
    escalation = await _signal(client, incident_id, ACK_EVENT, {"actor": actor, "via": "api", "reason": "acknowledged"})
    return json_response(
        200,
        {
            "incidentId": incident.id,
            "status": incident.status.value,
            "acknowledgedAt": isoformat(incident.acknowledged_at),
            "acknowledgedBy": incident.acknowledged_by,
            "firstAcknowledgement": first,
            "escalation": "stopped" if escalation == "signalled" else "not running",
        },
    )


@bp.route(route="incidents/{id}/priority", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@operator_access("priority")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def change_incident_priority(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Raise or lower the priority. Body ``{"actor", "priority": "P1".."P4", "reason"}``."""
    from shared.models import Phase, Priority
    from shared.notify.priority import change_priority
    from shared.notify.templates import NotifyEvent

    incident_id, body, actor = _operator_request(req)
    raw = body.get("priority")
    if not isinstance(raw, str) or raw.strip().upper() not in Priority.__members__:
        raise ValidationError(
            "priority must be one of P1, P2, P3, P4", [{"field": "priority", "message": "expected P1, P2, P3 or P4"}]
        )
    priority = Priority(raw.strip().upper())
    reason = _text(body, "reason", max_len=2000)
    ctx = runtime.context()
    change = await asyncio.to_thread(change_priority, ctx.store, ctx.partners, incident_id, priority, actor, reason)
    out = change.response()
    if not change.changed:
        return json_response(200, out)
    runbook_started = False
    if change.runbook is not None:
        try:
            await client.start_new(RUNBOOK, change.runbook.instance_id, change.runbook.input)
            runbook_started = True
            out["runbook"] = change.runbook.instance_id
        except Exception as exc:
            log.error("could not start runbook %s: %s", change.runbook.instance_id, exc)
            await asyncio.to_thread(
                ctx.notifications.record_evidence,
                incident_id,
                "runbook.start-failed",
                "The P1 runbook could not be started; it will be retried by the SLA watchdog",
                {"instanceId": change.runbook.instance_id, "error": type(exc).__name__},
                Phase.TRIAGE,
            )
    if change.lowered:
        out["escalation"] = await _signal(
            client, incident_id, STOP_EVENT, {"actor": actor, "reason": f"priority lowered to {priority.value}"}
        )
        out["containment"] = "unchanged: lowering the priority never releases containment"
    elif priority == Priority.P2:
        why = ctx.notifications.p2_call_reason(change.incident)
        if why:
            out["escalation"] = (
                await _start_escalation(client, incident_id, "p2-rule", f"p2-{_stamp(change.incident.updated_at)}", why)
            )["state"]
    if not runbook_started:  # a raise to P1 is announced by the runbook's email, with the actions it took
        out["email"] = (
            await asyncio.to_thread(
                ctx.notifications.notify_event,
                incident_id,
                NotifyEvent.PRIORITY_CHANGED,
                f"priority-{_stamp(change.incident.updated_at)}",
                actor=actor,
                reason=reason,
                previous_priority=change.previous.value,
            )
        )["status"]
    return json_response(200, out)


@bp.route(route="incidents/{id}/call", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@operator_access("call")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def request_call_escalation(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Start the phone escalation for a P2 (or a P1). Body ``{"actor", "reason"}``."""
    from shared.evidence import now_ms
    from shared.models import Priority
    from shared.notify.incidents import load_incident

    incident_id, body, actor = _operator_request(req)
    reason = _text(body, "reason", max_len=2000)
    ctx = runtime.context()
    incident = await asyncio.to_thread(load_incident, ctx.store, incident_id)
    refusal = None
    if incident.priority not in (Priority.P1, Priority.P2):
        refusal = (
            f"phone escalation is for P1 and P2 incidents; this one is {incident.priority.value}: "
            "raise its priority first"
        )
    elif not incident.status.is_open:
        refusal = f"the incident is {incident.status.value}"
    if refusal:
        from shared.models import ActorType, Phase

        await asyncio.to_thread(
            ctx.notifications.record_evidence,
            incident_id,
            "escalation.refused",
            f"Call request by {actor} refused: {refusal}",
            {"reason": reason, "refusal": refusal},
            Phase.NOTIFY,
            actor,
            ActorType.ANALYST,
        )
        raise ConflictError(refusal)
    result = await _start_escalation(
        client, incident_id, "operator", f"op-{_stamp(now_ms())}", f"requested by {actor}: {reason}", actor
    )
    started = result["state"] == "started"
    return json_response(
        202 if started else 200,
        {
            "incidentId": incident_id,
            "priority": incident.priority.value,
            "escalation": result["state"],
            "instanceId": result["instanceId"],
        },
    )


# -- ACS call events ---------------------------------------------------------------------------------


@bp.route(route="callbacks/acs", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@handle_errors
async def acs_call_events(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Call Automation events for a call we placed (anonymous: the per-call secret in the URL authenticates)."""
    from shared.errors import UnauthorizedError
    from shared.notify.callbacks import CallbackRejectedError

    body = read_json(req)
    ctx = runtime.context()
    notifier = ctx.notifications
    try:
        # issue 12: the signed token ACS sends with each event, when present, besides the per-call secret
        authorization = req.headers.get("authorization")
        if authorization:
            await asyncio.to_thread(ctx.acs_callback_tokens.verify, authorization)
        outcome = await asyncio.to_thread(notifier.handle_call_events, dict(req.params), body)
    except (CallbackRejectedError, UnauthorizedError) as exc:  # a bad ACS token is an UnauthorizedError too
        log.warning(
            "rejected ACS callback (incidentId=%r callId=%r): %s",
            req.params.get("incidentId", "")[:80],
            req.params.get("callId", "")[:120],
            getattr(exc, "reason", exc),
        )
        raise
    if outcome.acknowledged_by:
        # issue 14: every incident the call announced (a contact's call), else the call's one incident
        for incident_id in outcome.acknowledged or [outcome.incident_id]:
            await _signal(
                client,
                incident_id,
                ACK_EVENT,
                {"actor": outcome.acknowledged_by, "via": "phone", "reason": "acknowledged on the call"},
            )
    if outcome.line_free and outcome.pager:
        await line_free(client, outcome.pager, outcome.record_id)
    return json_response(200, outcome.response())


# -- timers ---------------------------------------------------------------------------------------


@bp.timer_trigger(schedule="30 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def sla_watchdog(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Flag missed SLA targets once (evidence + email) and re-drive runbooks that never started."""
    from shared.models import Phase, runbook_instance_id
    from shared.notify.watchdog import SlaWatchdog

    notifier = runtime.context().notifications
    report = await asyncio.to_thread(SlaWatchdog(notifier).run, datetime.now(UTC))
    for incident_id, epoch in report.redrive:
        instance_id = runbook_instance_id(incident_id, epoch)
        try:
            status = await client.get_status(instance_id)
        except Exception:
            status = None
        state = status_name(status)
        if state is not None and state not in ENDED_UNFINISHED:
            continue  # it exists and is running or completed; its own steps are evidenced
        try:
            await client.start_new(
                RUNBOOK,
                instance_id,
                {"incidentId": incident_id, "epoch": epoch, "reason": "re-driven by the SLA watchdog"},
            )
        except Exception as exc:
            log.warning("could not re-drive %s: %s", instance_id, exc)
            continue
        await asyncio.to_thread(
            notifier.record_evidence,
            incident_id,
            "runbook.redriven",
            f"The runbook had {'failed' if state else 'not run'}: started again by the SLA watchdog",
            {"instanceId": instance_id, "previousStatus": str(state) if state else None},
            Phase.TRIAGE,
        )
    if report.breaches or report.redrive:
        log.warning("SLA watchdog: %s", report.wire())


@bp.timer_trigger(schedule="0 5 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
def p4_daily_digest(timer: func.TimerRequest) -> None:
    """Hourly: each partner's P4 digest goes out once a day, at or after its local digest hour."""
    report = runtime.context().notifications.send_p4_digests(datetime.now(UTC))
    log.info("P4 digest: %s", report)
