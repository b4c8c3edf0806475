"""The incident runbook orchestration: one run per incident (and per return to P1).

Instance id ``runbook-{incidentId}-{epoch}`` (``shared.models.runbook_instance_id``)
makes a second start for the same incident harmless. Activities do the I/O;
the orchestrator only sequences them, so a host restart resumes from history
rather than repeating completed steps.
"""

from __future__ import annotations

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
    if plan.get("priority") == "P1" and plan.get("containment"):
        from shared.containment import ORCHESTRATOR, containment_instance_id

        epoch = int(request.get("epoch", 1))
        context.set_custom_status({"step": "containing", "incidentId": incident_id})
        try:
            # A sub-orchestration with its own id per epoch: its activities retry, and a host restart
            # resumes it from history instead of acting twice.
            result["containment"] = yield context.call_sub_orchestrator(
                ORCHESTRATOR,
                {"incidentId": incident_id, "epoch": epoch, "actions": plan["containment"], "trigger": "runbook"},
                containment_instance_id(str(incident_id), epoch),
            )
        except Exception as exc:
            result["containment"] = {
                "incidentId": incident_id,
                "epoch": epoch,
                "status": "failed",
                "actions": [],
                "held": [],
                "failures": [{"reason": "containment run failed: " + str(exc).splitlines()[0][:300], "final": True}],
            }

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
                },
            )
        except Exception as exc:
            result["escalation"] = {"error": str(exc)[:300]}

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


@bp.activity_trigger(input_name="request")
def plan_response(request: dict) -> dict:
    """Decide containment and notification for the incident and record the plan as evidence."""
    from shared.runbook_steps import record_plan

    return record_plan(runtime.context(), request["incidentId"], int(request.get("epoch", 1)))
