"""ContainmentActions rows as typed records: one per (incident, planned action), keyed by the action's id.

A row is the action's current state plus what release needs (each NIC's previous NSG, whether *we*
disabled the account); its history is the incident's timeline. Rows are parsed into these records when
read and serialised back to exactly the JSON they were stored as (``from_row`` / ``to_row``): existing
tables keep reading, and a key that was absent stays absent. ``NicEntry`` and ``AccountState`` are
frozen: a use case replaces them with the next state (``quarantined``, ``disabled``, ...), it never
edits them where they lie. Reading and writing rows is ``ledger.py``'s job.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

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

# What a NIC entry says about its NIC.
NIC_PENDING = "pending"  # about to be written (saved before the PUT): the live NIC decides what happened
NIC_QUARANTINED = "quarantined"  # the app attached the quarantine NSG
NIC_ALREADY_QUARANTINED = "already-quarantined"  # it had the quarantine NSG before this action
NIC_NOT_CHANGED = "not-changed"  # read by the attempt, and its write was refused


def _put(out: dict[str, Any], key: str, value: Any) -> None:
    """Stored only when set: these keys were absent from the row until the step that sets them."""
    if value is not None:
        out[key] = value


@dataclass(frozen=True)
class NicEntry:
    """One NIC of a VM isolation: its NSG before containment, and what the app did to it."""

    id: str
    location: str | None
    previous_nsg: str | None
    quarantine_nsg: str | None
    state: str
    changed_by_us: bool = False
    at: str | None = None
    unexpected_changes: list[str] | None = None
    restored: bool | None = None
    restore_note: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any], key: str = "") -> NicEntry:
        return cls(
            id=row.get("id") or key,
            location=row.get("location"),
            previous_nsg=row.get("previousNsg"),
            quarantine_nsg=row.get("quarantineNsg"),
            state=row.get("state") or "",
            changed_by_us=bool(row.get("changedByUs")),
            at=row.get("at"),
            unexpected_changes=row.get("unexpectedChanges"),
            restored=row.get("restored"),
            restore_note=row.get("restoreNote"),
        )

    def to_row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "location": self.location,
            "previousNsg": self.previous_nsg,
            "quarantineNsg": self.quarantine_nsg,
            "state": self.state,
            "changedByUs": self.changed_by_us,
        }
        _put(out, "at", self.at)
        _put(out, "unexpectedChanges", self.unexpected_changes)
        _put(out, "restored", self.restored)
        _put(out, "restoreNote", self.restore_note)
        return out

    @property
    def changed(self) -> bool:
        """Quarantined (or possibly quarantined) by us and not restored yet. ``pending``: an attempt was
        about to write it and never recorded the outcome (crash, then retries ran out) — release checks
        the live NIC before writing, so counting it is safe."""
        return bool((self.changed_by_us or self.state == NIC_PENDING) and not self.restored)

    def quarantined(self, at: str | None = None, unexpected: list[str] | None = None) -> NicEntry:
        return dataclasses.replace(
            self,
            state=NIC_QUARANTINED,
            changed_by_us=True,
            at=at or self.at,
            unexpected_changes=unexpected or self.unexpected_changes,
        )

    def put_back(self, note: str) -> NicEntry:
        """Restored (or nothing left to restore), with what release found."""
        return dataclasses.replace(self, restored=True, restore_note=note)


@dataclass(frozen=True)
class AccountState:
    """The user or service principal of a lockout: its state before containment, and what the app did.

    ``disable_pending`` is three-valued and stored only when set: True — saved with the write-ahead
    because the PATCH may land and go unrecorded; False — this attempt saw the PATCH refused; None
    (absent) — no disable under way."""

    id: str | None = None
    kind: str | None = None
    upn: str | None = None
    app_id: str | None = None
    display_name: str | None = None
    enabled_before: bool | None = None
    disabled_by_us: bool | None = None
    disable_pending: bool | None = None
    sessions_revoked: bool | None = None
    restored: bool | None = None
    restore_note: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | None) -> AccountState | None:
        if not row:
            return None
        return cls(
            id=row.get("id"),
            kind=row.get("kind"),
            upn=row.get("upn"),
            app_id=row.get("appId"),
            display_name=row.get("displayName"),
            enabled_before=row.get("enabledBefore"),
            disabled_by_us=row.get("disabledByUs"),
            disable_pending=row.get("disablePending"),
            sessions_revoked=row.get("sessionsRevoked"),
            restored=row.get("restored"),
            restore_note=row.get("restoreNote"),
        )

    def to_row(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "upn": self.upn,
            "appId": self.app_id,
            "displayName": self.display_name,
        }
        _put(out, "enabledBefore", self.enabled_before)
        _put(out, "disabledByUs", self.disabled_by_us)
        _put(out, "disablePending", self.disable_pending)
        _put(out, "sessionsRevoked", self.sessions_revoked)
        _put(out, "restored", self.restored)
        _put(out, "restoreNote", self.restore_note)
        return out

    def disabling(self) -> AccountState:
        """Saved with the write-ahead: the PATCH may land and go unrecorded."""
        return dataclasses.replace(self, disable_pending=True)

    def disabled(self) -> AccountState:
        """The app disabled it (recorded, so the marker of a disable under way goes)."""
        return dataclasses.replace(self, disabled_by_us=True, disable_pending=None)

    def refused(self) -> AccountState:
        """Read enabled by this attempt, and the PATCH was refused: nothing to put back."""
        return dataclasses.replace(self, disable_pending=False)

    def revoked(self) -> AccountState:
        return dataclasses.replace(self, sessions_revoked=True)

    def put_back(self, note: str) -> AccountState:
        return dataclasses.replace(self, restored=True, restore_note=note)


@dataclass(frozen=True)
class Approval:
    """An analyst's decision on a held action (``approval_id`` names the run that executes it)."""

    decision: str | None
    actor: str | None = None
    reason: str | None = None
    at: str | None = None
    approval_id: str | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | None) -> Approval | None:
        if not row:
            return None
        return cls(row.get("decision"), row.get("actor"), row.get("reason"), row.get("at"), row.get("approvalId"))

    def to_row(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "actor": self.actor,
            "reason": self.reason,
            "at": self.at,
            "approvalId": self.approval_id,
        }


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
        _put(out, "containedAt", self.contained_at)
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
def start_new_cycle(record: Row, epoch: int, now: datetime) -> dict[str, Any]:
    return as_record(record).next_cycle(epoch, now).to_row()


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
