"""Partner preflight (issue 11, docs/spec/tenancy.md): ``GET /api/partners/{id}/preflight`` and the daily
timer ``partner_preflight``.

The route answers ``{"partner", "ready", "checks": [{"check", "ok", "detail"}]}`` (200 whether or not the
partner is ready; 404 for an unknown partner). The timer runs it for every partner each morning,
evidences each report on the SOC-level timeline ``soc-preflight`` and emails the SOC's own contacts about
every partner that is not ready.
"""

from __future__ import annotations

import asyncio
import logging

import azure.functions as func

from functions.access import operator_access
from functions.http import handle_errors, json_response
from shared import runtime

bp = func.Blueprint()
log = logging.getLogger("soc_responder.preflight")


@bp.route(route="partners/{id}/preflight", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("preflight")  # sign-in and app role (functions/access.py)
@handle_errors
async def partner_preflight_check(req: func.HttpRequest) -> func.HttpResponse:
    """Can the app act for this partner right now? Each failed check names what to fix."""
    partner_id = req.route_params.get("id", "")
    report = await asyncio.to_thread(runtime.context().preflight.run, partner_id)
    return json_response(200, report.wire())


@bp.timer_trigger(schedule="0 30 5 * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
def partner_preflight(timer: func.TimerRequest) -> None:
    """Daily: preflight every partner; evidence it; email the SOC about partners not ready."""
    result = runtime.context().daily_preflight.run()
    log.info("preflight: %d partners, not ready: %s", result["partners"], ", ".join(result["notReady"]) or "none")
