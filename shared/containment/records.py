"""ContainmentActions rows as typed records: one per (incident, planned action), keyed by the action's id.

A row is the action's current state plus what release needs (each NIC's previous NSG, whether *we*
disabled the account: the frozen parts in ``entries.py``); its history is the incident's timeline.
Rows are parsed into ``ActionRecord`` when read and serialised back to exactly the JSON they were
stored as (``from_row`` / ``to_row``): existing tables keep reading, and a key that was absent stays
absent. Reading and writing rows is ``ledger.py``'s job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from shared.containment.entries import AccountState, Approval, NicEntry, put_if_set
from shared.models import isoformat
from shared.response_plan import ActionKind, ContainmentAction

TABLE = "ContainmentActions"


class ActionStatus(StrEnum):
    DRY_RUN = "dry-run"  # plan recorded, nothing changed
    HELD = "held"  # waiting for POST /approve
    APPROVED = "approved"  # approved; execution scheduled
    REJECTED = "rejected"  # an analyst said no: never executed for this incident
    IN_PROGRESS = "in-progress"  # writes under way (before-state already recorded)
    CONTAINED = "contained"  # done by the app
    ALREADY_CONTAINED = "already-contained"  # nothing to change: already quarantined / disabled
    SKIPPED = "skipped"  # a guardrail forbids it (protected identity, soc-isolation=never)
    PARTNER_ACTION = "partner-action"  # firewall / network device: findings for the partner
    FAILED = "failed"  # final failure, escalated to people
    RELEASED = "released"  # prior state restored
    WITHDRAWN = "withdrawn"  # held or approved, then released before it ran


# States an execution of the same epoch leaves alone (idempotency).
SETTLED = frozenset(
    {
        ActionStatus.DRY_RUN,
        ActionStatus.HELD,
        ActionStatus.APPROVED,
        ActionStatus.REJECTED,
        ActionStatus.CONTAINED,
        ActionStatus.ALREADY_CONTAINED,
        ActionStatus.SKIPPED,
        ActionStatus.PARTNER_ACTION,
        ActionStatus.FAILED,
        ActionStatus.RELEASED,
        ActionStatus.WITHDRAWN,
    }
)
# States a later epoch (the incident raised to P1 again) keeps rather than re-running.
STICKY = frozenset(
    {
        ActionStatus.HELD,
        ActionStatus.APPROVED,
        ActionStatus.REJECTED,
        ActionStatus.CONTAINED,
        ActionStatus.ALREADY_CONTAINED,
    }
)
IN_EFFECT = frozenset({ActionStatus.CONTAINED, ActionStatus.ALREADY_CONTAINED})

_KNOWN = frozenset(
    [
        "incidentId",
        "actionId",
        "kind",
        "target",
        "targetDisplay",
        "action",
        "status",
        "epoch",
        "createdAt",
        "updatedAt",
        "cycle",
        "verdict",
        "nics",
        "account",
        "approval",
        "failure",
        "release",
        "notes",
        "preview",
        "containedAt",
    ]
)


@dataclass
class ActionRecord:
    """One ContainmentActions row. ``verdict``, ``failure`` and ``release`` are the evidence-shaped
    documents written whole at each step (never edited in place); ``preview`` is what dry-run would do."""

    incident_id: str | None
    action_id: str
    kind: str | None
    target: str | None
    target_display: str | None
    action: dict[str, Any] | None
    status: ActionStatus | None
    epoch: int
    created_at: str | None
    updated_at: str | None
    cycle: int = 1
    verdict: dict[str, Any] | None = None
    nics: dict[str, NicEntry] = field(default_factory=dict)
    account: AccountState | None = None
    approval: Approval | None = None
    failure: dict[str, Any] | None = None
    release: dict[str, Any] | None = None
    notes: list[Any] = field(default_factory=list)
    preview: dict[str, Any] | None = None
    contained_at: str | None = None  # when it took effect (stored from the first time it did)
    preview_stored: bool = False  # rows that never had a preview have no "preview" key
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know, kept as read

    # -- JSON ------------------------------------------------------------------------------------
    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ActionRecord:
        status = row.get("status")
        return cls(
            incident_id=row.get("incidentId"),
            action_id=row.get("actionId") or "",
            kind=row.get("kind"),
            target=row.get("target"),
            target_display=row.get("targetDisplay"),
            action=row.get("action"),
            status=ActionStatus(status) if status else None,
            epoch=int(row.get("epoch") or 1),
            created_at=row.get("createdAt"),
            updated_at=row.get("updatedAt"),
            cycle=int(row.get("cycle", 1)),
            verdict=row.get("verdict"),
            nics={k: NicEntry.from_row(v, k) for k, v in (row.get("nics") or {}).items()},
            account=AccountState.from_row(row.get("account")),
            approval=Approval.from_row(row.get("approval")),
            failure=row.get("failure"),
            release=row.get("release"),
            notes=list(row.get("notes") or []),
            preview=row.get("preview"),
            contained_at=row.get("containedAt"),
            preview_stored="preview" in row,
            extra={k: v for k, v in row.items() if k not in _KNOWN},
        )

    def to_row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "incidentId": self.incident_id,
            "actionId": self.action_id,
            "kind": self.kind,
            "target": self.target,
            "targetDisplay": self.target_display,
            "action": self.action,
            "status": self.status.value if self.status else None,
            "epoch": self.epoch,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "cycle": self.cycle,
            "verdict": self.verdict,
            "nics": {k: v.to_row() for k, v in self.nics.items()},
            "account": self.account.to_row() if self.account else {},
            "approval": self.approval.to_row() if self.approval else None,
            "failure": self.failure,
            "release": self.release,
            "notes": list(self.notes),
        }
        if self.preview_stored or self.preview is not None:
            out["preview"] = self.preview
        put_if_set(out, "containedAt", self.contained_at)
        out.update(self.extra)
        return out

    # -- life cycle ------------------------------------------------------------------------------
    @classmethod
    def new(cls, incident_id: str, action: ContainmentAction, epoch: int, now: datetime) -> ActionRecord:
        """A fresh row for an action about to be evaluated."""
        stamp = isoformat(now)
        return cls(
            incident_id=incident_id,
            action_id=action.action_id,
            kind=action.kind.value,
            target=action.target,
            target_display=action.target_display,
            action=action.wire(),
            status=None,
            epoch=epoch,
            created_at=stamp,
            updated_at=stamp,
        )

    def next_cycle(self, epoch: int, now: datetime) -> ActionRecord:
        """This row re-armed for a new epoch. NICs / accounts changed (or possibly changed) by us and not
        yet restored are kept, so a later release still puts them back."""
        released = self.status == ActionStatus.RELEASED
        return dataclasses.replace(
            self,
            epoch=epoch,
            cycle=self.cycle + 1,
            status=None,
            verdict=None,
            failure=None,
            updated_at=isoformat(now),
            notes=[],
            preview=None,
            preview_stored=True,
            nics={} if released else {k: v for k, v in self.nics.items() if v.changed},
            account=None if released or not self.account_changed else self.account,
            release=None if released else self.release,
        )

    def set_preview(self, preview: dict[str, Any]) -> None:
        self.preview, self.preview_stored = preview, True

    # -- what release needs to know ----------------------------------------------------------------
    @property
    def approved(self) -> bool:
        return self.approval is not None and self.approval.decision == "approve"

    @property
    def account_changed(self) -> bool:
        """The account was (or may have been) disabled by us and is not restored yet: ``disabledByUs``, or a
        disable under way whose outcome was never recorded (``disablePending``, or — rows written before
        that marker — a row still ``in-progress`` whose account was enabled before) — release reads the
        live account before enabling it."""
        account = self.account
        if account is None or account.restored:
            return False
        if account.disabled_by_us:
            return True
        if account.disable_pending is not None:  # False: this attempt saw the PATCH refused
            return account.disable_pending
        return self.status == ActionStatus.IN_PROGRESS and account.enabled_before is True

    @property
    def changed_by_us(self) -> bool:
        """Whether this row holds a change the app made (or may have made) and has not restored."""
        return any(n.changed for n in self.nics.values()) or self.account_changed

    def in_progress_since(self) -> datetime | None:
        """When an ``in-progress`` row was last written (None if it is not in progress or has no stamp)."""
        if self.status != ActionStatus.IN_PROGRESS or not self.updated_at:
            return None
        return datetime.fromisoformat(str(self.updated_at).replace("Z", "+00:00"))


Row = ActionRecord | Mapping[str, Any]


def as_record(row: Row) -> ActionRecord:
    return row if isinstance(row, ActionRecord) else ActionRecord.from_row(row)


# -- the row helpers other packages and tests call with stored rows --------------------------------
def changed_by_us(record: Row) -> bool:
    return as_record(record).changed_by_us


def by_status(records: Iterable[ActionRecord], *statuses: ActionStatus) -> list[ActionRecord]:
    wanted = set(statuses)
    return [r for r in records if r.status in wanted]


# -- what people see ---------------------------------------------------------------------------
def result_text(row: Row) -> str:
    """One sentence for people (emails, the incident view): what happened to this action."""
    record = as_record(row)
    status = record.status
    who = record.target_display or record.target
    verdict = record.verdict or {}
    failure = record.failure or {}
    nics = list(record.nics.values())
    if status == ActionStatus.CONTAINED:
        if record.kind == ActionKind.ISOLATE_VM:
            changed = sum(1 for n in nics if n.changed_by_us)
            return f"{who} isolated: quarantine NSG attached to {changed} of {len(nics)} NIC(s)"
        if record.kind == ActionKind.DISABLE_USER:
            return f"account {who} disabled and its sign-in sessions revoked"
        return f"service principal {who} disabled"
    if status == ActionStatus.ALREADY_CONTAINED:
        return f"{who} was already contained: nothing changed"
    if status == ActionStatus.HELD:
        return f"{who}: held for approval ({verdict.get('reason', 'approval required')})"
    if status == ActionStatus.APPROVED:
        return f"{who}: approved, being executed"
    if status == ActionStatus.REJECTED:
        return (
            f"{who}: rejected by {(record.approval.actor if record.approval else None) or 'an analyst'}; not executed"
        )
    if status == ActionStatus.DRY_RUN:
        return f"{who}: dry-run, nothing changed ({verdict.get('reason', '')})".rstrip(" ()")
    if status == ActionStatus.SKIPPED:
        return f"{who}: not touched ({verdict.get('reason', 'guardrail')})"
    if status == ActionStatus.PARTNER_ACTION:
        return f"{who}: no action by the app; findings sent to the partner"
    if status == ActionStatus.FAILED:
        partial = " (partly applied: see the NIC list)" if record.changed_by_us else ""
        return f"{who}: FAILED, escalated to people: {failure.get('reason', 'unknown error')}{partial}"
    if status == ActionStatus.RELEASED:
        return f"{who}: released, prior state restored"
    if status == ActionStatus.WITHDRAWN:
        return f"{who}: withdrawn (released before it ran)"
    if status == ActionStatus.IN_PROGRESS:
        return f"{who}: containment in progress"
    return f"{who}: {status.value if status else 'pending'}"


_NIC_PUBLIC = ("previousNsg", "quarantineNsg", "state", "changedByUs", "restored", "restoreNote", "unexpectedChanges")
_ACCOUNT_PUBLIC = ("id", "upn", "enabledBefore", "disabledByUs", "sessionsRevoked", "disablePending", "restored")


def summary(row: Row) -> dict[str, Any]:
    """The public view of one action row (API responses, notification emails, orchestration output)."""
    record = as_record(row)
    verdict = record.verdict or {}
    out: dict[str, Any] = {
        "actionId": record.action_id,
        "kind": record.kind,
        "target": record.target,
        "targetDisplay": record.target_display,
        "status": record.status.value if record.status else None,
        "result": result_text(record),
        "guardrail": verdict.get("guardrail"),
        "reason": verdict.get("reason"),
        "risk": verdict.get("risk"),
        "epoch": record.epoch,
        "updatedAt": record.updated_at,
    }
    if record.failure:
        out["failure"] = record.failure
    if record.approval:
        approval = record.approval.to_row()
        out["approval"] = {k: approval[k] for k in ("decision", "actor", "reason", "at")}
    if record.release:
        out["release"] = record.release
    if record.nics:
        out["nics"] = []
        for _, entry in sorted(record.nics.items()):
            stored = entry.to_row()
            out["nics"].append({"id": entry.id, **{k: v for k, v in stored.items() if k in _NIC_PUBLIC}})
    if record.account:
        stored = record.account.to_row()
        out["account"] = {k: stored[k] for k in _ACCOUNT_PUBLIC if k in stored}
    if record.preview:
        out["preview"] = record.preview
    return out
