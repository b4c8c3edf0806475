"""How a Sentinel incident, as just read, is changed to carry soc-responder's state. Pure.

The rule is "write what changed on our side, merge it into what is there now,
never fight an analyst":

- each aspect (severity, status, labels) is written only when *our* desired
  value changed since it was last applied (or on the first projection), so an
  analyst's later edit in Sentinel stands until our state moves again;
- severity is written only when Sentinel's current one is not already in step
  with the priority (``mapping.in_step``);
- status only moves forward (New → Active → Closed), never reopens;
- labels: ours are added if absent; a managed label is removed only if *we*
  added it (``owned``: recorded in our state before the PUT that adds it, so a
  lost answer or a crash keeps it ours) and it is still there — one that is
  gone (our write never landed, or an analyst removed it) stops being ours, so
  the same name typed later by an analyst is theirs; every other label — typed
  by an analyst, assigned by an automation rule — is sent back exactly as read;
- every other writable property (title, description, owner, classification,
  activity times) is sent back exactly as read, with the read ``etag``, so the
  PUT replaces nothing an analyst set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.models import Priority
from shared.sources import owner_name
from shared.writeback import mapping

# Incident properties a PUT carries (the rest are read-only and computed by Sentinel).
WRITABLE = (
    "title",
    "description",
    "severity",
    "status",
    "classification",
    "classificationComment",
    "classificationReason",
    "owner",
    "labels",
    "firstActivityTimeUtc",
    "lastActivityTimeUtc",
)


@dataclass(frozen=True)
class SentinelDesired:
    """What the incident should say, from soc-responder's state."""

    priority: Priority
    severity: str
    status: str
    labels: tuple[str, ...]
    closing_note: str = ""

    def aspects(self) -> dict[str, Any]:
        return {
            "priority": self.priority.value,
            "severity": self.severity,
            "status": self.status,
            "labels": list(self.labels),
        }


@dataclass
class IncidentUpdate:
    """The PUT body (None: nothing to change) and what it changes."""

    body: dict[str, Any] | None
    changes: dict[str, Any] = field(default_factory=dict)
    owned: list[str] = field(default_factory=list)


def _label_name(item: Any) -> str | None:
    if isinstance(item, Mapping):
        name = item.get("labelName")
        return name if isinstance(name, str) and name else None
    return item if isinstance(item, str) and item else None


def plan_incident_update(
    properties: Mapping[str, Any],
    etag: str | None,
    desired: SentinelDesired,
    applied: Mapping[str, Any],
    owned: list[str],
) -> IncidentUpdate:
    """Merge ``desired`` into the incident's current ``properties``.

    ``applied``: the desired aspects last applied to this incident ({} before the first write-back);
    ``owned``: managed labels soc-responder added (and may therefore remove), including those claimed for an
    earlier write whose answer was lost. The result's ``owned`` is what is ours after this update: the owned
    labels still present, plus those it adds, minus those it removes.
    """
    props = {k: properties[k] for k in WRITABLE if k in properties}
    changes: dict[str, Any] = {}
    first = not applied
    current_severity = properties.get("severity")
    if (first or applied.get("priority") != desired.priority.value) and not mapping.in_step(
        current_severity, desired.priority
    ):
        props["severity"] = desired.severity
        changes["severity"] = [current_severity, desired.severity]
    current_status = properties.get("status")
    if (first or applied.get("status") != desired.status) and mapping.may_move_status(current_status, desired.status):
        props["status"] = desired.status
        changes["status"] = [current_status, desired.status]
        if desired.status == mapping.CLOSED and not properties.get("classification"):
            props["classification"] = "Undetermined"
            props["classificationComment"] = desired.closing_note[:1000]
    labels = [
        dict(x) if isinstance(x, Mapping) else {"labelName": x}
        for x in (properties.get("labels") or [])
        if _label_name(x)
    ]
    present = {_label_name(x).lower() for x in labels}  # type: ignore[union-attr]
    # Ownership holds only while the label is there: one that is gone (never landed, or removed in Sentinel) is
    # no longer ours, and the same name added later by someone else must not become ours to remove.
    ours = {x.lower() for x in owned if x.lower() in present}
    before = set() if first else {x.lower() for x in applied.get("labels") or []}
    wanted = {x.lower(): x for x in desired.labels}
    added, removed = [], []
    for low, name in wanted.items():
        if (first or low not in before) and low not in present:
            labels.append({"labelName": name, "labelType": "User"})
            present.add(low)
            ours.add(low)
            added.append(name)
    # Candidates for removal: what we last applied, and labels of ours that a write never recorded as applied put
    # there (its answer lost, or the run failed after it).
    for low in sorted((before | ours) - set(wanted)):
        if low in ours and low in present:
            labels = [x for x in labels if (_label_name(x) or "").lower() != low]
            present.discard(low)
            removed.append(next((n for n in mapping.MANAGED_LABELS if n.lower() == low), low))
        ours.discard(low)
    if added:
        changes["labelsAdded"] = added
    if removed:
        changes["labelsRemoved"] = removed
    owned_after = [n for n in mapping.MANAGED_LABELS if n.lower() in ours]
    if added or removed:
        props["labels"] = labels
    if not changes:
        return IncidentUpdate(None, {}, owned_after)
    body: dict[str, Any] = {"properties": props}
    if etag:
        body["etag"] = etag
    return IncidentUpdate(body, changes, owned_after)


def observed(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a Sentinel incident the write-back and the update handler compare."""
    return {
        "severity": mapping.canonical_severity(properties.get("severity")),
        "status": mapping.canonical_status(properties.get("status")),
        "owner": owner_name(properties.get("owner")),
    }
