"""The incident runbook orchestration: one run per incident (and per return to P1).

Instance id ``runbook-{incidentId}-{epoch}`` (``shared.models.runbook_instance_id``)
makes a second start for the same incident harmless. Activities do the I/O;
the orchestrator only sequences them, so a host restart resumes from history
rather than repeating completed steps.
"""

from __future__ import annotations

from datetime import timedelta

import azure.durable_functions as df

from shared import runtime

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def incident_runbook(context: df.DurableOrchestrationContext):
    """Plan → contain (P1) → notify → escalate (P1) → investigate; each step evidenced by its activity."""
    request = context.get_input() or {}
    incident_id = request.get("incidentId")
    context.set_custom_status({"step": "planning", "incidentId": incident_id})
    # Retried: without a plan nothing else runs (no containment, no email, no calls).
    plan = yield context.call_activity_with_retry(
        "plan_response", df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=4), request
    )
    result: dict = {"incidentId": incident_id, "plan": plan}
    context.set_custom_status(
        {
            "step": "planned",
            "incidentId": incident_id,
            "containment": len(plan.get("containment", [])),
            "mode": plan.get("responseMode"),
        }
    )

    # -- Contain (docs/spec/containment.md) ------------------------------------------------------------
    # People are not kept waiting by slow containment (a hung ARM operation): the email and the first
    # call go out when containment finishes or after CONTAINMENT_NOTIFY_AFTER_SECONDS, whichever first.
    still_containing = None
    if plan.get("priority") == "P1" and plan.get("containment"):
        from shared.containment import ORCHESTRATOR, containment_instance_id

        epoch = int(request.get("epoch", 1))
        context.set_custom_status({"step": "containing", "incidentId": incident_id})
        # A sub-orchestration with its own id per epoch: its activities retry, and a host restart
        # resumes it from history instead of acting twice.
        containing = context.call_sub_orchestrator(
            ORCHESTRATOR,
            {"incidentId": incident_id, "epoch": epoch, "actions": plan["containment"], "trigger": "runbook"},
            containment_instance_id(str(incident_id), epoch),
        )
        # The same every replay: a setting, read where the orchestration waits (0: a timer due at once,
        # which still starts containment now — a task is only scheduled when it is yielded).
        bound = runtime.context().settings.containment_notify_after_seconds
        timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=bound))
        winner = yield context.task_any([containing, timer])
        if winner is not timer:
            timer.cancel()
            result["containment"] = yield from _containment_outcome(containing, incident_id, epoch)
        else:
            # Still running: notify now, saying so; the runbook collects the result before writing back.
            still_containing = containing
            result["containment"] = still_running(incident_id, epoch, plan["containment"], bound)

    # -- Notify and escalate (docs/spec/notification.md) --------------------------------------------------
    context.set_custom_status({"step": "notifying", "incidentId": incident_id})
    notify_retry = df.RetryOptions(first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3)
    try:
        notice = yield context.call_activity_with_retry(
            "notify_incident",
            notify_retry,
            {
                "incidentId": incident_id,
                "epoch": request.get("epoch", 1),
                "reason": request.get("reason"),
                "previousPriority": request.get("previousPriority"),
                "actor": request.get("actor"),
                "containment": result.get("containment"),
            },
        )
    except Exception as exc:
        notice = {
            "error": str(exc)[:300],
            "escalate": plan.get("priority") == "P1",
            "escalationTrigger": "p1",
            "escalationReason": "P1: phone escalation required (the email step failed)",
        }
    result["notification"] = notice
    if notice.get("escalate"):
        # Its own instance, escalation-{incidentId}: the runbook goes on to investigate while the phones ring,
        # ack finds it by incident id, and the host refuses a second one while it runs.
        try:
            result["escalation"] = yield context.call_activity_with_retry(
                "start_call_escalation",
                notify_retry,
                {
                    "incidentId": incident_id,
                    "epoch": request.get("epoch", 1),
                    "trigger": notice.get("escalationTrigger"),
                    "reason": notice.get("escalationReason"),
                    # issue 14: the SOC duty contacts' breaker page, paged to their numbers with the escalation
                    "socPage": (notice.get("socPage") or {}).get("request"),
                },
            )
        except Exception as exc:
            result["escalation"] = {"error": str(exc)[:300]}
    if (notice.get("teams") or {}) and any(
        (t or {}).get("status") == "queued" for t in (notice.get("teams") or {}).values() if isinstance(t, dict)
    ):
        # issue 16: Teams cards after the email and the call start, in their own activity: a slow or failing
        # channel never holds up people's email or phones (one try here; the teams_delivery timer retries).
        try:
            result["teams"] = yield context.call_activity("post_teams_cards", {"incidentId": incident_id})
        except Exception as exc:
            result["teams"] = {"error": str(exc)[:300]}

    # -- Investigate (docs/spec/lifecycle.md) --------------------------------------------------------
    # Log Analytics enrichment (functions/evidence_api.py): skipped inside the activity when no
    # workspace is configured; query failures are evidenced there. Anything else must not fail the
    # runbook after containment and notification are done.
    context.set_custom_status({"step": "investigating", "incidentId": incident_id})
    try:
        result["investigation"] = yield context.call_activity(
            "investigate_incident", {"incidentId": incident_id, "epoch": request.get("epoch", 1)}
        )
    except Exception as exc:
        result["investigation"] = {"error": str(exc)[:300]}

    # -- Containment that outlived the notify bound (issue 15) --------------------------------------
    # Its evidence is written by its own conclude step; here the runbook waits for it so the write-back
    # below projects the final result, and people hear of failures that came after their first email.
    if still_containing is not None:
        context.set_custom_status({"step": "awaiting-containment", "incidentId": incident_id})
        epoch = int(request.get("epoch", 1))
        result["containment"] = yield from _containment_outcome(still_containing, incident_id, epoch)
        if result["containment"].get("failures"):
            try:
                result["lateFailures"] = yield context.call_activity_with_retry(
                    "containment_notify_failures",
                    notify_retry,
                    {
                        "incidentId": incident_id,
                        "epoch": epoch,
                        "approvalId": f"runbook-e{epoch}",
                        "failures": result["containment"]["failures"],
                    },
                )
            except Exception as exc:
                result["lateFailures"] = {"error": str(exc)[:300]}

    # -- Write back to Sentinel / Defender for Cloud (issue 7, functions/writeback.py) ---------
    # Last, so it can never hold up containment or notification; Sentinel/Defender failures are
    # evidenced inside the activity and retried by the writeback_sync timer.
    context.set_custom_status({"step": "writing-back", "incidentId": incident_id})
    try:
        writeback_retry = df.RetryOptions(first_retry_interval_in_milliseconds=10_000, max_number_of_attempts=2)
        result["writeback"] = yield context.call_activity_with_retry(
            "write_back_incident",
            writeback_retry,
            {"incidentId": incident_id, "epoch": request.get("epoch", 1), "trigger": "runbook"},
        )
    except Exception as exc:
        result["writeback"] = {"error": str(exc)[:300]}

    context.set_custom_status({"step": "done", "incidentId": incident_id})
    return result


