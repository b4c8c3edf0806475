"""Containment (docs/spec/containment.md, docs/spec/operator-api.md): the P1 containment sub-orchestration, its activities, approve and release.

``containment_orchestrator`` runs an incident's planned actions in parallel
(a durable fan-out; the breaker still holds in plan order),
each as an activity with its own durable retry options (so a host restart
resumes from history instead of repeating finished actions, and a transient
failure is retried with a pause). A final failure is recorded, evidenced
(``containment.failed``) and returned in ``failures`` for the notify step to
escalate to people. The runbook calls it for P1 plans; an approval starts it
for the approved actions.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from functions.access import operator_access
from functions.http import handle_errors, json_response, read_json
from functions.orchestrations import ENDED_UNFINISHED, RUNNING, status_name
from shared import runtime
from shared.containment import ATTEMPTS, ORCHESTRATOR, RETRY_INTERVAL, approval_instance_id

bp = df.Blueprint()
log = logging.getLogger("soc_responder.containment")

# Each attempt already includes the SDKs' own retries (429/5xx/timeouts); three attempts 15 s apart
# ride out a short ARM/Graph outage and still escalate well inside the 30-minute response target.
# (ATTEMPTS and RETRY_INTERVAL live in shared.containment: release derives its "stuck" bound from them.)
RETRY = df.RetryOptions(
    first_retry_interval_in_milliseconds=int(RETRY_INTERVAL.total_seconds() * 1000), max_number_of_attempts=ATTEMPTS
)
# Actions run in parallel. False restores the one-by-one run this replaced; only benchmarks/latency.py
# sets it (in its own process), to measure both designs in one run.
FAN_OUT = True


# -- orchestration -------------------------------------------------------------------------------
@bp.orchestration_trigger(context_name="context")
def containment_orchestrator(context: df.DurableOrchestrationContext):
    """Run every action at once (each retried alone; the breaker holds in plan order), record final
    failures, then conclude (incident status, evidence).

    Input ``{"incidentId", "epoch", "actions": [ContainmentAction], "trigger": "runbook"|"approval",
    "approvalId"?}``. Output: ``{"status", "actions", "failures", "held", "incidentStatus", ...}``.
    """
    request = context.get_input() or {}
    incident_id = request.get("incidentId")
    actions = request.get("actions") or []
    base = {
        "incidentId": incident_id,
        "epoch": int(request.get("epoch") or 1),
        "trigger": request.get("trigger") or "runbook",
        "approvalId": request.get("approvalId"),
    }
    context.set_custom_status(
        {
            "step": "containing",
            "incidentId": incident_id,
            "done": 0,
            "of": len(actions),
            "actions": [a.get("actionId") for a in actions],
        }
    )
    # Holds are decided in plan order although the actions run at once: each action carries the plan's
    # order of automatic actions, and the first to reach the breaker takes the slots of every earlier
    # one with its own (shared/containment/breaker.py) — what a one-by-one run would hold, without a
    # separate reservation hop before the fan-out.
    order = _slot_order(actions) if base["trigger"] == "runbook" else []
    steps = [{**base, "action": a, **({"slotOrder": order} if len(order) >= 2 else {})} for a in actions]
    # Fan out: every action at once, each with its own durable retries (a VM's NICs go in parallel
    # inside its activity). task_all fails fast on the first final failure, so each task is then
    # collected on its own: the others keep running and are awaited one by one.
    results = yield from _gather(context, "containment_execute", steps)
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    if failed:
        recorded = yield from _gather(
            context,
            "containment_record_failure",
            [{**steps[i], "error": str(results[i])[:4000], "attempts": ATTEMPTS} for i in failed],
        )
        for i, rec in zip(failed, recorded, strict=True):
            results[i] = (
                _unrecorded_failure(actions[i], str(results[i]), str(rec)) if isinstance(rec, Exception) else rec
            )
    summaries: list[dict] = [r for r in results if isinstance(r, dict)]
    context.set_custom_status(
        {"step": "concluding", "incidentId": incident_id, "done": len(actions), "of": len(actions)}
    )
    try:
        concluded = yield context.call_activity_with_retry(
            "containment_conclude", RETRY, {**base, "results": summaries}
        )
    except Exception as exc:
        concluded = {"incidentStatus": None, "error": _first_line(str(exc))}
    output = containment_result(base, summaries, concluded)
    if base["trigger"] == "approval" and output["failures"]:
        # A runbook run is reported by the runbook's notify step; an approval run reports its own failures.
        try:
            output["notification"] = yield context.call_activity_with_retry(
                "containment_notify_failures", RETRY, {**base, "failures": output["failures"]}
            )
        except Exception as exc:
            output["notification"] = {"error": _first_line(str(exc))}
    context.set_custom_status(
        {"step": "done", "incidentId": incident_id, "status": output["status"], "failures": len(output["failures"])}
    )
    return output


def _gather(context: df.DurableOrchestrationContext, activity: str, inputs: list[dict]):
    """Run ``activity`` for every input at once (durable retries each) → results in input order, an
    ``Exception`` where one failed for good. A sub-generator: call it with ``yield from``."""
    if not FAN_OUT:  # the one-by-one design this replaced (benchmarks/latency.py measures both)
        done: list[Any] = []
        for item in inputs:
            try:
                done.append((yield context.call_activity_with_retry(activity, RETRY, item)))
            except Exception as exc:
                done.append(exc)
        return done
    tasks = [context.call_activity_with_retry(activity, RETRY, item) for item in inputs]
    if not tasks:
        return []
    try:
        yield context.task_all(tasks)
    except Exception:
        pass  # one failed for good; the WhenAll stops there, the others are collected below
    out: list[Any] = []
    for task in tasks:
        try:
            out.append((yield task))  # a finished task answers at once; a running one is awaited
        except Exception as exc:
            out.append(exc)
    return out


def _slot_order(actions: list[dict]) -> list[str]:
    from shared.containment.breaker import SLOT_KINDS

    return [a["actionId"] for a in actions if a.get("decision") == "execute" and a.get("kind") in SLOT_KINDS]


def containment_result(base: dict, results: list[dict], concluded: dict) -> dict[str, Any]:
    """The sub-orchestration's output: every action, the failures to escalate, the held ones."""
    failures = [
        {
            "actionId": r.get("actionId"),
            "kind": r.get("kind"),
            "target": r.get("target"),
            "targetDisplay": r.get("targetDisplay"),
            **(r.get("failure") or {"reason": r.get("result")}),
        }
        for r in results
        if r.get("status") == "failed"
    ]
    held = [
        {
            "actionId": r.get("actionId"),
            "kind": r.get("kind"),
            "targetDisplay": r.get("targetDisplay"),
            "guardrail": r.get("guardrail"),
            "reason": r.get("reason"),
            "risk": r.get("risk"),
        }
        for r in results
        if r.get("status") == "held"
    ]
    statuses = {r.get("status") for r in results}
    effective = bool(statuses & {"contained", "already-contained"})
    if failures:
        overall = "partial" if effective else "failed"
    elif effective:
        overall = "contained"
    elif held:
        overall = "held"
    elif statuses and statuses <= {"dry-run"}:
        overall = "dry-run"
    else:
        overall = "no-action"
    return {
        **{k: v for k, v in base.items() if v is not None},
        "status": overall,
        "actions": results,
        "failures": failures,
        "held": held,
        "incidentStatus": concluded.get("incidentStatus"),
        **({"concludeError": concluded["error"]} if concluded.get("error") else {}),
    }


