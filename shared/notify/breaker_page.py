"""Issue 14: a blast-radius breaker trip pages the SOC's own duty contacts — once per breaker window.

Only the SOC can approve what the breaker held (docs/spec/containment.md), so the SOC's duty contacts
(the registry's ``soc.emergencyContacts``: name, phone, email) are phoned as well as emailed (the held
email already goes to ``soc_emails()``, which includes them). A storm trips the breaker for dozens of P1s
in minutes: one page per breaker window is enough — the first held incident of the window claims it with a
create-only row, and the call tells the duty manager to decide the held actions in bulk
(``POST /api/approvals``). Each held incident is still evidenced (``soc.breaker-page`` names the page).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.errors import ConflictError
from shared.models import Incident, isoformat
from shared.notify.calls import EscalationCalls
from shared.notify.context import NotifyContext

PAGE_PARTITION = "_soc-breaker-pages"  # Notifications rows of the SOC itself, one per breaker window
BLAST_RADIUS = "blast-radius"


def window_start(at: datetime, minutes: int) -> datetime:
    """The breaker window (``BLAST_RADIUS_WINDOW_MINUTES`` buckets since the epoch) ``at`` falls in."""
    step = max(1, minutes) * 60
    return datetime.fromtimestamp(int(at.timestamp()) // step * step, tz=at.tzinfo)


class BreakerPager:
    def __init__(self, context: NotifyContext, calls: EscalationCalls):
        self.context, self.calls = context, calls

    def held_by_breaker(self, incident_id: str, epoch: int) -> list[str]:
        """Action ids of the incident's run held by the blast-radius breaker."""
        out = []
        for row in self.context.store.list_records("ContainmentActions", incident_id):
            verdict = row.get("verdict") if isinstance(row.get("verdict"), dict) else {}
            held = row.get("status") == "held" and (verdict or {}).get("guardrail") == BLAST_RADIUS
            if held and int(row.get("epoch") or epoch) == epoch:
                out.append(str(row.get("actionId") or ""))
        return out

    def page(self, incident: Incident, epoch: int) -> dict[str, Any] | None:
        """Phone the SOC's duty contacts when this run was held by the breaker and its window was not paged."""
        ctx = self.context
        held = self.held_by_breaker(incident.id, epoch)
        if not held:
            return None
        now = ctx.clock()
        window = window_start(now, ctx.settings.blast_radius_window_minutes)
        page_id = f"page-{isoformat(window)}"
        try:
            ctx.store.put_record(
                "Notifications",
                PAGE_PARTITION,
                page_id,
                {"kind": "soc-breaker-page", "incidentId": incident.id, "createdAt": isoformat(now)},
                create_only=True,
            )
        except ConflictError:
            ctx.record_evidence(
                incident.id,
                "soc.breaker-page",
                "Blast-radius breaker held this incident's containment: the SOC duty contacts were already "
                "paged for this breaker window (decide the held actions in bulk: POST /api/approvals)",
                {"pageId": page_id, "held": held, "paged": False},
            )
            return {"pageId": page_id, "paged": False}
        ctx.record_evidence(
            incident.id,
            "soc.breaker-page",
            "Blast-radius breaker tripped: the SOC duty contacts are phoned (only the SOC can approve)",
            {"pageId": page_id, "held": held, "paged": True},
        )
        # One call to each duty number, paged like every call (issue 14: one call at a time per number, so a duty
        # number that is also an emergency contact is never rung twice at once); the runbook's escalation step
        # pages it (it has the durable client that wakes the numbers' pagers).
        request = {
            "incidentId": incident.id,
            "requestKey": f"soc-breaker-e{epoch}",
            "audience": "soc",
            "epoch": epoch,
            "priority": incident.priority.value,
            "requestedAt": isoformat(now),
            "maxAttempts": 1,
            "trigger": "soc-breaker-page",
        }
        return {"pageId": page_id, "paged": True, "request": request}
