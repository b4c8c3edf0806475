"""Projecting an incident onto one Microsoft Sentinel incident: severity, status and managed labels merged
into a fresh read (never clobbering an analyst's edit; 412 → read and merge again), then the one consolidated
comment — each write evidenced as ``writeback.sentinel``, a failure as ``writeback.failed``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.errors import AdapterError, ConcurrentEditError, TransientError
from shared.evidence import EventDraft
from shared.models import Incident, Phase, isoformat
from shared.store import EvidenceStore
from shared.writeback import comment as comments
from shared.writeback import state as st
from shared.writeback.desired import Desired
from shared.writeback.outcome import Outcome, failed, is_final
from shared.writeback.plan import observed, plan_incident_update
from shared.writeback.ports import SentinelIncidents
from shared.writeback.targets import describe, target_key

MAX_CONCURRENT_EDITS = 5


class SentinelProjection:
    """Writes an incident's desired state into one Sentinel incident (``project``)."""

    def __init__(self, store: EvidenceStore, sentinel: SentinelIncidents, clock: Callable[[], datetime]):
        self.store, self.sentinel, self.clock = store, sentinel, clock

    def project(
        self, incident: Incident, rid: str, entry: st.TargetEntry, desired: Desired, trigger: str, now: datetime
    ) -> Outcome:
        key = target_key(rid)
        aspects = desired.sentinel.aspects()
        comment_sha = comments.fingerprint(desired.comment)
        fp = st.digest({"aspects": aspects, "comment": comment_sha})
        entry = {**entry, "turnedOff": False}
        if entry.get("applied") == aspects and entry.get("commentSha") == comment_sha and not entry.get("failure"):
            return Outcome(key, "sentinel", "unchanged")
        why = st.deferred(entry, fp, now, honour_backoff=trigger != "runbook")
        if why:
            return Outcome(key, "sentinel", "deferred", detail={"reason": why, "final": is_final(entry)})
        try:
            return self._write(incident, rid, entry, desired, comment_sha, fp, now)
        except AdapterError as exc:
            return failed(self.clock, incident, key, "sentinel", rid, entry, exc, fp, now)

    def _write(
        self,
        incident: Incident,
        rid: str,
        entry: st.TargetEntry,
        desired: Desired,
        comment_sha: str,
        fp: str,
        now: datetime,
    ) -> Outcome:
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
            stopped = failed(self.clock, incident, key, "sentinel", rid, progress, exc, fp, now)
            stopped.seen = seen
            if changes:
                stopped.drafts.insert(0, self._draft(rid, changes, None, conflicts, comment_id, desired, entry))
            return stopped
        new_entry = {
            **progress,
            "commentId": comment_id,
            "commentSha": comment_sha,
            "commentLimited": limited,
            "failure": None,
        }
        drafts: list[EventDraft] = []
        if changes or comment_note or entry.get("failure"):
            drafts.append(self._draft(rid, changes, comment_note, conflicts, comment_id, desired, entry))
        status = "written" if changes else "unchanged"
        return Outcome(
            key, "sentinel", status, new_entry, seen, drafts, {"changes": changes, "concurrentEdits": conflicts}
        )

    def _draft(
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
