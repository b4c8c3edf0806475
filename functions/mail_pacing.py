"""Issue 14: timer ``mail_pacer`` (every minute) — storm summaries and the sending mailbox's queue.

Thin: the domain decides (``shared/notify/pacing.py``). Why a minute timer and not an orchestration per
mailbox: the mailbox's budget is counted per minute, so the start of a minute is exactly when a waiting
email may go; the queue and the budget are rows every instance reads anyway; the host runs one timer at a
time across instances and catches up a missed run after a restart (``use_monitor``).
"""

from __future__ import annotations

import logging

import azure.durable_functions as df
import azure.functions as func

from shared import runtime

bp = df.Blueprint()
log = logging.getLogger("soc_responder.mail_pacing")


@bp.timer_trigger(schedule="5 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
def mail_pacer(timer: func.TimerRequest) -> None:
    """Every minute: send due storm summaries, then the mailbox queue (P1 first) within the minute's limit."""
    report = runtime.context().notifications.pace_mail()  # on the notification clock
    if report.get("summaries") or (report.get("queue") or {}).get("sent"):
        log.info("mail pacer: %s", report)
