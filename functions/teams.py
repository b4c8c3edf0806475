"""Teams cards (issue 16, docs/spec/notification.md): posted apart from the email and the calls.

- Activity ``post_teams_cards``: the runbook's step AFTER the email and the call start — posts the
  incident's queued cards once (a slow or failing channel costs at most the webhook's timeout, and
  only the steps after it: investigation and write-back, never email or calls).
- Timer ``teams_delivery`` (every minute): every card still due — acknowledgements, failures of
  approval runs, and each retry of a failed post (``shared/notify/teams.py``); issue 14: storm-summary
  cards (claimed by ``mail_pacer`` with the email summary) and cards that waited for their channel's
  pace, P1 first.
"""

from __future__ import annotations

import asyncio
import logging

import azure.durable_functions as df
import azure.functions as func

from shared import runtime

bp = df.Blueprint()
log = logging.getLogger("soc_responder.teams")


@bp.activity_trigger(input_name="request")
def post_teams_cards(request: dict) -> dict:
    """Post the incident's due Teams cards (one try each; the timer retries)."""
    results = runtime.context().notifications.teams.deliver_incident(request["incidentId"])
    return {"cards": results}


@bp.timer_trigger(schedule="15 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
async def teams_delivery(timer: func.TimerRequest) -> None:
    """Every minute: post the Teams cards that are due (first tries and retries)."""
    # On the notification clock (as the mail_pacer timer): the storm summary cards it claims are posted here.
    report = await asyncio.to_thread(runtime.context().notifications.teams.deliver_due)
    if report.get("posted") or report.get("failed"):
        log.info("Teams cards: %s", report)
