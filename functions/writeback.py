"""Write-back to Sentinel and Defender for Cloud (issue 7): the runbook's last activity and the sync timer.

- Activity ``write_back_incident``: called at the very end of ``incident_runbook``
  (after containment, notification and investigation are done, so nothing it
  does can hold them up). It evidences its own failures and returns them;
  it raises only if the evidence store itself fails.
- Timer ``writeback_sync`` (every minute): re-projects incidents whose timeline
  moved since the last pass — operator routes (ack, priority, approve,
  release) change incidents without knowing about Sentinel — and retries
  failed write-backs when their backoff is due.
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from shared import runtime

bp = df.Blueprint()
log = logging.getLogger("soc_responder.writeback")


@bp.activity_trigger(input_name="request")
def write_back_incident(request: dict) -> dict:
    """Project the incident into its Sentinel incidents and Defender alerts (idempotent; failures evidenced)."""
    return runtime.context().writeback.write_back(request["incidentId"], trigger=request.get("trigger") or "runbook")


@bp.timer_trigger(schedule="15 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def writeback_sync(timer: func.TimerRequest) -> None:
    """Every minute: bring Sentinel and Defender in step with incidents that changed since the last pass."""
    report = await asyncio.to_thread(runtime.context().writeback.sync)
    if report.get("projected") or report.get("stoppedEarly"):
        log.info("write-back sync: %s", report)
