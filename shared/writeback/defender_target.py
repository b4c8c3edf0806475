"""Projecting an incident onto one Defender for Cloud alert: its state (active → in progress → resolved /
dismissed) when ours moves, never undoing what a person set — evidenced as ``writeback.defender``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.errors import AdapterError
from shared.evidence import EventDraft
from shared.models import Incident, Phase
from shared.writeback import mapping
from shared.writeback import state as st
from shared.writeback.desired import Desired
from shared.writeback.outcome import Outcome, failed, is_final
from shared.writeback.ports import DefenderAlerts
from shared.writeback.targets import describe, target_key


class DefenderProjection:
    """Writes an incident's desired state into one Defender for Cloud alert (``project``)."""

    def __init__(self, defender: DefenderAlerts, clock: Callable[[], datetime]):
        self.defender, self.clock = defender, clock

    def project(
        self, incident: Incident, rid: str, entry: st.TargetEntry, desired: Desired, trigger: str, now: datetime
    ) -> Outcome:
        key = target_key(rid)
        action = desired.defender_action
        entry = {**entry, "turnedOff": False}
        applied = (entry.get("applied") or {}).get("action")
        if action is None or (applied == action and not entry.get("failure")):
            return Outcome(key, "defender", "unchanged")
        fp = st.digest({"action": action})
        why = st.deferred(entry, fp, now, honour_backoff=trigger != "runbook")
        if why:
            return Outcome(key, "defender", "deferred", detail={"reason": why, "final": is_final(entry)})
        try:
            before = self.defender.get_status(rid)
            new_entry = {**entry, "id": rid, "kind": "defender", "applied": {"action": action}, "failure": None}
            if not mapping.defender_action_needed(before, action):
                kept = (before or "").lower() in ("dismissed", "resolved") and mapping.STATUS_AFTER[action].lower() != (
                    before or ""
                ).lower()
                drafts = (
                    [
                        EventDraft(
                            event_type="writeback.defender",
                            phase=Phase.NOTIFY,
                            occurred_at=self.clock(),
                            summary=f"{describe(rid)} is {before}: left as a person set it",
                            data={"target": rid, "action": None, "wanted": action, "statusBefore": before},
                        )
                    ]
                    if kept
                    else []
                )
                return Outcome(key, "defender", "unchanged", new_entry, drafts=drafts)
            self.defender.set_state(rid, action)
        except AdapterError as exc:
            return failed(self.clock, incident, key, "defender", rid, entry, exc, fp, now)
        after = mapping.STATUS_AFTER[action]
        draft = EventDraft(
            event_type="writeback.defender",
            phase=Phase.NOTIFY,
            occurred_at=self.clock(),
            summary=f"{describe(rid)}: state {before or 'unknown'} → {after}",
            data={
                "target": rid,
                "action": action,
                "statusBefore": before,
                "statusAfter": after,
                "incidentStatus": incident.status.value,
                "afterFailures": (entry.get("failure") or {}).get("attempts"),
            },
        )
        return Outcome(key, "defender", "written", new_entry, drafts=[draft], detail={"action": action})
