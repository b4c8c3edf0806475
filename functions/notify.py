"""Notification operator routes, ACS callbacks and timers (docs/spec/triage.md, docs/spec/notification.md, docs/spec/operator-api.md).

The phone escalation itself (orchestration and activities) is functions/escalation.py.

- ``POST /api/incidents/{id}/ack|priority|call`` (docs/spec/operator-api.md) and
  ``POST /api/callbacks/acs`` (ACS call events, validated per call).
- Timers ``sla_watchdog`` (every minute) and ``p4_daily_digest`` (hourly;
  each partner's digest goes out once a day at its local digest hour).
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Literal, overload

import azure.durable_functions as df
import azure.functions as func

from functions.access import operator_access
from functions.contact_pager import line_free
from functions.escalation import start_escalation
from functions.http import handle_errors, json_response, read_json
from functions.orchestrations import ENDED_UNFINISHED, status_name
from shared import runtime
from shared.errors import ConflictError, ValidationError
from shared.notify.names import (
    ACK_EVENT,
    STOP_EVENT,
    escalation_instance_id,
)

bp = df.Blueprint()
log = logging.getLogger("soc_responder.notify")

RUNBOOK = "incident_runbook"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
                await start_escalation(client, incident_id, "p2-rule", f"p2-{_stamp(change.incident.updated_at)}", why)
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
    result = await start_escalation(
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
