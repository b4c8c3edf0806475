"""Put back exactly what one action changed: each NIC's previous NSG, the account's ``accountEnabled``.

Only what the row says *we* changed (or may have changed) is touched, and the live state decides: a
NIC someone moved to another NSG since containment keeps their NSG (people are told), an account
already enabled again is left alone. What was put back is recorded as it goes (``restored``), so a
failed release retried later finishes the rest instead of repeating it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.containment.ledger import CONTENTION_TRIES, Ledger
from shared.containment.names import IN_PROGRESS_STUCK_AFTER
from shared.containment.outcome import analyst_event, short
from shared.containment.ports import Directories, Directory, NetworkIsolation, describe, same_id
from shared.containment.records import ActionRecord, ActionStatus
from shared.containment.tenancy import partner_directory
from shared.errors import (
    AdapterError,
    ConcurrencyError,
    ConcurrentEditError,
    ConflictError,
    TargetNotFoundError,
    TransientError,
)
from shared.evidence import EventDraft
from shared.models import Incident, Phase, isoformat
from shared.partners import PartnerRegistry
from shared.response_plan import ActionKind
from shared.store import EvidenceStore

# 412s on one NIC before the release attempt gives up (the operator retries; what is restored stays).
NIC_WRITE_TRIES = 4

STILL_RUNNING = "containment of this incident is still running; retry once it has finished"


def is_stuck(record: ActionRecord, now: datetime, checked_at: datetime | None) -> bool:
    """An ``in-progress`` row no run will finish: last written before the durable host reported no live
    run (``checked_at``), or longer ago than every retry could take (``IN_PROGRESS_STUCK_AFTER``)."""
    since = record.in_progress_since()
    if since is None:
        return False
    return now - since > IN_PROGRESS_STUCK_AFTER or (checked_at is not None and since <= checked_at)


class Restorer:
    """Restores one action's prior state and records the outcome on its row and the timeline."""

    def __init__(
        self,
        store: EvidenceStore,
        ledger: Ledger,
        network: NetworkIsolation,
        directories: Directories,
        partners: PartnerRegistry,
        clock: Callable[[], datetime],
    ):
        self.store, self.ledger, self.network, self.clock = store, ledger, network, clock
        self.directories, self.partners = directories, partners

    def restore(
        self, incident: Incident, action_id: str, actor: str, reason: str, checked_at: datetime | None = None
    ) -> tuple[ActionRecord | None, dict[str, Any] | None]:
        """(released record or None, failure entry or None). A held or approved row keeps its status (the
        caller withdraws it next)."""
        for _ in range(CONTENTION_TRIES):
            got = self.ledger.read(incident.id, action_id)
            if got is None:
                return None, None
            record, etag = got.value, got.etag
            now = self.clock()
            stuck = record.status == ActionStatus.IN_PROGRESS
            if stuck and not is_stuck(record, now, checked_at):
                raise ConflictError(STILL_RUNNING)
            if not record.changed_by_us:
                return None, None  # a concurrent release finished it
            if stuck and not record.failure:
                record.failure = {
                    "reason": "the containment run stopped without recording an outcome; treated "
                    "as failed and released",
                    "code": "RunStopped",
                    "final": True,
                    "at": isoformat(now),
                    "partiallyApplied": True,
                }
            drafts: list[EventDraft] = []
            notes: list[str] = []
            failure = None
            try:
                if record.kind == ActionKind.ISOLATE_VM:
                    self._restore_nics(record, actor, drafts, notes)
                else:
                    # Issue 11: put back in the directory it was changed in (the partner's tenant).
                    directory = partner_directory(self.directories, self.partners, incident)[0]
                    self._restore_account(directory, record, actor, drafts, notes)
            except AdapterError as exc:
                # What was put back so far stays recorded (restored flags), so a retry finishes the rest.
                failure = {
                    "actionId": record.action_id,
                    "kind": record.kind,
                    "target": record.target,
                    "targetDisplay": record.target_display,
                    "reason": exc.reason,
                    "code": exc.code,
                    "status": exc.status,
                }
                record.release = {
                    "state": "failed",
                    "actor": actor,
                    "reason": reason,
                    "at": isoformat(now),
                    "error": describe(exc),
                }
                row = record.to_row()
                drafts.append(
                    analyst_event(
                        actor,
                        "containment.release-failed",
                        Phase.RECOVER,
                        now,
                        f"Release of {record.target_display} FAILED: {exc.reason} (retry is safe)",
                        {
                            "actionId": record.action_id,
                            "error": describe(exc),
                            "nics": row["nics"],
                            "account": row["account"],
                        },
                    )
                )
            else:
                if record.status not in (ActionStatus.HELD, ActionStatus.APPROVED):
                    record.status = ActionStatus.RELEASED
                record.release = {
                    "state": "released",
                    "actor": actor,
                    "reason": reason,
                    "at": isoformat(now),
                    "notes": notes,
                }
                row = record.to_row()
                drafts.append(
                    analyst_event(
                        actor,
                        "containment.released",
                        Phase.RECOVER,
                        now,
                        f"{record.kind} {record.target_display}: released, prior state restored",
                        {"actionId": record.action_id, "notes": notes, "nics": row["nics"], "account": row["account"]},
                    )
                )
            self.store.append_events(incident.id, drafts)
            try:
                self.ledger.save(incident.id, record, etag, at=now)
            except ConcurrencyError:
                if failure is None:
                    continue  # someone else changed the row: look again (what is restored stays restored)
            return (None, failure) if failure else (record, None)
        raise ConflictError("the action is changing; retry")

    def _restore_nics(self, record: ActionRecord, actor: str, drafts: list[EventDraft], notes: list[str]) -> None:
        for key, entry in list(record.nics.items()):
            if not entry.changed:  # includes "pending": the live NIC below decides
                continue
            name = entry.id.rsplit("/", 1)[-1]
            try:
                nic = self.network.get_nic(entry.id)
            except TargetNotFoundError:
                record.nics[key] = entry.put_back("the NIC no longer exists")
                notes.append(f"NIC {name}: no longer exists")
                continue
            for _ in range(NIC_WRITE_TRIES):
                if same_id(nic.nsg_id, entry.previous_nsg):
                    entry = entry.put_back("already back on its previous NSG")
                    break
                if not same_id(nic.nsg_id, entry.quarantine_nsg):
                    # Someone changed it since we quarantined it: their change wins, and people are told.
                    entry = entry.put_back(
                        f"NSG changed by someone else since containment (now {short(nic.nsg_id)}): left as is"
                    )
                    break
                try:
                    after = self.network.set_nic_nsg(nic, entry.previous_nsg)
                except ConcurrentEditError:
                    nic = self.network.get_nic(entry.id)
                    continue
                entry = entry.put_back(
                    "previous NSG restored" if entry.previous_nsg else "no NSG, as before containment"
                )
                drafts.append(
                    analyst_event(
                        actor,
                        "containment.nic-restored",
                        Phase.RECOVER,
                        self.clock(),
                        f"NIC {name}: NSG {short(nic.nsg_id)} → {short(entry.previous_nsg)}",
                        {
                            "actionId": record.action_id,
                            "nic": entry.id,
                            "before": {"networkSecurityGroup": nic.nsg_id, "etag": nic.etag},
                            "after": {"networkSecurityGroup": after.nsg_id, "etag": after.etag},
                        },
                    )
                )
                break
            else:
                raise TransientError(f"NIC {name} kept changing while being released")
            record.nics[key] = entry
            notes.append(f"NIC {name}: {entry.restore_note}")

    def _restore_account(
        self, directory: Directory, record: ActionRecord, actor: str, drafts: list[EventDraft], notes: list[str]
    ) -> None:
        state = record.account
        if state is None or not record.account_changed or not state.id:  # includes a disable never recorded
            return
        is_user = record.kind == ActionKind.DISABLE_USER
        try:
            current = directory.get_user(state.id) if is_user else directory.get_service_principal(object_id=state.id)
        except TargetNotFoundError:
            record.account = state.put_back("the account no longer exists")
            notes.append("account no longer exists")
            return
        if current.enabled:
            state = state.put_back("already enabled again")
        else:
            if is_user:
                directory.set_user_enabled(current.id, True)
            else:
                directory.set_service_principal_enabled(current.id, True)
            state = state.put_back("re-enabled")
            drafts.append(
                analyst_event(
                    actor,
                    "containment.account-enabled",
                    Phase.RECOVER,
                    self.clock(),
                    f"{'Account' if is_user else 'Service principal'} "
                    f"{state.upn or state.display_name or state.id} re-enabled",
                    {
                        "actionId": record.action_id,
                        "account": state.id,
                        "before": {"accountEnabled": False},
                        "after": {"accountEnabled": True},
                    },
                )
            )
        record.account = state
        notes.append(
            f"{'account' if is_user else 'service principal'}: {state.restore_note}"
            + ("; revoked sessions stay revoked (the user signs in again)" if is_user else "")
        )
