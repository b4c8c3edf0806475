"""NotificationService: one entry point to the notification steps for the triggers (functions/notify.py, functions/escalation.py).

Each step is its own module and class; this facade builds them around one ``NotifyContext`` and
exposes their public methods under the names the triggers, the SLA watchdog and the write-back use:

- ``email``: incident emails, at most once per row id (``EmailNotifier``)
- ``calls``: the P2 call rule, escalation attempts, the escalation's end (``EscalationCalls``)
- ``callbacks``: ACS call events, authenticated per call (``CallEvents``)
- ``acknowledge``: contact established (``Acknowledgements``)
- ``digest``: the P4 daily digest (``DigestNotifier``)
- ``runbook_step``: the runbook's notify step (``RunbookNotifier``)
- ``pacing``: issue 14 — storm summaries and the mailbox queue, each minute (``MailPacing``)
- ``teams``: Teams cards, queued by the email steps and posted apart from them (``TeamsNotifier``, issue 16)
- ``contact_pages``: issue 14, the incidents waiting for each contact number and its calls (``ContactPages``)

The mail sender and the phone caller are handed in (by ``shared.runtime``); None disables email or
calls, and every email or call that would have gone out is evidenced as skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.evidence import now_ms
from shared.notify.acknowledge import Acknowledgements
from shared.notify.callbacks import CallbackOutcome, CallbackRejectedError, CallbackUnauthorizedError, CallEvents
from shared.notify.calls import EscalationCalls, out_of_hours
from shared.notify.contact_pages import ContactPages
from shared.notify.context import NotifyContext
from shared.notify.digest import DigestNotifier
from shared.notify.email import EmailNotifier
from shared.notify.pacing import MailPacing
from shared.notify.ports import MailSender, PhoneCaller
from shared.notify.records import NOTIFICATIONS
from shared.notify.runbook_step import RunbookNotifier
from shared.notify.teams import TeamsNotifier
from shared.notify.teams_ports import TeamsPoster
from shared.partners import PartnerRegistry
from shared.settings import Settings
from shared.store import EvidenceStore

__all__ = [
    "NOTIFICATIONS",
    "CallbackOutcome",
    "CallbackRejectedError",
    "CallbackUnauthorizedError",
    "NotificationService",
    "out_of_hours",
]


class NotificationService:
    """Notification and escalation steps over one store, partner registry, settings and clock."""

    def __init__(
        self,
        store: EvidenceStore,
        partners: PartnerRegistry,
        settings: Settings,
        mailer: MailSender | None = None,
        caller: PhoneCaller | None = None,
        clock: Callable[[], datetime] = now_ms,
        teams: TeamsPoster | None = None,
    ):
        self.store, self.partners, self.settings, self.clock = store, partners, settings, clock
        self.mailer, self.caller = mailer, caller
        context = self.context = NotifyContext(store, partners, settings, clock)
        email = self.email = EmailNotifier(context, mailer)
        cards = self.teams = TeamsNotifier(context, email, teams)  # issue 16: Teams channels
        calls = self.calls = EscalationCalls(context, caller, email)
        acks = self.acknowledgements = Acknowledgements(context, email, teams=cards)
        pages = self.contact_pages = ContactPages(context, calls)  # issue 14: one escalation per contact
        events = self.call_events = CallEvents(context, caller, acks, pages)
        digest = self.digest = DigestNotifier(context, email)
        runbook = self.runbook = RunbookNotifier(context, email, digest, calls, teams=cards)

        # contacts and evidence
        self.timezone_of = context.timezone_of
        self.email_recipients = context.email_recipients
        self.phone_contacts = context.phone_contacts
        self.soc_emails = context.soc_emails
        self.draft = context.draft
        self.record_evidence = context.record_evidence
        self.first_response = context.first_response
        self.stamp_first_response = context.stamp_first_response
        # email
        self.render_for = email.render_for
        self.incident_actions = email.incident_actions
        self.send_email = email.send_email
        self.notify_event = email.notify_event
        # the runbook's notify step
        self.notify_runbook = runbook.notify_runbook
        # phone escalation
        self.p2_call_reason = calls.p2_call_reason
        self.escalation_request = calls.escalation_request
        self.escalation_ended = calls.escalation_ended
        self.hang_up_live_calls = calls.hang_up_live_calls
        # call events (ACS callbacks) and acknowledgement
        self.handle_call_events = events.handle_call_events
        self.acknowledge = acks.acknowledge
        # P4 daily digest
        self.queue_for_digest = digest.queue_for_digest
        self.send_p4_digests = digest.send_p4_digests
        # issue 14: storm summaries and the mail pacer (the mail_pacer timer)
        self.mail_pacing = MailPacing(context, email, cards.storm)
        self.pace_mail = self.mail_pacing.run
