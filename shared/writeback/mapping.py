"""How soc-responder's state reads in Sentinel and Defender for Cloud. Pure.

Severity (Sentinel has High, Medium, Low, Informational — no Critical):

| priority | Sentinel severity written | Sentinel severities "in step" with it |
|---|---|---|
| P1 Critical | High | High |
| P2 High | High | High |
| P3 Medium | Medium | Medium |
| P4 Low | Low | Low, Informational |

The reverse (an analyst changes the severity in Sentinel) follows the scoring
rules' base scores (High 8 → P2, Medium 5 → P3, Low 3 / Informational 2 → P4),
so a change in Sentinel means what the same severity means at ingest. A
severity already in step with the priority changes nothing (our own High on
a P1 never lowers it to P2). Sentinel cannot raise an incident to P1: P1 runs
automatic containment, and Sentinel's top severity is what most incidents
carry from the start; P1 comes from the scoring rules, a new alert or
``POST /api/incidents/{id}/priority``.

Status: every open state of ours (open, held, contained, acknowledged,
released) is Sentinel ``Active``; resolved / closed is ``Closed``. Sentinel's
status only ever moves forward (New → Active → Closed): an incident an
analyst closed in Sentinel is never reopened by us.

Defender for Cloud alert state: ``inProgress`` once soc-responder acts on the
incident (contained, held for approval, acknowledged, released), ``resolve``
when the incident is resolved or closed; an alert a person dismissed or
resolved is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.models import IncidentStatus, Priority

SENTINEL_SEVERITIES = ("High", "Medium", "Low", "Informational")
_SEVERITY_FOR = {Priority.P1: "High", Priority.P2: "High", Priority.P3: "Medium", Priority.P4: "Low"}
_IN_STEP = {
    Priority.P1: frozenset({"High"}),
    Priority.P2: frozenset({"High"}),
    Priority.P3: frozenset({"Medium"}),
    Priority.P4: frozenset({"Low", "Informational"}),
}
_PRIORITY_FOR = {"High": Priority.P2, "Medium": Priority.P3, "Low": Priority.P4, "Informational": Priority.P4}

NEW, ACTIVE, CLOSED = "New", "Active", "Closed"
_STATUS_RANK = {NEW: 0, ACTIVE: 1, CLOSED: 2}

# Labels soc-responder manages; any other label (an analyst's, an automation rule's) is never touched.
APP_LABEL = "soc-responder"
CONTAINED, HELD, RELEASED = "contained", "held-for-approval", "released"
MANAGED_LABELS = (APP_LABEL, *(p.value for p in Priority), CONTAINED, HELD, RELEASED)

# Defender for Cloud alert actions (POST …/alerts/{name}/{action}) and the status each one leaves.
IN_PROGRESS, RESOLVE = "inProgress", "resolve"
STATUS_AFTER = {"activate": "Active", IN_PROGRESS: "InProgress", RESOLVE: "Resolved", "dismiss": "Dismissed"}

_IN_EFFECT = ("contained", "already-contained")
_HELD = ("held", "approved")


def canonical_severity(value: Any) -> str | None:
    """Sentinel's spelling of a severity, or None."""
    text = str(value or "").strip().lower()
    return next((s for s in SENTINEL_SEVERITIES if s.lower() == text), None)


def canonical_status(value: Any) -> str | None:
    text = str(value or "").strip().lower()
    return next((s for s in _STATUS_RANK if s.lower() == text), None)


def sentinel_severity(priority: Priority) -> str:
    """The severity written to Sentinel for a priority."""
    return _SEVERITY_FOR[priority]


def in_step(severity: Any, priority: Priority) -> bool:
    """Whether a Sentinel severity already says what the priority says (nothing to write, nothing to change)."""
    return canonical_severity(severity) in _IN_STEP[priority]


def priority_for_severity(severity: Any) -> Priority | None:
    """The priority an analyst's Sentinel severity means (never P1, see the module notes)."""
    sev = canonical_severity(severity)
    return _PRIORITY_FOR.get(sev) if sev else None


def sentinel_status(status: IncidentStatus) -> str:
    return CLOSED if not status.is_open else ACTIVE


def may_move_status(current: Any, desired: str) -> bool:
    """Sentinel status only moves forward; an unknown current status is left alone unless we close."""
    cur = canonical_status(current)
    if cur is None:
        return False
    return _STATUS_RANK[desired] > _STATUS_RANK[cur]


def desired_labels(priority: Priority, status: IncidentStatus, action_statuses: Iterable[str | None]) -> list[str]:
    """The managed labels the incident should carry now (sorted, stable)."""
    statuses = {s for s in action_statuses if s}
    labels = {APP_LABEL, priority.value}
    if status == IncidentStatus.CONTAINED or statuses & set(_IN_EFFECT):
        labels.add(CONTAINED)
    if status == IncidentStatus.HELD or statuses & set(_HELD):
        labels.add(HELD)
    if status == IncidentStatus.RELEASED or "released" in statuses:
        labels.add(RELEASED)
        if not statuses & set(_IN_EFFECT):
            labels.discard(CONTAINED)
    return sorted(labels, key=lambda x: MANAGED_LABELS.index(x))


def defender_action(status: IncidentStatus, action_statuses: Iterable[str | None]) -> str | None:
    """The Defender alert action for the incident's state, or None (leave the alert Active)."""
    if not status.is_open:
        return RESOLVE
    statuses = {s for s in action_statuses if s}
    if status != IncidentStatus.OPEN or statuses & {*_IN_EFFECT, *_HELD, "released"}:
        return IN_PROGRESS
    return None


def defender_action_needed(current_status: Any, action: str) -> bool:
    """Whether posting ``action`` changes the alert: never after a person dismissed or resolved it."""
    current = str(current_status or "").strip().lower()
    if current in ("dismissed", "resolved"):
        return False
    return current != STATUS_AFTER[action].lower()
