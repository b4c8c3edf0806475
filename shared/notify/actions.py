"""Containment actions as messages show them: one line per action, with its result in the SOC's words.

Tolerant of shape: the lines come from ContainmentActions rows (``shared.containment.records.summary``)
and from the runbook's failure list, whatever fields a version of either carried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ActionState(StrEnum):
    DONE = "done"
    ALREADY = "already in place"
    HELD = "held for approval"
    PLANNED = "planned (dry-run: nothing changed)"
    FAILED = "failed"
    SKIPPED = "skipped"
    PARTNER = "no action by us: the partner acts"
    RELEASED = "released"
    PENDING = "in progress"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn (released before it ran)"


_STATE_WORDS: tuple[tuple[ActionState, tuple[str, ...]], ...] = (
    (ActionState.FAILED, ("fail", "error")),
    (ActionState.REJECTED, ("reject", "blocked")),
    (ActionState.WITHDRAWN, ("withdrawn",)),
    (ActionState.PENDING, ("progress", "approved", "pending", "running")),
    (ActionState.RELEASED, ("releas", "restor")),
    (ActionState.ALREADY, ("already", "unchanged", "noop", "no-op")),
    (ActionState.HELD, ("held", "hold", "approval", "awaiting")),
    (ActionState.PLANNED, ("plan", "dry")),
    (ActionState.SKIPPED, ("skip", "protected", "never")),
    (ActionState.PARTNER, ("none", "partner", "finding")),
    (
        ActionState.DONE,
        ("done", "execut", "contain", "success", "succeed", "applied", "complete", "isolat", "disabled", "ok"),
    ),
)


@dataclass(frozen=True)
class ActionLine:
    """One containment action as the partner reads it."""

    kind: str
    target: str
    state: ActionState
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.state == ActionState.FAILED

    @property
    def held(self) -> bool:
        return self.state == ActionState.HELD

    @property
    def isolates_vm(self) -> bool:
        return "isolate" in self.kind or "vm" in self.kind.lower()

    def wire(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.target, "state": self.state.value, "detail": self.detail}


def _state_of(*words: Any) -> ActionState:
    for word in words:
        if not isinstance(word, str) or not word:
            continue
        w = word.lower()
        for state, stems in _STATE_WORDS:
            if any(s in w for s in stems):
                return state
    return ActionState.PENDING


def action_lines(records: Iterable[dict], failures: Iterable[Any] = ()) -> list[ActionLine]:
    """Containment actions (ContainmentActions rows and the runbook's failure list) as message lines.

    Tolerant of shape: a row may carry the planned action nested under
    ``action`` and its outcome under ``status``/``outcome``/``result``.
    Failures not already represented by a row are appended.
    """
    lines: list[ActionLine] = []
    seen: dict[str, int] = {}
    for r in records or ():
        if not isinstance(r, dict):
            continue
        action = r.get("action")
        planned: dict[str, Any] = action if isinstance(action, dict) else {}
        kind = str(r.get("kind") or planned.get("kind") or "action")
        target = str(
            r.get("targetDisplay") or planned.get("targetDisplay") or r.get("target") or planned.get("target") or ""
        )
        status = r.get("status") or r.get("outcome") or r.get("state")
        result = r.get("result")
        detail = (
            r.get("error")
            or r.get("failureReason")
            or (result if isinstance(result, str) else "")
            or r.get("detail")
            or r.get("summary")
            or r.get("reason")
            or planned.get("reason")
            or ""
        )
        # The status word decides; the decision of the plan only when no outcome is recorded yet.
        state = _state_of(status) if status else _state_of(r.get("decision"), planned.get("decision"))
        if r.get("error") and state not in (ActionState.FAILED, ActionState.REJECTED):
            state = ActionState.FAILED
        key = str(r.get("actionId") or planned.get("actionId") or f"{kind}:{target}")
        seen[key] = len(lines)
        lines.append(ActionLine(kind, target, state, str(detail or "")))
    for f in failures or ():
        if isinstance(f, dict):
            key = str(f.get("actionId") or f"{f.get('kind')}:{f.get('targetDisplay') or f.get('target')}")
            reason = str(f.get("error") or f.get("reason") or f.get("message") or "failed")
            if key in seen:
                i = seen[key]
                if not lines[i].failed:
                    lines[i] = ActionLine(lines[i].kind, lines[i].target, ActionState.FAILED, reason)
                continue
            lines.append(
                ActionLine(
                    str(f.get("kind") or "action"),
                    str(f.get("targetDisplay") or f.get("target") or ""),
                    ActionState.FAILED,
                    reason,
                )
            )
        elif f:
            lines.append(ActionLine("action", "", ActionState.FAILED, str(f)))
    return lines
