"""WritebackService: projects an incident into its Sentinel incidents and Defender for Cloud alerts.

Called by the runbook's last activity (``write_back_incident``) and by the
``writeback_sync`` timer for incidents whose timeline moved (operator routes
— ack, priority, approve, release — change incidents without knowing about
Sentinel). It never raises a Sentinel or Defender failure into its caller:

- a concurrent edit in Sentinel (412, or 409 on a stale etag) is merged again
  from a fresh read, a few times;
- a transient failure (429/5xx/timeout, after the client's own retries) is
  evidenced as ``writeback.failed`` and retried by the timer with backoff
  (1, 2, 4 … minutes, at most an hour apart, 8 attempts);
- a final failure (403, 404, 400) is evidenced once and not retried until the
  incident changes;
- dry-run (the partner's effective response mode) writes nothing and says so
  once (``writeback.skipped``);
- nothing changes on our side → no call at all, so the evidence the write-back
  itself appends (and Sentinel's update events about our own writes) can
  never start a loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.evidence import EventDraft, now_ms
from shared.models import Incident, Phase
from shared.partners import PartnerRegistry
from shared.response_plan import effective_mode
from shared.settings import Settings
from shared.source_lifecycle import left_at_the_source
from shared.store import EvidenceStore
from shared.writeback import state as st
from shared.writeback.defender_target import DefenderProjection
from shared.writeback.desired import Desired, desired_state
from shared.writeback.outcome import Outcome
from shared.writeback.ports import DefenderAlerts, SentinelIncidents
from shared.writeback.sentinel_target import SentinelProjection
from shared.writeback.sync import sync_pass
from shared.writeback.targets import Targets, describe, find_targets, target_key

__all__ = ["Desired", "WritebackService", "desired_state"]


class WritebackService:
    """Sentinel incident and Defender alert write-back, every write and failure evidenced."""

    def __init__(
        self,
        store: EvidenceStore,
        partners: PartnerRegistry,
        settings: Settings,
        sentinel: SentinelIncidents,
        defender: DefenderAlerts,
        clock: Callable[[], datetime] = now_ms,
    ):
        # The adapters come from the composition root (shared.runtime): this service never builds one.
        self.store, self.partners, self.settings, self.clock = store, partners, settings, clock
        self.sentinel, self.defender = sentinel, defender

    # ================================================================ one incident
    def write_back(self, incident_id: str, trigger: str = "runbook") -> dict[str, Any]:
        """Project the incident into its targets. Returns a summary; Sentinel/Defender failures are evidenced
        and returned, never raised (only an evidence-store failure raises)."""
        got = self.store.get_incident(incident_id)
        if got is None:
            return {"incidentId": incident_id, "status": "not-found"}
        incident = got[0]
        events = self.store.list_events(incident_id)
        if left_at_the_source(incident, events):
            # issue 13: recorded only (closed on arrival, or a test alert): the source is never changed.
            return {"incidentId": incident_id, "status": "recorded-only"}
        targets = find_targets(events)
        if not targets:
            return {"incidentId": incident_id, "status": "no-target"}
        mode = effective_mode(self.partners.get(incident.partner_id), self.settings)
        from shared.containment import list_actions

        actions = list_actions(self.store, incident_id)
        notifications = self.store.list_records("Notifications", incident_id)
        desired = desired_state(
            incident, actions, notifications, self.settings.callback_base_url, mode, self.settings.console_base_url
        )
        current = st.load(self.store, incident_id)
        now = self.clock()
        if mode == "dry-run":
            return self._dry_run(incident, targets, desired, current, now)
        outcomes: list[Outcome] = []
        unaddressable: tuple[str, ...] | None = None
        enabled = self.settings.writeback_targets
        kinds = (
            ("sentinel", targets.sentinel, SentinelProjection(self.store, self.sentinel, self.clock).project),
            ("defender", targets.defender, DefenderProjection(self.defender, self.clock).project),
        )
        for kind, ids, project in kinds:
            for rid in ids:
                key = target_key(rid)
                entry = current.target(key) or {"id": rid, "kind": kind}
                if kind in enabled:
                    outcomes.append(project(incident, rid, entry, desired, trigger, now))
                else:
                    outcomes.append(self._turned_off(key, kind, rid, entry, now))
        drafts = [d for o in outcomes for d in o.drafts]
        noted = set(current.notes.unaddressable or ())
        missing = [(k, why) for k, why in targets.unaddressable if k not in noted]
        if missing and "defender" in enabled:
            drafts.append(
                EventDraft(
                    event_type="writeback.skipped",
                    phase=Phase.NOTIFY,
                    occurred_at=now,
                    summary=f"{len(missing)} Defender for Cloud alert(s) cannot be updated: no alert resource id "
                    f"({missing[0][1]})",
                    data={"alerts": [{"alertKey": k, "reason": why} for k, why in missing]},
                )
            )
            unaddressable = tuple(sorted(noted | {k for k, _ in missing}))
        # Evidence first: a crash before the state is saved repeats a write (harmless), never loses its record.
        if drafts:
            self.store.append_events(incident_id, drafts)
        touched = [o for o in outcomes if o.entry]
        if touched or unaddressable is not None:

            def change(state: st.WritebackState) -> st.WritebackState:
                for o in touched:
                    state = st.merge_target(state, o.key, o.entry, o.seen)
                if unaddressable is not None:
                    state = state.with_notes(unaddressable=unaddressable)
                return state

            st.update(self.store, incident_id, change)
        statuses = {o.status for o in outcomes}
        overall = next(
            (s for s in ("failed", "deferred", "written", "unchanged") if s in statuses),
            "skipped" if statuses else "no-target",
        )
        return {
            "incidentId": incident_id,
            "status": overall,
            "trigger": trigger,
            "targets": [o.wire() for o in outcomes],
        }

    # ---------------------------------------------------------------- dry-run and switched-off targets
    def _dry_run(
        self, incident: Incident, targets: Targets, desired: Desired, current: st.WritebackState, now: datetime
    ) -> dict:
        plan = desired.plan()
        if targets.all() and current.notes.dry_run != st.digest(plan):
            self.store.append_events(
                incident.id,
                [
                    EventDraft(
                        event_type="writeback.skipped",
                        phase=Phase.NOTIFY,
                        occurred_at=now,
                        summary=f"Dry-run: nothing written back to {len(targets.all())} Sentinel/Defender target(s)",
                        data={
                            "responseMode": "dry-run",
                            "targets": targets.all(),
                            "wouldWrite": plan,
                            "commentCharacters": len(desired.comment),
                        },
                    )
                ],
            )

            def note(state: st.WritebackState) -> st.WritebackState:
                return state.with_notes(dry_run=st.digest(plan))

            st.update(self.store, incident.id, note)
        return {
            "incidentId": incident.id,
            "status": "dry-run",
            "wouldWrite": plan,
            "targets": [
                {"target": t, "kind": "sentinel" if t in targets.sentinel else "defender", "status": "skipped"}
                for t in targets.all()
            ],
        }

    def _turned_off(self, key: str, kind: str, rid: str, entry: st.TargetEntry, now: datetime) -> Outcome:
        if entry.get("turnedOff"):
            return Outcome(key, kind, "skipped")
        draft = EventDraft(
            event_type="writeback.skipped",
            phase=Phase.NOTIFY,
            occurred_at=now,
            summary=f"{describe(rid)}: write-back to {kind} is turned off (WRITEBACK_TARGETS)",
            data={"target": rid, "kind": kind, "reason": "turned off by WRITEBACK_TARGETS"},
        )
        return Outcome(key, kind, "skipped", {**entry, "turnedOff": True}, drafts=[draft])

    # ================================================================ the timer's pass
    def sync(self, now: datetime | None = None) -> dict[str, Any]:
        """Re-project every incident touched in the last week whose timeline (or row) moved since the last pass."""
        return sync_pass(self.store, self.write_back, now or self.clock())