def _containment_outcome(containing, incident_id, epoch: int):
    """The containment sub-orchestration's output, or a failure summary (``yield from``)."""
    try:
        return (yield containing)
    except Exception as exc:
        return {
            "incidentId": incident_id,
            "epoch": epoch,
            "status": "failed",
            "actions": [],
            "held": [],
            "failures": [{"reason": "containment run failed: " + str(exc).splitlines()[0][:300], "final": True}],
        }


def still_running(incident_id, epoch: int, planned: list[dict], bound: int) -> dict:
    """What the notify step is told when containment outlived the bound: every planned action, running."""
    return {
        "incidentId": incident_id,
        "epoch": epoch,
        "status": "running",
        "waitedSeconds": bound,
        "running": [a.get("actionId") for a in planned],
        "actions": [
            {
                "actionId": a.get("actionId"),
                "kind": a.get("kind"),
                "target": a.get("target"),
                "targetDisplay": a.get("targetDisplay"),
                "status": "running",
            }
            for a in planned
        ],
        "failures": [],
        "held": [],
    }


@bp.activity_trigger(input_name="request")
def plan_response(request: dict) -> dict:
    """Decide containment and notification for the incident and record the plan as evidence."""
    from shared.runbook_steps import record_plan

    return record_plan(runtime.context(), request["incidentId"], int(request.get("epoch", 1)))
