"""``POST /api/replay`` (issue 13): past Log Analytics alerts through the current rules, nothing written.

Body ``{"from", "to", "partner"?}`` → 200 with, per priority and partner, the incidents the rules would
have made and what the runbook would have done (contained, held, planned only, phoned), and the rules
that fired most (``shared/triage/whatif.py``). Role: ``Approver`` (docs/spec/access.md; checked by ``@operator_access``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import azure.functions as func

from functions.access import operator_access
from functions.http import handle_errors, json_response, read_json
from shared import runtime

bp = func.Blueprint()


def run_replay(body: dict) -> dict:
    from shared.triage.whatif import parse_window

    ctx = runtime.context()
    start, end, partner = parse_window(body, datetime.now(UTC))
    return ctx.replay.run(start, end, partner).wire()


@bp.route(route="replay", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("replay")  # sign-in and app role Approver (functions/access.py)
@handle_errors
async def replay(req: func.HttpRequest) -> func.HttpResponse:
    """What the current rules would have made of a past window; writes nothing, acts on nothing."""
    body = read_json(req)
    return json_response(200, await asyncio.to_thread(run_replay, body))
