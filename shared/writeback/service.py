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

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.errors import AdapterError, ConcurrentEditError, TransientError
from shared.evidence import EventDraft, now_ms
from shared.models import Incident, Phase, isoformat
from shared.partners import PartnerRegistry
from shared.response_plan import effective_mode
from shared.settings import Settings
from shared.source_lifecycle import left_at_the_source
from shared.store import EvidenceStore
from shared.writeback import SYNC_STATE, mapping
from shared.writeback import comment as comments
from shared.writeback import state as st
from shared.writeback.plan import SentinelDesired, observed, plan_incident_update
from shared.writeback.ports import DefenderAlerts, SentinelIncidents
from shared.writeback.targets import Targets, describe, find_targets, target_key

log = logging.getLogger("soc_responder.writeback")

MAX_CONCURRENT_EDITS = 5
SYNC_LOOKBACK = timedelta(days=7)
# A sync pass stops after this many transient failures in a row (the service is down: don't hammer it).
SYNC_BREAKER = 3


@dataclass
class Desired:
    """What every target of the incident should show now."""

    sentinel: SentinelDesired
    comment: str
    defender_action: str | None

    def plan(self) -> dict[str, Any]:
        """What would be written (the comment by size only: its text changes with every notification)."""
        return {**self.sentinel.aspects(), "defenderState": self.defender_action}


