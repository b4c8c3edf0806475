"""ContainmentActions rows: one per (incident, planned action), keyed by the action's deterministic id.

A row is the action's current state plus what release needs (each NIC's
previous NSG, whether *we* disabled the account). Its history is the
incident's timeline. Pure helpers only; the service reads and writes rows
through ``EvidenceStore.put_record`` under their ETag.
"""

from __future__ import annotations

from collections.abc import Iterable
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


def new_record(incident_id: str, action: ContainmentAction, epoch: int, now: datetime) -> dict[str, Any]:
    """A fresh row for an action about to be evaluated."""
    stamp = isoformat(now)
    return {
        "incidentId": incident_id,
        "actionId": action.action_id,
        "kind": action.kind.value,
        "target": action.target,
        "targetDisplay": action.target_display,
        "action": action.wire(),
        "status": None,
        "epoch": epoch,
        "createdAt": stamp,
        "updatedAt": stamp,
        "cycle": 1,
        "verdict": None,
        "nics": {},
        "account": {},
        "approval": None,
        "failure": None,
        "release": None,
        "notes": [],
    }


def start_new_cycle(record: dict[str, Any], epoch: int, now: datetime) -> dict[str, Any]:
    """Re-arm a row for a new epoch. NICs / accounts changed (or possibly changed) by us and not yet
    restored are kept, so a later release still puts them back."""
    released = record.get("status") == ActionStatus.RELEASED
    out = dict(record)
    out.update(
        epoch=epoch,
        cycle=int(record.get("cycle", 1)) + 1,
        status=None,
        verdict=None,
        failure=None,
        updatedAt=isoformat(now),
        notes=[],
        preview=None,
    )
    if released:
        out.update(nics={}, account={}, release=None)
    else:
        out["nics"] = {k: v for k, v in (record.get("nics") or {}).items() if nic_changed(v)}
        account = record.get("account") or {}
        out["account"] = account if account_changed(record) else {}
    return out


def nic_changed(entry: dict[str, Any]) -> bool:
    """The NIC was (or may have been) quarantined by us and is not restored yet. ``pending``: an attempt
    was about to write it and never recorded the outcome (crash, then retries ran out) — release checks
    the live NIC before writing, so counting it is safe."""
    return bool((entry.get("changedByUs") or entry.get("state") == "pending") and not entry.get("restored"))


def account_changed(record: dict[str, Any]) -> bool:
    """The account was (or may have been) disabled by us and is not restored yet: ``disabledByUs``, or a
    disable under way whose outcome was never recorded (``disablePending``, or — rows written before that
    marker — a row still ``in-progress`` whose account was enabled before) — release reads the live account before enabling it."""
    account = record.get("account") or {}
    if account.get("restored"):
        return False
    if account.get("disabledByUs"):
        return True
    if "disablePending" in account:  # False: this attempt saw the PATCH refused
        return bool(account["disablePending"])
    return record.get("status") == ActionStatus.IN_PROGRESS and account.get("enabledBefore") is True


def changed_by_us(record: dict[str, Any]) -> bool:
    """Whether this row holds a change the app made (or may have made) and has not restored."""
    return any(nic_changed(n) for n in (record.get("nics") or {}).values()) or account_changed(record)


def in_progress_since(record: dict[str, Any]) -> datetime | None:
    """When an ``in-progress`` row was last written (None if it is not in progress or has no stamp)."""
    if record.get("status") != ActionStatus.IN_PROGRESS or not record.get("updatedAt"):
        return None
    return datetime.fromisoformat(str(record["updatedAt"]).replace("Z", "+00:00"))


