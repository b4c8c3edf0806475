"""Timer ``anchor_evidence`` (hourly): every incident's chain head into the write-once archive (shared/anchor.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.functions as func

from shared import runtime

bp = func.Blueprint()
log = logging.getLogger("soc_responder.anchor")


@bp.timer_trigger(schedule="0 0 * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
def anchor_evidence(timer: func.TimerRequest) -> None:
    """Hourly: a new anchor blob; a failure is logged and the next hour writes a complete one."""
    report = runtime.context().integrity.anchor(datetime.now(UTC))
    log.info("evidence anchor: %s", report)
