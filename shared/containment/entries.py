"""The parts of a ContainmentActions row: each NIC's entry, the account's state, the analyst's approval.

Frozen: a use case replaces a part with its next state (``quarantined``, ``disabling``, ``put_back``...)
rather than editing it where it lies. ``from_row`` / ``to_row`` keep exactly the stored JSON: a key
that was absent until some step set it stays absent until then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# What a NIC entry says about its NIC.
NIC_PENDING = "pending"  # about to be written (saved before the PUT): the live NIC decides what happened
NIC_QUARANTINED = "quarantined"  # the app attached the quarantine NSG
NIC_ALREADY_QUARANTINED = "already-quarantined"  # it had the quarantine NSG before this action
NIC_NOT_CHANGED = "not-changed"  # read by the attempt, and its write was refused


def put_if_set(out: dict[str, Any], key: str, value: Any) -> None:
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
        put_if_set(out, "at", self.at)
        put_if_set(out, "unexpectedChanges", self.unexpected_changes)
        put_if_set(out, "restored", self.restored)
        put_if_set(out, "restoreNote", self.restore_note)
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
        put_if_set(out, "enabledBefore", self.enabled_before)
        put_if_set(out, "disabledByUs", self.disabled_by_us)
        put_if_set(out, "disablePending", self.disable_pending)
        put_if_set(out, "sessionsRevoked", self.sessions_revoked)
        put_if_set(out, "restored", self.restored)
        put_if_set(out, "restoreNote", self.restore_note)
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
