"""The daily preflight of every partner (timer ``partner_preflight``): evidenced, and never silent.

Each run appends one ``preflight.checked`` event per partner (the whole report) to the SOC-level evidence
timeline ``soc-preflight`` (a hash chain like an incident's, in the same evidence table under its own
partition, not tied to any incident), then one email to the SOC's own contacts
(the registry's ``soc`` block) listing every partner that is not ready and what to fix; the email's
outcome is evidenced too. A partner whose preflight itself crashed counts as not ready.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.errors import AdapterError
from shared.evidence import EventDraft
from shared.models import Phase
from shared.notify.ports import MailSender, OutgoingMail
from shared.partners import PartnerRegistry
from shared.preflight.checks import Check, PreflightReport
from shared.preflight.run import PartnerPreflight
from shared.store import EvidenceStore

log = logging.getLogger("soc_responder.preflight")

#: The SOC-level evidence timeline the daily preflight writes to.
PREFLIGHT_TIMELINE = "soc-preflight"


class DailyPreflight:
    def __init__(
        self,
        preflight: PartnerPreflight,
        partners: PartnerRegistry,
        store: EvidenceStore,
        mailer: MailSender | None,
        clock: Callable[[], datetime],
    ):
        self.preflight, self.partners, self.store, self.mailer, self.clock = preflight, partners, store, mailer, clock

    def run(self) -> dict[str, Any]:
        reports: list[PreflightReport] = []
        for partner in self.partners.partners:
            try:
                report = self.preflight.check(partner)
            except Exception as exc:  # one partner's crash must not hide the others' results
                log.exception("preflight of %s crashed", partner.id)
                report = PreflightReport(partner.id, (Check("preflight", False, f"preflight crashed: {exc!r}"[:300]),))
            reports.append(report)
        drafts = [self._event(r) for r in reports]
        not_ready = [r for r in reports if not r.ready]
        drafts.append(self._tell_the_soc(not_ready))
        if drafts:
            self.store.append_events(PREFLIGHT_TIMELINE, drafts)
        return {
            "partners": len(reports),
            "ready": [r.partner for r in reports if r.ready],
            "notReady": [r.partner for r in not_ready],
        }

    def _event(self, report: PreflightReport) -> EventDraft:
        failed = "; ".join(f"{c.check}: {c.detail}" for c in report.failed)
        return EventDraft(
            event_type="preflight.checked",
            phase=Phase.DETECT,
            summary=f"Preflight of {report.partner}: " + ("ready" if report.ready else f"NOT READY — {failed}")[:900],
            occurred_at=self.clock(),
            data={**report.wire(), "tookMs": report.took_ms},
        )

    def _tell_the_soc(self, not_ready: list[PreflightReport]) -> EventDraft:
        to = list(self.partners.soc.socAlertEmails)
        names = [r.partner for r in not_ready]
        if not not_ready:
            return self._mail_event("preflight.all-ready", "Every partner is ready: no email", to, names, None)
        if self.mailer is None or not to:
            why = "MAIL_SENDER is not set" if self.mailer is None else "the registry's soc block lists no email"
            return self._mail_event(
                "preflight.report-not-sent",
                f"Partners NOT READY ({', '.join(names)}); email not sent: {why}",
                to,
                names,
                why,
            )
        try:
            self.mailer.send(self._mail(to, not_ready))
        except AdapterError as exc:
            return self._mail_event(
                "preflight.report-failed",
                f"Partners NOT READY ({', '.join(names)}); the email to the SOC FAILED: {exc.reason}",
                to,
                names,
                exc.reason,
            )
        return self._mail_event(
            "preflight.reported", f"Partners NOT READY ({', '.join(names)}): the SOC was emailed", to, names, None
        )

    def _mail_event(self, event: str, summary: str, to: list[str], names: list[str], error: str | None) -> EventDraft:
        return EventDraft(
            event_type=event,
            phase=Phase.DETECT,
            summary=summary[:1000],
            occurred_at=self.clock(),
            data={"to": to, "notReady": names, "error": error},
        )

    @staticmethod
    def _mail(to: list[str], not_ready: list[PreflightReport]) -> OutgoingMail:
        items = []
        for report in not_ready:
            lines = "".join(f"<li><b>{html.escape(c.check)}</b>: {html.escape(c.detail)}</li>" for c in report.failed)
            items.append(f"<h3>{html.escape(report.partner)}</h3><ul>{lines}</ul>")
        body = (
            "<p>soc-responder cannot act for these partners right now: containment for them would fail or be "
            "held. Fix what each line says, then check again with "
            "<code>GET /api/partners/{id}/preflight</code>.</p>" + "".join(items)
        )
        subject = f"[soc-responder] Preflight: {len(not_ready)} partner(s) not ready — " + ", ".join(
            r.partner for r in not_ready
        )
        return OutgoingMail(to=to, subject=subject[:250], html=body, importance="high")
