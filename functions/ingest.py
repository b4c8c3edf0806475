"""Ingest routes (docs/spec/ingest.md): Defender alerts, Sentinel incidents, generic alerts, and the timer poll."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.durable_functions as df
import azure.functions as func

from functions.http import handle_errors, json_response, read_json
from functions.orchestrations import status_name
from shared import runtime

if TYPE_CHECKING:  # pydantic models load on first use, not at cold start
    from shared.ingest import IngestOutcome

bp = df.Blueprint()
log = logging.getLogger("soc_responder.ingest")
RUNBOOK = "incident_runbook"


async def start_runbook(client: df.DurableOrchestrationClient, outcome: IngestOutcome) -> None:
    """Start the incident's runbook; a failure is evidenced, never hidden, and never loses the incident."""
    if outcome.runbook is None:
        return
    try:
        await client.start_new(RUNBOOK, outcome.runbook.instance_id, outcome.runbook.input)
    except Exception as exc:
        log.error("could not start runbook %s: %s", outcome.runbook.instance_id, exc)
        from shared.evidence import EventDraft, now_ms
        from shared.models import Phase

        await asyncio.to_thread(
            runtime.context().store.append_events,
            outcome.incident_id,
            [
                EventDraft(
                    event_type="runbook.start-failed",
                    phase=Phase.TRIAGE,
                    occurred_at=now_ms(),
                    summary="The response runbook could not be started; it will be started by the next delivery of the alert or the SLA watchdog",
                    data={"instanceId": outcome.runbook.instance_id, "error": type(exc).__name__},
                )
            ],
        )


async def repair_runbook(client: df.DurableOrchestrationClient, outcome: IngestOutcome) -> None:
    """issue 14: a redelivery of an open incident's alert starts its runbook when it never started.

    The first delivery may have written the incident and failed before the start (its sender retries): the
    durable status, read through the client, says whether the run exists; the SLA watchdog no longer has to
    notice it minutes later. A run that exists (running, finished or failed) is left to its own steps and to
    the watchdog; a concurrent start of the same id is refused by the durable host (non-running states only).
    """
    if outcome.repair is None:
        return
    instance_id = outcome.repair.instance_id
    try:
        if status_name(await client.get_status(instance_id)) is not None:
            return
        await client.start_new(RUNBOOK, instance_id, outcome.repair.input)
    except Exception as exc:
        log.info("runbook %s not repaired on redelivery: %s", instance_id, exc)
        return
    from shared.evidence import EventDraft, now_ms
    from shared.models import Phase

    await asyncio.to_thread(
        runtime.context().store.append_events,
        outcome.incident_id,
        [
            EventDraft(
                event_type="runbook.repaired",
                phase=Phase.TRIAGE,
                occurred_at=now_ms(),
                summary="The runbook had not started: started by a redelivery of the incident's alert",
                data={"instanceId": instance_id, "alertKey": outcome.alert_key},
            )
        ],
    )


async def stop_escalation(client: df.DurableOrchestrationClient, outcome: IngestOutcome) -> None:
    """Stop the incident's phone escalation at once (a priority lowered at the source)."""
    if not outcome.stop_escalation:
        return
    from shared.notify.names import STOP_EVENT, escalation_instance_id

    try:
        await client.raise_event(
            escalation_instance_id(outcome.incident_id),
            STOP_EVENT,
            # issue 13: a close at the source says so (its note names the source and why)
            {"actor": "source", "reason": outcome.notes[0]}
            if outcome.outcome == "closed" and outcome.notes
            else {"actor": "sentinel", "reason": f"priority lowered to {outcome.priority.value}"},
        )
    except Exception as exc:
        log.info("no escalation to stop for %s: %s", outcome.incident_id, exc)


async def _ingest(req: func.HttpRequest, client: df.DurableOrchestrationClient, parse: Callable) -> func.HttpResponse:
    # issue 12: JSON decoding and validation of up to 1 MiB run off the event loop (other requests keep flowing)
    if req.method.upper() == "OPTIONS":
        return _webhook_handshake(req)
    payload = await asyncio.to_thread(read_json, req)
    from shared.intake import eventgrid

    # Contract audit: an Event Grid subscription's handshake, and alerts delivered in its envelope.
    code = eventgrid.validation_code(payload)
    if code is not None:
        return json_response(200, {"validationResponse": code})
    delivered = eventgrid.unwrap(payload)
    if delivered is None:
        return json_response(202, await _ingest_one(payload, client, parse))
    # Every event is validated before any is written (a rejected delivery leaves nothing half-written).
    alerts = [await asyncio.to_thread(parse, data, datetime.now(UTC)) for data in delivered]
    results = [await _ingest_alert(alert, client) for alert in alerts]
    return json_response(202, {**results[0], "results": results} if len(results) > 1 else results[0])


def _webhook_handshake(req: func.HttpRequest) -> func.HttpResponse:
    """CloudEvents 1.0 webhook abuse protection (Event Grid's CloudEvents schema): allow the asking origin."""
    headers = {"Allow": "POST, OPTIONS"}
    origin = (req.headers.get("webhook-request-origin") or "").strip()
    if re.fullmatch(r"[A-Za-z0-9.:-]{1,253}", origin):  # a host name; anything else is not echoed
        headers["WebHook-Allowed-Origin"] = origin[:256]
        headers["WebHook-Allowed-Rate"] = "*"
    return func.HttpResponse(status_code=200, headers=headers)


async def _ingest_one(payload: object, client: df.DurableOrchestrationClient, parse: Callable) -> dict:
    alert = await asyncio.to_thread(parse, payload, datetime.now(UTC))
    return await _ingest_alert(alert, client)


async def _ingest_alert(alert: object, client: df.DurableOrchestrationClient) -> dict:
    ctx = runtime.context()
    outcome = await asyncio.to_thread(ctx.ingest.ingest, alert)
    await start_runbook(client, outcome)
    await repair_runbook(client, outcome)
    await stop_escalation(client, outcome)
    return outcome.response()


@bp.route(route="alerts/defender", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handle_errors
async def ingest_defender_alert(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Defender for Cloud alert, ARM or workflow-automation shape."""
    from shared.intake import defender

    return await _ingest(req, client, defender.parse)


@bp.route(route="incidents/sentinel", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handle_errors
async def ingest_sentinel_incident(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Sentinel incident: playbook trigger payload or bare incident resource."""
    from shared.intake import sentinel

    return await _ingest(req, client, sentinel.parse)


@bp.route(route="alerts", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.FUNCTION)
@bp.durable_client_input(client_name="client")
@handle_errors
async def ingest_generic_alert(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Generic alert with an explicit score (docs/generic-alert.md)."""
    from shared.intake import generic

    return await _ingest(req, client, generic.parse)


@bp.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def poll_log_analytics(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Catch up on SecurityIncident/SecurityAlert rows since the stored watermark."""
    ctx = runtime.context()
    if not ctx.settings.log_analytics_workspace_id:
        log.info("LOG_ANALYTICS_WORKSPACE_ID not set: polling disabled")
        return
    report = await asyncio.to_thread(ctx.poller.poll)
    for outcome in report.outcomes:
        await start_runbook(client, outcome)
        await repair_runbook(client, outcome)
    log.info(
        "poll: %d rows, %d created, %d grouped, %d duplicates, %d rejected, %d failed; watermark %s → %s",
        report.rows,
        report.created,
        report.grouped,
        report.duplicates,
        report.rejected,
        report.failed,
        report.watermark_before,
        report.watermark_after,
    )
