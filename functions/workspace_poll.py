"""Timer ``poll_partner_workspaces`` (issue 11): each partner's own Sentinel workspaces, every 5 minutes.

The SOC-wide ``LOG_ANALYTICS_WORKSPACE_ID`` keeps its own timer (``poll_log_analytics``); this one polls
the ``workspaces`` of the partner registry, one watermark each (``shared/workspace_poll.py``).
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from functions.ingest import start_runbook
from shared import runtime

bp = func.Blueprint()
log = logging.getLogger("soc_responder.poller")


@bp.timer_trigger(schedule="30 */5 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.durable_client_input(client_name="client")
async def poll_partner_workspaces(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Catch up on each partner workspace's SecurityIncident/SecurityAlert rows since its watermark."""
    polls = await asyncio.to_thread(runtime.context().workspace_poll.poll)
    for done in polls:
        for outcome in done.report.outcomes:
            await start_runbook(client, outcome)
        log.info(
            "poll of %s/%s: %d rows, %d created, %d errors; watermark %s → %s",
            done.partner,
            done.workspace,
            done.report.rows,
            done.report.created,
            len(done.report.errors),
            done.report.watermark_before,
            done.report.watermark_after,
        )