def _unrecorded_failure(action: dict, error: str, record_error: str) -> dict[str, Any]:
    return {
        "actionId": action.get("actionId"),
        "kind": action.get("kind"),
        "target": action.get("target"),
        "targetDisplay": action.get("targetDisplay"),
        "status": "failed",
        "result": f"{action.get('targetDisplay')}: FAILED, escalated to people",
        "failure": {
            "reason": f"gave up after {ATTEMPTS} attempts: {_first_line(error)}; the failure could "
            f"not be recorded either: {_first_line(record_error)}",
            "final": True,
            "code": "RetriesExhausted",
        },
    }


def _first_line(text: str) -> str:
    from shared.containment.execute import error_line

    return error_line(text)


# -- activities ------------------------------------------------------------------------------------
@bp.activity_trigger(input_name="request")
def containment_execute(request: dict) -> dict:
    """Evaluate the guardrails for one action and carry it out (idempotent: safe to run twice)."""
    return runtime.context().containment.execute(request)


@bp.activity_trigger(input_name="request")
def containment_record_failure(request: dict) -> dict:
    """Retries exhausted: the action is recorded failed with the reason and evidenced for escalation."""
    return runtime.context().containment.record_failure(request)


@bp.activity_trigger(input_name="request")
def containment_conclude(request: dict) -> dict:
    """Set the incident's status (contained / held) from its actions and evidence the run's outcome."""
    return runtime.context().containment.conclude(request)


