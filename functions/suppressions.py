"""Issue 14: maintenance windows — ``POST /api/partners/{id}/suppressions`` (role Approver) and the expiry timer.

The domain is ``shared/suppressions.py``; ingest asks it whether an alert is covered (``shared/runtime.py``).
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from functions.access import operator_access
from functions.http import handle_errors, json_response, read_json
from shared import runtime

bp = df.Blueprint()
log = logging.getLogger("soc_responder.suppressions")


@bp.route(route="partners/{id}/suppressions", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("suppressions")  # issue 12: sign-in and the Approver role (shared/access.py policy table)
@handle_errors
async def create_suppression(req: func.HttpRequest) -> func.HttpResponse:
    """``{"actor", "reason", "until", "alertTypes"?, "hosts"?, "sourceIps"?}`` → 200 with the stored window (the operator API answers 200 or 202 with the resulting state)."""
    from shared.containment.requests import parse_request
    from shared.errors import PartnerNotFoundError
    from shared.suppressions import SuppressionRequest

    ctx = runtime.context()
    partner_id = req.route_params.get("id", "")
    if ctx.partners.get(partner_id) is None:
        raise PartnerNotFoundError(partner_id)
    body = parse_request(SuppressionRequest, read_json(req))
    window = await asyncio.to_thread(ctx.suppressions.create, partner_id, body)
    return json_response(200, window.wire())


@bp.timer_trigger(schedule="15 */5 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
def suppression_expiry(timer: func.TimerRequest) -> None:
    """Every 5 minutes: ended maintenance windows are marked expired, with evidence (matching already stopped
    at ``until``: ingest compares with the clock)."""
    ctx = runtime.context()
    expired = ctx.suppressions.expire([p.id for p in ctx.partners.partners])
    if expired:
        log.info("maintenance windows expired: %s", ", ".join(f"{w.partner_id}/{w.id}" for w in expired))
