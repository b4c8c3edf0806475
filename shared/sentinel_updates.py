"""Incident updates coming back from Sentinel (``objectEventType: Update`` on ``POST /api/incidents/sentinel``).

``shared.ingest`` hands an update of a known incident here instead of
recording a duplicate (``shared.runtime`` wires this handler in as ingest's
``source_updates``: ingest never imports it). It sits above ingest, priority
changes (``shared.notify.priority``) and the write-back's state, which it reads
to recognise our own writes coming back. The handler compares severity, status and owner with
what it last saw of that Sentinel incident:

- values soc-responder wrote itself (recognised by the etag of our write, or by
  being exactly what we last wrote) are our own echo: recorded, nothing else;
- anything else is a change made in Sentinel: evidenced (``sentinel.incident-
  updated``) with the owner as actor (the trigger payload names no modifier;
  ``sentinel`` when nobody is assigned);
- a severity change that is not already in step with the priority becomes a
  priority change (``shared.notify.priority.change_priority``: evidenced,
  SLA recomputed, a raise to P1 runs the P1 runbook again, a lowering keeps
  containment), notified like one made through the API;
- an update older than our last write of a field (``lastModifiedTimeUtc``)
  does not undo it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.evidence import EventDraft, now_ms
from shared.ingest import IngestOutcome, close_at_source
from shared.models import ActorType, Alert, Incident, Phase, isoformat
from shared.notify.priority import change_priority
from shared.partners import PartnerRegistry
from shared.sources import SENTINEL_REF, sentinel_incident_id
from shared.store import EvidenceStore
from shared.writeback import mapping
from shared.writeback import state as st
from shared.writeback.targets import target_key

log = logging.getLogger("soc_responder.writeback")

FIELDS = ("severity", "status", "owner")
SENTINEL_ACTOR = "sentinel"

# (incident id, the PriorityChange, a deterministic key) → notify people of a priority change made in Sentinel.
PriorityNotifier = Callable[[str, Any, str], Any]


def classify(
    entry: st.TargetEntry,
    values: dict[str, Any],
    etag: str | None,
    modified: str | None,
    baseline: dict[str, Any],
) -> tuple[dict[str, list], list[str], list[str]]:
    """(changes {field: [before, after]}, fields recognised as our own write-back, stale fields). Pure.

    ``entry``: the write-back state of this Sentinel incident (``seen``, ``writes``);
    ``baseline``: what the incident showed when it came in, for fields never seen since.
    """
    seen = entry.get("seen") or {}
    writes = entry.get("writes") or []
    echo = next((w for w in reversed(writes) if etag and w.get("etag") == etag), None)
    ours_now = set(echo.get("changed") or []) if echo else set()
    changes: dict[str, list] = {}
    own: list[str] = []
    stale: list[str] = []
    for name in FIELDS:
        value = values.get(name)
        if value is None:
            continue
        if name in ours_now and value == echo.get(name):  # type: ignore[union-attr]
            own.append(name)
            continue
        before = seen.get(name, baseline.get(name))
        if value == before or (before is None and name != "owner"):
            continue  # unchanged, or the first sight of a value we never knew (no change to act on)
        last_ours = next((w for w in reversed(writes) if name in (w.get("changed") or [])), None)
        if last_ours and modified and last_ours.get("lastModified") and modified < last_ours["lastModified"]:
            stale.append(name)  # an older delivery: our later write stands
            continue
        changes[name] = [before, value]
    return changes, own, stale


class SentinelUpdateHandler:
    """Turns Sentinel incident updates into evidence and priority changes, without looping on our own writes."""

    def __init__(
        self,
        store: EvidenceStore,
        partners: PartnerRegistry,
        notify: PriorityNotifier | None = None,
        clock: Callable[[], datetime] = now_ms,
    ):
        self.store, self.partners, self.notify, self.clock = store, partners, notify, clock

    def handle(self, incident: Incident, alert: Alert, received: datetime) -> IngestOutcome:
        """Record one update delivery for ``incident``; returns the ingest outcome (``updated`` or ``duplicate``)."""
        ext = alert.extended_properties
        rid = sentinel_incident_id(ext.get(SENTINEL_REF))
        key = target_key(rid) if rid else f"sentinel:{alert.source_id.lower()}"
        values = {
            "severity": mapping.canonical_severity(alert.severity),
            "status": mapping.canonical_status(ext.get("sentinelStatus")),
            "owner": ext.get("sentinelOwner") or None,
        }
        etag, modified = ext.get("sentinelEtag"), ext.get("sentinelLastModified")
        entry = st.load(self.store, incident.id).target(key) or {}
        changes, own, stale = classify(entry, values, etag, modified, self._baseline(incident, alert))
        actor = values["owner"] or SENTINEL_ACTOR
        number = ext.get("incidentNumber")
        label = f"Sentinel incident #{number}" if number else f"Sentinel incident {alert.source_id}"
        data = {
            "refs": {SENTINEL_REF: rid} if rid else {},
            "alertKey": alert.primary_key,
            "sentinelIncidentId": rid,
            "etag": etag,
            "lastModified": modified,
            "changes": changes,
            "ownWriteBack": own,
            "stale": stale,
            "observed": values,
        }
        if changes:
            words = ", ".join(f"{n} {b or '—'} → {a}" for n, (b, a) in changes.items())
            draft = EventDraft(
                event_type="sentinel.incident-updated",
                phase=Phase.TRIAGE,
                occurred_at=received,
                actor=actor,
                actor_type=ActorType.ANALYST,
                summary=f"{label} changed in Sentinel: {words}",
                data=data,
            )
        else:
            why = (
                "soc-responder's own write-back"
                if own
                else "an older update than our last write"
                if stale
                else "no change to severity, status or owner"
            )
            draft = EventDraft(
                event_type="sentinel.update-received",
                phase=Phase.DETECT,
                occurred_at=received,
                summary=f"{label} update received: {why}; no action",
                data=data,
            )
        self.store.append_events(incident.id, [draft])
        after, runbook, notes = incident, None, list[str]()
        severity = values["severity"]
        if "severity" in changes and severity is not None and not mapping.in_step(severity, incident.priority):
            after, runbook, notes = self._reprioritise(incident, severity, actor, label, etag or modified)
        # What the Sentinel incident shows now (a stale delivery does not overwrite what our later write set).
        seen_update = {
            **{n: values[n] for n in FIELDS if values[n] is not None and n not in stale},
            "etag": etag,
            "lastModified": modified,
        }

        def remember(state: st.WritebackState) -> st.WritebackState:
            stored = state.target(key) or {"id": rid, "kind": "sentinel"}
            return state.with_target(key, {**stored, "seen": {**(stored.get("seen") or {}), **seen_update}})

        st.update(self.store, incident.id, remember)
        if values["status"] == mapping.CLOSED and "status" in changes and after.status.is_open:
            # issue 13: closed in Sentinel by an analyst → ours closes, calls stop, containment stays.
            closed = close_at_source(
                self.store, incident.id, f"Closed in Microsoft Sentinel ({label})", actor, received, alert.primary_key
            )
            return closed
        return IngestOutcome(
            incident.id,
            after.priority,
            after.status.value,
            "updated" if changes else "duplicate",
            after.score,
            runbook=runbook,
            alert_key=alert.primary_key,
            notes=notes,
            stop_escalation=after.priority.rank > incident.priority.rank,
        )

    def _reprioritise(
        self, incident: Incident, severity: str, actor: str, label: str, change_key: str | None
    ) -> tuple[Incident, Any, list[str]]:
        wanted = mapping.priority_for_severity(severity)
        if wanted is None or wanted == incident.priority:
            return incident, None, []
        reason = f"severity set to {severity} in Microsoft Sentinel ({label})"
        change = change_priority(self.store, self.partners, incident.id, wanted, actor, reason, clock=self.clock)
        notes = [f"priority {change.previous.value} → {change.incident.priority.value} from the Sentinel severity"]
        if change.changed and change.runbook is None and self.notify is not None:
            # A raise to P1 is announced by the runbook's own email; anything else is notified here.
            key = "sentinel-" + "".join(c for c in (change_key or isoformat(self.clock())) if c.isalnum())[:60]
            try:
                self.notify(incident.id, change, key)
            except Exception as exc:
                log.warning("priority change notification for %s failed: %s", incident.id, exc)
                notes.append("the priority change email could not be sent")
        return change.incident, change.runbook, notes

    @staticmethod
    def _baseline(incident: Incident, alert: Alert) -> dict[str, Any]:
        """What the Sentinel incident showed when it came in (its alert summary), for fields never seen since."""
        summary = next((a for a in incident.alerts if a.key == alert.primary_key), None)
        return {
            "severity": mapping.canonical_severity(summary.severity) if summary else None,
            "status": mapping.NEW,
            "owner": None,
        }


def default_priority_notifier(notifications) -> PriorityNotifier:
    """A notifier that emails the priority change like ``POST /priority`` does (``NotifyEvent.PRIORITY_CHANGED``)."""

    def notify(incident_id: str, change: Any, key: str) -> Any:
        from shared.notify.templates import NotifyEvent

        return notifications.notify_event(
            incident_id,
            NotifyEvent.PRIORITY_CHANGED,
            f"priority-{key}",
            actor=change.actor,
            reason=change.reason,
            previous_priority=change.previous.value,
        )

    return notify
