"""Issue 14: the minute tick of the ``mail_pacer`` timer — due storm summaries, then the mailbox queue.

1. Each partner with folded emails pending and a summary due gets its storm summary (``shared.notify.storm``,
   ``shared.notify.storm_mail``). The summary is an email like the others: a Notifications row
   (``~storm-{partner}`` / ``summary-{n}``, claimed once), evidenced on every incident it carries, and it
   asks the pacer like any email (its place in the queue is the most urgent priority it carries). The items
   it carries leave the pending list once it is sent or queued; a summary refused for good leaves them
   pending, so the next one carries them (nothing is dropped).
   issue 14 in Teams: the partner's folded Teams cards (``shared.notify.teams_storm``) get their summary card
   with the same claim — queued here, posted by the Teams deliverer — and a summary is claimed as well when
   only cards are pending.
2. The mailbox queue (``shared.notify.pacer``) is sent in order — P1 first, then oldest first — as this
   minute's budget allows; a throttled send stops the drain until the next minute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.models import Priority
from shared.notify.context import NotifyContext
from shared.notify.email import EmailNotifier
from shared.notify.storm import SOC_KEY, STORM_SUMMARY, StormItem, partner_key
from shared.notify.storm_mail import StormSummary, most_urgent, render_storm_summary, summary_lines
from shared.notify.teams_storm import TeamsStorm


class MailPacing:
    """What the ``mail_pacer`` timer does each minute."""

    def __init__(self, context: NotifyContext, email: EmailNotifier, teams: TeamsStorm | None = None):
        self.context, self.email, self.teams = context, email, teams

    def run(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or self.context.clock()
        report: dict[str, Any] = {"summaries": self.send_due_summaries(now)}
        report["queue"] = self.drain_queue()
        return report

    # -- storm summaries ----------------------------------------------------------------------------
    def _partner_name(self, key: str) -> str:
        registry = self.context.partners
        if key == SOC_KEY:
            return registry.soc.name
        for p in registry.partners:
            if partner_key(p.id) == key:
                return p.name
        return key

    def send_due_summaries(self, now: datetime) -> dict[str, Any]:
        """Send the storm summary of every partner with folded emails pending, where one is due."""
        storm = self.email.storm
        if storm is None:
            return {}
        out: dict[str, Any] = {}
        pending = storm.pending()
        cards = self.teams.pending() if self.teams is not None else {}
        for key in dict.fromkeys([*pending, *cards]):
            state = storm.claim_summary(key, now)
            if state is None:
                continue  # not due yet (or another run took it)
            if key in pending:
                out[key] = self._send_summary(key, state.summary_seq, state.storming_since, pending[key])
            if key in cards and self.teams is not None:  # issue 14: the Teams summary card, same number
                names = (self._partner_name(key), self._partner_id(key))
                teams = self.teams.queue_summary(key, state.summary_seq, state.storming_since, cards[key], names)
                out.setdefault(key, {})["teams"] = teams
        return out

    def _partner_id(self, key: str) -> str | None:
        return next((p.id for p in self.context.partners.partners if partner_key(p.id) == key), None)

    def _send_summary(self, key: str, number: int, since: str | None, items: list[StormItem]) -> dict[str, Any]:
        ctx, storm = self.context, self.email.storm
        assert storm is not None
        lines, p1 = summary_lines(items)
        summary = StormSummary(
            partner_name=self._partner_name(key),
            number=number,
            lines=lines,
            since=since,
            threshold=storm.rules.threshold,
            window_minutes=int(storm.rules.window.total_seconds() // 60),
            every_minutes=int(storm.rules.summary_every.total_seconds() // 60),
            containment={iid: self.email.incident_actions(iid) for iid in p1},
            base_url=ctx.settings.callback_base_url,
            console_base_url=ctx.settings.console_base_url,
        )
        recipients = list(dict.fromkeys(r for i in items for r in i.recipients))
        incidents = list(dict.fromkeys(iid for i in items for iid in (i.evidence_for or [i.incident_id or ""]) if iid))
        record_id = f"summary-{number:05d}"
        result = self.email.deliver(
            f"~storm-{key}",
            record_id,
            STORM_SUMMARY,
            render_storm_summary(summary),
            recipients,
            incidents,
            {"summary": f"~storm-{key}/{record_id}", "incidentCount": len(incidents), "partner": key},
            priority=Priority(most_urgent(lines)),
            row_meta={"incidents": incidents},
        )
        if result["status"] in ("sent", "queued", "skipped") or result.get("duplicate"):
            for item in items:
                storm.carried(item)
        return {"recordId": record_id, "status": result["status"], "incidents": len(incidents)}

    # -- the mailbox queue --------------------------------------------------------------------------
    def drain_queue(self) -> dict[str, Any]:
        """Send what waits, P1 first, as this minute's budget allows."""
        pacer = self.email.pacer
        if pacer is None:
            return {}
        sent = 0
        queue = pacer.waiting()
        left = 0
        for n, mail in enumerate(queue):
            # Sorted P1 first: when this one does not fit, nothing after it does (or may overtake it).
            if not pacer.take(mail.rank, queued=True):
                left = len(queue) - n
                break
            result = self.email.send_queued(mail)
            if result["status"] == "queued":  # throttled: it keeps its place, the rest waits for the next minute
                left = len(queue) - n
                break
            sent += result["status"] == "sent"
        if queue:
            pacer.recount(pacer.waiting())
        return {"sent": sent, "waiting": left}
