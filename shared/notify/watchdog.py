"""SLA watchdog (docs/spec/triage.md): flags missed targets once per incident, as evidence and a notification.

Targets, from the service commitments and the priority table:
- ``triage``: analysis within 15 minutes of receipt (``sla.triaged_at``);
- ``first-response``: the first action or notification within 30 minutes
  (``sla.first_response_at``). A P4 held for the daily digest is measured by
  its response SLA instead (the digest is the planned response);
- ``response-sla:<priority>``: a person acknowledged within the priority's
  response SLA (30 min / 2 h / 24 h / next business day). A later priority
  change has its own deadline, so it can breach again.

"Once" is decided by an ETag-guarded write of the breach names to
``sla.breaches`` on the incident: only the writer that adds a name evidences
and notifies it, however many watchdog runs overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.models import Incident, Phase, Priority, isoformat
from shared.notify.incidents import update_incident
from shared.notify.service import NOTIFICATIONS, NotificationService
from shared.notify.templates import NotifyEvent

log = logging.getLogger("soc_responder.sla")

LOOKBACK = timedelta(days=8)  # longest SLA (next business day over a long weekend) plus margin
REDRIVE_AFTER = timedelta(minutes=3)
REDRIVE_WITHIN = timedelta(hours=24)

_LABEL = {"triage": "triage (analysis) within 15 minutes", "first-response": "first response within 30 minutes"}


def breach_label(name: str) -> str:
    if name.startswith("response-sla:"):
        return f"{name.split(':', 1)[1]} response SLA (acknowledgement)"
    return _LABEL.get(name, name)


def due_breaches(incident: Incident, now: datetime, digest_p4: bool = False) -> list[str]:
    """The targets the incident has missed by ``now`` (pure)."""
    sla = incident.sla
    out = []
    if sla.triaged_at > sla.triage_due:
        out.append("triage")
    if not (digest_p4 and incident.priority == Priority.P4):
        first = sla.first_response_at
        if (first is None and now > sla.first_response_due) or (first is not None and first > sla.first_response_due):
            out.append("first-response")
    ack = incident.acknowledged_at
    if (ack is None and now > sla.response_sla_due) or (ack is not None and ack > sla.response_sla_due):
        out.append(f"response-sla:{incident.priority.value}")
    return out


@dataclass
class WatchdogReport:
    checked: int = 0
    breaches: dict[str, list[str]] = field(default_factory=dict)
    redrive: list[tuple[str, int]] = field(default_factory=list)  # (incident id, runbook epoch) never notified

    def wire(self) -> dict:
        return {
            "checked": self.checked,
            "breaches": self.breaches,
            "redrive": [{"incidentId": i, "epoch": e} for i, e in self.redrive],
        }


class SlaWatchdog:
    """One pass over the open incidents of the last days."""

    def __init__(self, notifier: NotificationService):
        self.notifier = notifier
        self.store = notifier.store

    def run(self, now: datetime) -> WatchdogReport:
        report = WatchdogReport()
        digest = self.notifier.settings.p4_digest_hour is not None
        for incident in self.store.find_incidents(created_from=isoformat(now - LOOKBACK)):
            if not incident.status.is_open:
                continue
            report.checked += 1
            try:
                new = self._flag(incident, now, digest)
                if new:
                    report.breaches[incident.id] = new
                if self._never_notified(incident, now):
                    report.redrive.append((incident.id, incident.runbook_epoch))
            except Exception:
                log.exception("SLA watchdog could not check %s", incident.id)
        return report

    def _flag(self, incident: Incident, now: datetime, digest: bool) -> list[str]:
        candidates = [b for b in due_breaches(incident, now, digest) if b not in incident.sla.breaches]
        if not candidates:
            return []
        claimed: list[str] = []

        def change(current: Incident) -> Incident | None:
            claimed.clear()
            claimed.extend(b for b in due_breaches(current, now, digest) if b not in current.sla.breaches)
            if not claimed:
                return None
            sla = current.sla.model_copy(update={"breaches": [*current.sla.breaches, *claimed]})
            return current.model_copy(update={"sla": sla})

        _, after, written = update_incident(self.store, incident.id, change)
        if not written:
            return []
        sla = after.sla.wire()
        for name in claimed:
            self.notifier.record_evidence(
                incident.id,
                "sla.breached",
                f"SLA breached: {breach_label(name)}",
                {
                    "breach": name,
                    "at": isoformat(now),
                    "receivedAt": sla["receivedAt"],
                    "triageDue": sla["triageDue"],
                    "firstResponseDue": sla["firstResponseDue"],
                    "responseSlaDue": sla["responseSlaDue"],
                    "firstResponseAt": sla.get("firstResponseAt"),
                    "acknowledgedAt": isoformat(after.acknowledged_at) if after.acknowledged_at else None,
                },
                phase=Phase.TRIAGE if name == "triage" else Phase.NOTIFY,
            )
        self.notifier.notify_event(
            incident.id,
            NotifyEvent.SLA_BREACHED,
            "sla-" + "+".join(claimed),
            breaches=[breach_label(b) for b in claimed],
            extra_recipients=self.notifier.soc_emails(),
            include_partner=False,
        )
        return claimed

    def _never_notified(self, incident: Incident, now: datetime) -> bool:
        """No notification row at all some minutes after receipt: its runbook probably never started."""
        age = now - incident.sla.received_at
        if incident.sla.first_response_at is not None or not (REDRIVE_AFTER <= age <= REDRIVE_WITHIN):
            return False
        return not self.store.list_records(NOTIFICATIONS, incident.id)
