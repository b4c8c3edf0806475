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
    plan = yield context.call_activity("plan_response", request)
    result: dict = {"incidentId": incident_id, "plan": plan}
    context.set_custom_status({"step": "planned", "incidentId": incident_id,
                               "containment": len(plan.get("containment", [])), "mode": plan.get("responseMode")})

    # -- Contain (SPEC 4) ------------------------------------------------------------

    # -- Notify and escalate (SPEC 5) --------------------------------------------------

    # -- Investigate (SPEC 1) --------------------------------------------------------

    context.set_custom_status({"step": "done", "incidentId": incident_id})
    return result


@bp.activity_trigger(input_name="request")
def plan_response(request: dict) -> dict:
    """Decide containment and notification for the incident and record the plan as evidence."""
    from shared.runbook_steps import record_plan

    return record_plan(runtime.context(), request["incidentId"], int(request.get("epoch", 1)))
