"""What every write-back target of an incident should show now (pure): the Sentinel aspects, the one
consolidated comment and the Defender for Cloud alert action."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.models import Incident
from shared.writeback import comment as comments
from shared.writeback import mapping
from shared.writeback.plan import SentinelDesired


@dataclass
class Desired:
    """What every target of the incident should show now."""

    sentinel: SentinelDesired
    comment: str
    defender_action: str | None

    def plan(self) -> dict[str, Any]:
        """What would be written (the comment by size only: its text changes with every notification)."""
        return {**self.sentinel.aspects(), "defenderState": self.defender_action}


def desired_state(
    incident: Incident,
    actions: list[dict[str, Any]],
    notifications: list[dict[str, Any]],
    base_url: str | None,
    mode: str,
    console_base_url: str | None = None,  # issue 16
) -> Desired:
    """What soc-responder's state reads as in Sentinel and Defender (pure)."""
    statuses = [a.get("status") for a in actions]
    sentinel = SentinelDesired(
        priority=incident.priority,
        severity=mapping.sentinel_severity(incident.priority),
        status=mapping.sentinel_status(incident.status),
        labels=tuple(mapping.desired_labels(incident.priority, incident.status, statuses)),
        closing_note=f"Closed in soc-responder: incident {incident.id} is {incident.status.value}.",
    )
    message = comments.render_comment(
        comments.CommentView(
            incident=incident,
            actions=actions,
            notifications=notifications,
            evidence_url=comments.evidence_url(base_url, incident.id),
            response_mode=mode,
            console_url=comments.console_url(console_base_url, incident.id),  # issue 16
        )
    )
    return Desired(sentinel, message, mapping.defender_action(incident.status, statuses))