@dataclass
class _Outcome:
    key: str
    kind: str
    status: str  # written | unchanged | failed | deferred | skipped
    entry: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)
    drafts: list[EventDraft] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {"target": self.entry.get("id") or self.key, "kind": self.kind, "status": self.status, **self.detail}


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
        outcomes: list[_Outcome] = []
        unaddressable: tuple[str, ...] | None = None
        enabled = self.settings.writeback_targets
        kinds = (
            ("sentinel", targets.sentinel, self._sentinel_target),
            ("defender", targets.defender, self._defender_target),
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

    def _turned_off(self, key: str, kind: str, rid: str, entry: st.TargetEntry, now: datetime) -> _Outcome:
        if entry.get("turnedOff"):
            return _Outcome(key, kind, "skipped")
        draft = EventDraft(
            event_type="writeback.skipped",
            phase=Phase.NOTIFY,
            occurred_at=now,
            summary=f"{describe(rid)}: write-back to {kind} is turned off (WRITEBACK_TARGETS)",
            data={"target": rid, "kind": kind, "reason": "turned off by WRITEBACK_TARGETS"},
        )
        return _Outcome(key, kind, "skipped", {**entry, "turnedOff": True}, drafts=[draft])

    # ---------------------------------------------------------------- Sentinel
    def _sentinel_target(
        self, incident: Incident, rid: str, entry: st.TargetEntry, desired: Desired, trigger: str, now: datetime
    ) -> _Outcome:
        key = target_key(rid)
        aspects = desired.sentinel.aspects()
        comment_sha = comments.fingerprint(desired.comment)
        fp = st.digest({"aspects": aspects, "comment": comment_sha})
        entry = {**entry, "turnedOff": False}
        if entry.get("applied") == aspects and entry.get("commentSha") == comment_sha and not entry.get("failure"):
            return _Outcome(key, "sentinel", "unchanged")
        why = st.deferred(entry, fp, now, honour_backoff=trigger != "runbook")
        if why:
            return _Outcome(key, "sentinel", "deferred", detail={"reason": why, "final": _final(entry)})
        try:
            return self._write_sentinel(incident, rid, entry, desired, comment_sha, fp, now)
        except AdapterError as exc:
            return self._failed(incident, key, "sentinel", rid, entry, exc, fp, now)

    def _write_sentinel(
        self,
        incident: Incident,
        rid: str,
        entry: st.TargetEntry,
        desired: Desired,
        comment_sha: str,
        fp: str,
        now: datetime,
    ) -> _Outcome:
        key = target_key(rid)
        aspects = desired.sentinel.aspects()
        applied = entry.get("applied") or {}
        # Managed labels we added → the claim that recorded each. Carried across the attempts below: a label an
        # earlier attempt added is still ours when the re-read finds it there (its answer lost, the retry's 412).
        claims = st.owned_labels(entry)
        claim = uuid.uuid4().hex[:12]
        released: dict[str, str] = {}
        changes: dict[str, Any] = {}
        seen: dict[str, Any] = {}
        writes = list(entry.get("writes") or [])
        conflicts = 0
        if applied != aspects:
            for _ in range(MAX_CONCURRENT_EDITS):
                current = self.sentinel.get_incident(rid)
                update = plan_incident_update(current.properties, current.etag, desired.sentinel, applied, list(claims))
                # What this read (and the PUT, once it succeeds) leaves not ours: removed by us, or gone.
                released = {n: c for n, c in claims.items() if n not in update.owned}
                if update.body is None:
                    break
                adding = [n for n in update.changes.get("labelsAdded") or [] if claims.get(n) != claim]
                if adding:
                    # Write-ahead: ours in our state before the PUT, whatever happens to its answer. A fresh claim
                    # (this run's id) also outlives a concurrent projection's release of an older one.
                    st.claim_labels(self.store, incident.id, key, rid, adding, claim)
                    claims.update(dict.fromkeys(adding, claim))
                try:
                    written = self.sentinel.replace_incident(rid, update.body, current.etag)
                except ConcurrentEditError:
                    conflicts += 1  # an analyst (or an automation rule) edited it meanwhile: read and merge again
                    released = {}
                    continue
                changes = update.changes
                after = observed(written.properties)
                changed = [f for f in ("severity", "status") if f in changes]
                # What we wrote is what the incident now shows: its update event is our own echo.
                seen = {f: after[f] for f in changed}
                writes = st.record_write(
                    entry,
                    {
                        "etag": written.etag,
                        "changed": changed,
                        **{f: after[f] for f in changed},
                        "lastModified": written.properties.get("lastModifiedTimeUtc"),
                        "at": isoformat(now),
                    },
                )
                break
            else:
                raise TransientError(
                    f"the incident changed under every one of {conflicts} writes", status=412, code="ConcurrentEdits"
                )
        # The incident is written: from here on that progress is kept even if the comment fails.
        progress = {**entry, "id": rid, "kind": "sentinel", "applied": aspects, "writes": writes, st.RELEASED: released}
        comment_id = comments.comment_id(incident.id, rid)
        comment_note = None
        limited = False
        try:
            if entry.get("commentSha") != comment_sha:
                if entry.get("commentSha") and not entry.get("commentLimited"):
                    self.sentinel.put_comment(rid, comment_id, desired.comment)  # ours exists: update it in place
                    changes["comment"] = "updated"
                else:
                    existing, count = self.sentinel.find_comment(rid, comment_id)
                    if existing is not None and existing.message == desired.comment:
                        pass  # a previous run wrote it and stopped before recording that
                    elif existing is None and count >= comments.MAX_COMMENTS_PER_INCIDENT:
                        comment_note = "the incident already has 100 comments (Sentinel's limit): summary not added"
                        limited = True
                    else:
                        self.sentinel.put_comment(rid, comment_id, desired.comment)
                        changes["comment"] = "added" if existing is None else "updated"
        except AdapterError as exc:
            failed = self._failed(incident, key, "sentinel", rid, progress, exc, fp, now)
            failed.seen = seen
            if changes:
                failed.drafts.insert(0, self._sentinel_draft(rid, changes, None, conflicts, comment_id, desired, entry))
            return failed
        new_entry = {
            **progress,
            "commentId": comment_id,
            "commentSha": comment_sha,
            "commentLimited": limited,
            "failure": None,
        }
        drafts: list[EventDraft] = []
        if changes or comment_note or entry.get("failure"):
            drafts.append(self._sentinel_draft(rid, changes, comment_note, conflicts, comment_id, desired, entry))
        status = "written" if changes else "unchanged"
        return _Outcome(
            key, "sentinel", status, new_entry, seen, drafts, {"changes": changes, "concurrentEdits": conflicts}
        )

    def _sentinel_draft(
        self,
        rid: str,
        changes: dict,
        note: str | None,
        conflicts: int,
        comment_id: str,
        desired: Desired,
        entry: st.TargetEntry,
    ) -> EventDraft:
        return EventDraft(
            event_type="writeback.sentinel",
            phase=Phase.NOTIFY,
            occurred_at=self.clock(),
            summary=f"{describe(rid)}: {_describe_changes(changes, note)}",
            data={
                "target": rid,
                "changes": changes,
                "concurrentEdits": conflicts,
                "commentId": comment_id,
                "commentCharacters": len(desired.comment),
                "note": note,
                "afterFailures": (entry.get("failure") or {}).get("attempts"),
            },
        )

    # ---------------------------------------------------------------- Defender for Cloud
    def _defender_target(
        self, incident: Incident, rid: str, entry: st.TargetEntry, desired: Desired, trigger: str, now: datetime
    ) -> _Outcome:
        key = target_key(rid)
        action = desired.defender_action
        entry = {**entry, "turnedOff": False}
        applied = (entry.get("applied") or {}).get("action")
        if action is None or (applied == action and not entry.get("failure")):
            return _Outcome(key, "defender", "unchanged")
        fp = st.digest({"action": action})
        why = st.deferred(entry, fp, now, honour_backoff=trigger != "runbook")
        if why:
            return _Outcome(key, "defender", "deferred", detail={"reason": why, "final": _final(entry)})
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
                return _Outcome(key, "defender", "unchanged", new_entry, drafts=drafts)
            self.defender.set_state(rid, action)
        except AdapterError as exc:
            return self._failed(incident, key, "defender", rid, entry, exc, fp, now)
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
        return _Outcome(key, "defender", "written", new_entry, drafts=[draft], detail={"action": action})

    # ---------------------------------------------------------------- failures
    def _failed(
        self,
        incident: Incident,
        key: str,
        kind: str,
        rid: str,
        entry: dict,
        exc: AdapterError,
        fingerprint: str,
        now: datetime,
    ) -> _Outcome:
        failure = st.failure_after(entry, exc.evidence(), fingerprint, now)
        if failure["final"]:
            tail = (
                "given up after {n} attempts".format(n=failure["attempts"])
                if not exc.final
                else "not retried until the incident changes"
            )
        else:
            tail = f"attempt {failure['attempts']}, retry at {failure['nextAttemptAt']}"
        hint = {"AccessDeniedError": f" — grant the app's identity {_ROLE_HINT[kind]}"}.get(type(exc).__name__, "")
        draft = EventDraft(
            event_type="writeback.failed",
            phase=Phase.NOTIFY,
            occurred_at=self.clock(),
            summary=f"Write-back to {describe(rid)} FAILED ({tail}): {exc.reason[:200]}{hint}",
            data={
                "target": rid,
                "kind": kind,
                "error": exc.evidence(),
                "attempt": failure["attempts"],
                "final": failure["final"],
                "nextAttemptAt": failure["nextAttemptAt"],
            },
        )
        log.warning("write-back of %s to %s failed: %s", incident.id, rid, exc.reason)
        return _Outcome(
            key,
            kind,
            "failed",
            {**entry, "id": rid, "kind": kind, "failure": failure},
            drafts=[draft],
            detail={"error": exc.evidence(), "final": failure["final"]},
        )

    # ================================================================ the timer's pass
    def sync(self, now: datetime | None = None) -> dict[str, Any]:
        """Re-project every incident touched in the last week whose timeline (or row) moved since the last pass."""
        now = now or self.clock()
        got = self.store.get_state(SYNC_STATE)
        # Per incident: its chain head and its row's updatedAt when last projected (either moving means a change).
        seen: dict[str, str] = dict((got[0] if got else {}).get("seen") or {})
        kept: dict[str, str] = {}
        report: dict[str, Any] = {"checked": 0, "projected": 0, "outcomes": {}, "stoppedEarly": False}
        transient_in_a_row = 0
        rows = list(self.store.iter_incident_index(touched_since=isoformat(now - SYNC_LOOKBACK)))
        for position, row in enumerate(rows):
            iid = row.incident_id
            report["checked"] += 1
            head = self.store.get_chain_head(iid)
            mark = f"{head[0] if head else 0}|{row.updated_at}"
            if seen.get(iid) == mark:
                kept[iid] = mark
                continue
            if transient_in_a_row >= SYNC_BREAKER:
                # The service keeps failing: leave the rest for the next pass instead of hammering it.
                report["stoppedEarly"] = True
                kept.update({r.incident_id: seen[r.incident_id] for r in rows[position:] if r.incident_id in seen})
                break
            try:
                result = self.write_back(iid, trigger="timer")
            except Exception:
                log.exception("write-back sync of %s failed", iid)
                continue
            report["projected"] += 1
            outcome = result.get("status", "unknown")
            report["outcomes"][outcome] = report["outcomes"].get(outcome, 0) + 1
            pending = [
                t
                for t in result.get("targets") or []
                if isinstance(t, dict) and t.get("status") in ("failed", "deferred") and not t.get("final")
            ]
            transient_in_a_row = transient_in_a_row + 1 if any(t["status"] == "failed" for t in pending) else 0
            if pending:
                if iid in seen:
                    kept[iid] = seen[iid]  # not done yet: looked at again next pass (the backoff decides)
                continue
            kept[iid] = mark
        if kept != seen:
            self.store.set_state(SYNC_STATE, {"seen": kept, "at": isoformat(now)}, got[1] if got else None)
        return report


def _final(entry: dict[str, Any]) -> bool:
    return bool((entry.get("failure") or {}).get("final"))


_ROLE_HINT = {
    "sentinel": "Microsoft Sentinel Responder on the workspace",
    "defender": "the Defender for Cloud alert-state role in the alert's subscription",
}


def _describe_changes(changes: dict[str, Any], note: str | None) -> str:
    parts = []
    if "severity" in changes:
        parts.append(f"severity {changes['severity'][0]} → {changes['severity'][1]}")
    if "status" in changes:
        parts.append(f"status {changes['status'][0]} → {changes['status'][1]}")
    if changes.get("labelsAdded"):
        parts.append("labels +" + " +".join(changes["labelsAdded"]))
    if changes.get("labelsRemoved"):
        parts.append("labels −" + " −".join(changes["labelsRemoved"]))
    if changes.get("comment"):
        parts.append(f"soc-responder comment {changes['comment']}")
    if note:
        parts.append(note)
    return ", ".join(parts) or "brought in step after earlier failures"