def result_text(record: dict[str, Any]) -> str:
    """One sentence for people (emails, the incident view): what happened to this action."""
    status = record.get("status")
    who = record.get("targetDisplay") or record.get("target")
    kind = record.get("kind")
    verdict = record.get("verdict") or {}
    failure = record.get("failure") or {}
    nics = list((record.get("nics") or {}).values())
    if status == ActionStatus.CONTAINED:
        if kind == ActionKind.ISOLATE_VM:
            changed = sum(1 for n in nics if n.get("changedByUs"))
            return f"{who} isolated: quarantine NSG attached to {changed} of {len(nics)} NIC(s)"
        if kind == ActionKind.DISABLE_USER:
            return f"account {who} disabled and its sign-in sessions revoked"
        return f"service principal {who} disabled"
    if status == ActionStatus.ALREADY_CONTAINED:
        return f"{who} was already contained: nothing changed"
    if status == ActionStatus.HELD:
        return f"{who}: held for approval ({verdict.get('reason', 'approval required')})"
    if status == ActionStatus.APPROVED:
        return f"{who}: approved, being executed"
    if status == ActionStatus.REJECTED:
        return f"{who}: rejected by {((record.get('approval') or {}).get('actor')) or 'an analyst'}; not executed"
    if status == ActionStatus.DRY_RUN:
        return f"{who}: dry-run, nothing changed ({verdict.get('reason', '')})".rstrip(" ()")
    if status == ActionStatus.SKIPPED:
        return f"{who}: not touched ({verdict.get('reason', 'guardrail')})"
    if status == ActionStatus.PARTNER_ACTION:
        return f"{who}: no action by the app; findings sent to the partner"
    if status == ActionStatus.FAILED:
        partial = " (partly applied: see the NIC list)" if changed_by_us(record) else ""
        return f"{who}: FAILED, escalated to people: {failure.get('reason', 'unknown error')}{partial}"
    if status == ActionStatus.RELEASED:
        return f"{who}: released, prior state restored"
    if status == ActionStatus.WITHDRAWN:
        return f"{who}: withdrawn (released before it ran)"
    if status == ActionStatus.IN_PROGRESS:
        return f"{who}: containment in progress"
    return f"{who}: {status or 'pending'}"


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The public view of one action row (API responses, notification emails, orchestration output)."""
    verdict = record.get("verdict") or {}
    out: dict[str, Any] = {
        "actionId": record.get("actionId"),
        "kind": record.get("kind"),
        "target": record.get("target"),
        "targetDisplay": record.get("targetDisplay"),
        "status": record.get("status"),
        "result": result_text(record),
        "guardrail": verdict.get("guardrail"),
        "reason": verdict.get("reason"),
        "risk": verdict.get("risk"),
        "epoch": record.get("epoch"),
        "updatedAt": record.get("updatedAt"),
    }
    if record.get("failure"):
        out["failure"] = record["failure"]
    if record.get("approval"):
        out["approval"] = {k: record["approval"].get(k) for k in ("decision", "actor", "reason", "at")}
    if record.get("release"):
        out["release"] = record["release"]
    nics = record.get("nics") or {}
    if nics:
        out["nics"] = [
            {
                "id": n.get("id", nid),
                **{
                    k: v
                    for k, v in n.items()
                    if k
                    in (
                        "previousNsg",
                        "quarantineNsg",
                        "state",
                        "changedByUs",
                        "restored",
                        "restoreNote",
                        "unexpectedChanges",
                    )
                },
            }
            for nid, n in sorted(nics.items())
        ]
    account = record.get("account") or {}
    if account:
        out["account"] = {
            k: account.get(k)
            for k in ("id", "upn", "enabledBefore", "disabledByUs", "sessionsRevoked", "disablePending", "restored")
            if k in account
        }
    if record.get("preview"):
        out["preview"] = record["preview"]
    return out


def failure_of(record: dict[str, Any]) -> dict[str, Any]:
    """The escalation entry for a failed action (what people must look at, and why)."""
    failure = record.get("failure") or {}
    return {
        "actionId": record.get("actionId"),
        "kind": record.get("kind"),
        "target": record.get("target"),
        "targetDisplay": record.get("targetDisplay"),
        "reason": failure.get("reason"),
        "code": failure.get("code"),
        "status": failure.get("status"),
        "final": True,
        "partiallyApplied": changed_by_us(record),
    }


def by_status(records: Iterable[dict[str, Any]], *statuses: ActionStatus) -> list[dict[str, Any]]:
    wanted = {s.value for s in statuses}
    return [r for r in records if r.get("status") in wanted]
