"""Operator API (docs/spec/operator-api.md): read an incident and verify its evidence chain.

State-changing operator routes (ack, priority, approve, release, call) live
with the features they drive.
"""

from __future__ import annotations

import asyncio

import azure.functions as func

from functions.access import operator_access
from functions.http import handle_errors, json_response
from shared import runtime
from shared.errors import IncidentNotFoundError

bp = func.Blueprint()


def incident_view(ctx, incident_id: str) -> dict:
    """The incident with its alerts, actions, notifications and timeline."""
    got = ctx.store.get_incident(incident_id)
    if got is None:
        raise IncidentNotFoundError(incident_id)
    incident = got[0]
    body = incident.wire()
    from shared.containment import list_actions

    body["actions"] = list_actions(ctx.store, incident_id)  # each with its before/after state and result
    body["notifications"] = ctx.store.list_records("Notifications", incident_id)
    body["timeline"] = [ev.wire() for ev in ctx.store.list_events(incident_id)]
    from shared.masking import mask_phones

    return mask_phones(body)  # issue 12: the view never shows a full phone number (call rows keep them to dial)


@bp.route(route="incidents/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("incident")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def get_incident(req: func.HttpRequest) -> func.HttpResponse:
    """The incident, its alerts, actions and timeline."""
    incident_id = req.route_params.get("id", "")
    return json_response(200, await asyncio.to_thread(incident_view, runtime.context(), incident_id))


def verify_incident(ctx, incident_id: str) -> dict:
    """docs/spec/operator-api.md body of the chain check (events and the stored chain head)."""
    # issue 12: chain + stored head + the latest evidence anchor (a deleted or rewritten incident is 409)
    return ctx.integrity.verify(incident_id)


@bp.route(route="incidents/{id}/verify", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("verify")  # issue 12: sign-in and app role (functions/access.py)
@handle_errors
async def verify_incident_chain(req: func.HttpRequest) -> func.HttpResponse:
    """{"valid": true}, or 409 with {"valid": false, "brokenAt": seq}."""
    verdict = await asyncio.to_thread(verify_incident, runtime.context(), req.route_params.get("id", ""))
    return json_response(200 if verdict["valid"] else 409, verdict)