@bp.activity_trigger(input_name="request")
def containment_notify_failures(request: dict) -> dict:
    """Email people about actions an approval run could not carry out (once per approval)."""
    from shared.notify.templates import NotifyEvent

    reasons = "; ".join(
        f"{f.get('targetDisplay') or f.get('target')}: {f.get('reason')}" for f in request.get("failures") or []
    )
    notifications = runtime.context().notifications
    key = f"containment-failed-{request.get('approvalId')}"
    sent = notifications.notify_event(request["incidentId"], NotifyEvent.CONTAINMENT_FAILED, key, reason=reasons[:2000])
    # issue 16: the Teams card is queued after the email (posted by the teams_delivery timer, never here)
    from shared.notify.incidents import load_incident

    incident = load_incident(notifications.store, request["incidentId"])
    return {
        **sent,
        "teams": notifications.teams.after_email(incident, NotifyEvent.CONTAINMENT_FAILED, key, reason=reasons),
    }


def _notify_release(ctx, incident_id: str, actor: str, reason: str, result: dict) -> None:
    """Tell the incident's contacts what was released (best effort: the release itself stands)."""
    if result.get("status") not in ("released", "partially-released"):
        return
    from shared.notify.templates import NotifyEvent

    try:
        ctx.notifications.notify_event(
            incident_id, NotifyEvent.RELEASED, f"released-{result['releasedAt']}", actor=actor, reason=reason
        )
    except Exception:
        log.exception("release notification for %s failed", incident_id)


# -- operator routes (docs/spec/operator-api.md) -----------------------------------------------------------------------
def _incident_id(req: func.HttpRequest) -> str:
    return req.route_params.get("id", "")


async def start_approved_runs(client: df.DurableOrchestrationClient, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    """Start the containment runs an approval returned (``outcome["runs"]``, removed); the started runs."""
    started: list[dict[str, Any]] = []
    for run in outcome.pop("runs"):
        instance_id = approval_instance_id(outcome["incidentId"], run["approvalId"])
        state = status_name(await client.get_status(instance_id))
        # Never started (a crash after the approval was recorded), or died: (re)start it. A running or
        # completed run is left alone, so a repeated approval never executes twice.
        if state is None or state in ENDED_UNFINISHED:
            await client.start_new(
                ORCHESTRATOR,
                instance_id,
                {
                    "incidentId": outcome["incidentId"],
                    "epoch": run["epoch"],
                    "actions": run["actions"],
                    "trigger": "approval",
                    "approvalId": run["approvalId"],
                },
            )
        started.append(
            {
                "instanceId": instance_id,
                "approvalId": run["approvalId"],
                "actions": [a.get("actionId") for a in run["actions"]],
                "resumed": run["resumed"],
            }
        )
    return started


@bp.route(route="incidents/{id}/approve", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@operator_access("approve")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def approve_containment(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Approve (run) or reject (block) the incident's held containment actions."""
    from shared.containment.requests import ApprovalRequest, parse_request

    body = parse_request(ApprovalRequest, read_json(req))
    ctx = runtime.context()
    outcome = await asyncio.to_thread(ctx.containment.decide, _incident_id(req), body.actor, body.decision, body.reason)
    started = await start_approved_runs(client, outcome)
    outcome["executions"] = started
    return json_response(202 if started else 200, outcome)


@bp.route(route="incidents/{id}/release", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@operator_access("release")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def release_containment(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """Restore the prior state of everything this incident's containment changed.

    Refused (409) while a run that could still contain this incident is alive: the rest of that run
    would undo the release. An in-progress row whose run is gone is released like a failed one."""
    from shared.containment.requests import ReleaseRequest, parse_request

    body = parse_request(ReleaseRequest, read_json(req))
    ctx = runtime.context()
    incident_id = _incident_id(req)
    checked_at = ctx.containment.clock()
    running = [
        iid
        for iid in await asyncio.to_thread(ctx.containment.release_runs, incident_id)
        if await _run_alive(client, iid)
    ]
    result = await asyncio.to_thread(ctx.containment.release, incident_id, body.actor, body.reason, running, checked_at)
    await asyncio.to_thread(_notify_release, ctx, result["incidentId"], body.actor, body.reason, result)
    return json_response(200, result)


# Runbook steps after which it starts no containment (functions/runbook.py custom status).
_RUNBOOK_PAST_CONTAINMENT = frozenset({"notifying", "investigating", "writing-back", "done"})


async def _run_alive(client: df.DurableOrchestrationClient, instance_id: str) -> bool:
    """Whether a run may still change containment: Pending / Running (a runbook only until it has moved
    past its containment step — it goes on to notify and investigate for a while)."""
    status = await client.get_status(instance_id)
    if status_name(status) not in RUNNING:
        return False
    if instance_id.startswith("runbook-"):
        custom = getattr(status, "custom_status", None)
        if isinstance(custom, str):
            try:
                custom = json.loads(custom)
            except ValueError:
                custom = None
        return not (isinstance(custom, dict) and custom.get("step") in _RUNBOOK_PAST_CONTAINMENT)
    return True
