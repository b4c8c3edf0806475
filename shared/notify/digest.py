"""The P4 daily digest: a P4 incident's email is held, and each partner gets one email a day listing them.

A held incident has a ``digest-queue`` row (``queued``). The hourly timer sends each partner's digest
(and the SOC's, for incidents that matched no partner) once per local day, at or after
``P4_DIGEST_HOUR`` on the partner's clock: the digest email is itself a Notifications row
``digest-{day}`` under the partition ``~digest-{partner}``, so overlapping timers send it once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.errors import ConflictError
from shared.models import Incident, Priority, isoformat
from shared.notify.context import NotifyContext
from shared.notify.email import EmailNotifier
from shared.notify.records import DIGEST_QUEUE_RECORD, DigestQueueRecord
from shared.notify.templates import NotifyEvent, render_digest

# How far back the timer looks for held incidents (bounds the query; the digest goes out daily).
LOOKBACK = timedelta(days=14)


class DigestNotifier:
    """Holds P4 emails and sends the daily digests through the email step."""

    def __init__(self, context: NotifyContext, email: EmailNotifier):
        self.context, self.email = context, email

    def queue_for_digest(self, incident: Incident) -> dict[str, Any]:
        """Hold a P4 incident's email for the partner's daily digest."""
        ctx = self.context
        at = ctx.clock()
        row = DigestQueueRecord.parse(
            {
                "channel": "digest",
                "kind": NotifyEvent.DIGEST.value,
                "status": "queued",
                "createdAt": isoformat(at),
                "updatedAt": isoformat(at),
                "partnerId": incident.partner_id,
            }
        )
        try:
            ctx.rows.create(incident.id, DIGEST_QUEUE_RECORD, row)
        except ConflictError:
            return {"recordId": DIGEST_QUEUE_RECORD, "status": "queued", "duplicate": True}
        hour = ctx.settings.p4_digest_hour
        ctx.record_evidence(
            incident.id,
            "notification.queued",
            f"P4: email held for the daily digest ({hour:02d}:00 {ctx.timezone_of(incident)})",
            {"recordId": DIGEST_QUEUE_RECORD, "digestHour": hour, "timezone": ctx.timezone_of(incident)},
            at=at,
        )
        return {"recordId": DIGEST_QUEUE_RECORD, "status": "queued"}

    def _queued(self, partner_id: str, since: str) -> list[Incident]:
        """The partner's P4 incidents still waiting for a digest, oldest first."""
        ctx = self.context
        queued = []
        for inc in ctx.store.find_incidents(partner_id=partner_id, priorities=[Priority.P4.value], created_from=since):
            held = ctx.rows.read(DigestQueueRecord, inc.id, DIGEST_QUEUE_RECORD)
            if held and held.value.status == "queued" and inc.priority == Priority.P4:
                queued.append(inc)
        return sorted(queued, key=lambda i: i.created_at)

    def send_p4_digests(self, now: datetime) -> dict[str, Any]:
        """Send each partner's digest of queued P4 incidents once per local day, at or after the digest hour."""
        ctx = self.context
        hour = ctx.settings.p4_digest_hour
        if hour is None:
            return {"disabled": True, "sent": 0}
        groups = [(p.id, p.name, p.timezone) for p in ctx.partners.partners]
        groups.append(("", ctx.partners.soc.name, ctx.partners.soc.timezone))
        report: dict[str, Any] = {"sent": 0, "incidents": 0, "groups": {}}
        since = isoformat(now - LOOKBACK)
        for partner_id, name, tz in groups:
            local = now.astimezone(ZoneInfo(tz))
            if local.hour < hour:
                continue
            queued = self._queued(partner_id, since)
            if not queued:
                continue
            day = local.date().isoformat()
            mail = render_digest(
                queued,
                name,
                day,
                ctx.settings.callback_base_url,
                ctx.settings.console_base_url,  # issue 16
            )
            recipients = ctx.email_recipients(queued[0])
            ids = [i.id for i in queued]
            result = self.email.deliver(
                f"~digest-{partner_id or '_soc'}",
                f"digest-{day}",
                NotifyEvent.DIGEST.value,
                mail,
                recipients,
                ids,
                {"incidents": ids, "day": day},
            )
            if result.get("duplicate"):
                continue
            # issue 14: "queued": the mailbox queue sends it (evidenced on each incident when it goes)
            final = {"sent": "sent", "skipped": "skipped", "queued": "in-mail-queue"}.get(result["status"])
            if final:
                for iid in ids:
                    ctx.rows.set_status(
                        DigestQueueRecord,
                        iid,
                        DIGEST_QUEUE_RECORD,
                        final,
                        isoformat(ctx.clock()),
                        ("queued",),
                        digest=f"digest-{day}",
                    )
            report["groups"][partner_id or "_soc"] = {"status": result["status"], "incidents": len(ids)}
            report["sent"] += result["status"] == "sent"
            report["incidents"] += len(ids) if result["status"] == "sent" else 0
        return report
