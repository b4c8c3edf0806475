"""Runbook steps the activities call: load, decide, evidence. No Functions imports."""

from __future__ import annotations

from shared.errors import IncidentNotFoundError
from shared.evidence import EventDraft, now_ms
from shared.models import Phase
from shared.response_plan import ActionDecision, plan_response


def record_plan(ctx, incident_id: str, epoch: int) -> dict:
    """Plan the response for an incident and append the plan to its timeline."""
    got = ctx.store.get_incident(incident_id)
    if got is None:
        raise IncidentNotFoundError(incident_id)
    incident = got[0]
    plan = plan_response(incident, ctx.partners, ctx.settings)
    drafts = []
    for action in plan.containment:
        verb = {
            ActionDecision.EXECUTE: "will be executed",
            ActionDecision.HOLD: "held for approval",
            ActionDecision.PLAN_ONLY: "planned (dry-run, nothing changed)",
            ActionDecision.SKIP: "skipped",
            ActionDecision.NONE: "no action by us",
        }[action.decision]
        drafts.append(
            EventDraft(
                event_type="containment.planned",
                phase=Phase.CONTAIN,
                occurred_at=now_ms(),
                summary=f"{action.kind.value} {action.target_display}: {verb} ({action.reason})",
                data={"action": action.wire(), "responseMode": plan.response_mode, "epoch": epoch},
            )
        )
    if plan.none_possible:  # issue 13: never silent about a P1 nothing could be contained for
        drafts.append(
            EventDraft(
                event_type="containment.none-possible",
                phase=Phase.CONTAIN,
                occurred_at=now_ms(),
                summary=f"Nothing can be contained automatically: {plan.none_possible}",
                data={"reason": plan.none_possible, "responseMode": plan.response_mode, "epoch": epoch},
            )
        )
    n = plan.notification
    drafts.append(
        EventDraft(
            event_type="notification.planned",
            phase=Phase.NOTIFY,
            occurred_at=now_ms(),
            summary=(
                f"Notify {len(n.email_to)} email recipient(s)"
                + (f", phone escalation to {len(n.phone_numbers)} number(s)" if n.phone_escalation else "")
                + (" (SOC's own contacts: no partner matched)" if n.routed_to_soc else "")
            ),
            data={"notification": n.wire(), "notes": plan.notes, "epoch": epoch},
        )
    )
    ctx.store.append_events(incident_id, drafts)
    return plan.wire()
