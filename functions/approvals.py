"""Issue 14: ``POST /api/approvals`` — held containment of many incidents decided at once (role Approver).

Each incident goes through the per-incident approval use case and its runs start as the single-incident route
starts them (``functions/containment.start_approved_runs``); an unknown incident is reported in its result,
never failing the others.
"""

from __future__ import annotations

import asyncio

import azure.durable_functions as df
import azure.functions as func

from functions.access import operator_access
from functions.containment import start_approved_runs
from functions.http import handle_errors, json_response, read_json
from shared import runtime

bp = df.Blueprint()


@bp.route(route="approvals", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@bp.durable_client_input(client_name="client")
@operator_access("approvals")  # issue 12: sign-in and the Approver role (shared/access.py policy table)
@handle_errors
async def decide_approvals(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """``{"actor", "decision", "reason"?, "incidentIds"}`` → one result per incident, in the order given."""
    from shared.containment.bulk_approval import BulkApprovalRequest, summary
    from shared.containment.requests import parse_request
    from shared.errors import IncidentNotFoundError

    body = parse_request(BulkApprovalRequest, read_json(req))
    ctx = runtime.context()
    results: list[dict] = []
    for incident_id in body.incident_ids:
        try:
            outcome = await asyncio.to_thread(
                ctx.containment.decide, incident_id, body.actor, body.decision, body.reason
            )
        except IncidentNotFoundError:
            results.append({"incidentId": incident_id, "error": "incident not found"})
            continue
        outcome["executions"] = await start_approved_runs(client, outcome)
        results.append(outcome)
    counts = summary(results)
    return json_response(
        202 if counts["executions"] else 200,
        {"decision": body.decision, "reason": body.reason, **counts, "results": results},
    )
