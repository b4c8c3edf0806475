"""Isolate a VM: attach its region's quarantine NSG to every NIC, changing nothing else (docs/spec/containment.md).

The NICs are the VM's own (read by id). Before the first PUT each NIC's previous NSG is saved with the
row ``in-progress`` (state ``pending``), so an attempt that dies after a PUT is finished by the next
one — which finds the quarantine NSG already attached and records it as ours — and release always
knows what to put back. A NIC that changed between read and write (412) is read again and decided
again on the fresh state: someone else's change is never overwritten.

Ownership (issue 11): the VM's subscription must be one of the incident partner's ``subscriptionIds``;
otherwise the action is held (``target not owned by partner``) before anything of that VM is read, and
once approved it follows the owner's response mode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from typing import Any

from shared.containment.breaker import BlastRadiusBreaker
from shared.containment.entries import NIC_ALREADY_QUARANTINED, NIC_NOT_CHANGED, NIC_PENDING, NicEntry
from shared.containment.guardrails import Facts, Outcome, evaluate, isolation_tag, vm_not_owned
from shared.containment.outcome import FINAL, ActionRun, Outcomes, breaker_verdict, short
from shared.containment.ports import NetworkIsolation, NicState, QuarantineNsg, VmState, parse_resource_id, same_id
from shared.errors import AdapterError, ConcurrentEditError, RequestRejectedError, TransientError
from shared.evidence import EventDraft
from shared.models import isoformat
from shared.partners import PartnerRegistry
from shared.response_plan import effective_mode
from shared.settings import Settings

# 412s on one NIC before the attempt gives up (and the orchestration retries it later).
NIC_WRITE_TRIES = 4
# NICs of one VM changed at once (Azure allows at most a few NICs per VM size; 8 covers the large ones).
NIC_PARALLELISM = 8


def _outcome(future: Future) -> Any:
    """A NIC's result, or the exception it raised (every NIC is waited for before any is recorded)."""
    try:
        return future.result()
    except Exception as exc:
        return exc


class VmIsolation:
    """The ``isolate-vm`` action."""

    def __init__(
        self,
        network: NetworkIsolation,
        breaker: BlastRadiusBreaker,
        outcomes: Outcomes,
        clock: Callable[[], datetime],
        partners: PartnerRegistry,
        settings: Settings,
    ):
        self.network, self.breaker, self.outcomes, self.clock = network, breaker, outcomes, clock
        self.partners, self.settings = partners, settings

    def _ownership(self, run: ActionRun) -> tuple[str | None, bool, dict[str, Any]]:
        """(why the VM is not the incident partner's or None, its owner runs in dry-run, the facts)."""
        try:
            subscription = parse_resource_id(run.action.target)["subscription"].lower()
        except ValueError:
            subscription = ""
        partner = self.partners.get(run.incident.partner_id)
        owner = self.partners.owner_of_subscription(subscription)
        not_owned = vm_not_owned(partner, owner, subscription)
        owner_dry = bool(not_owned and owner is not None and effective_mode(owner, self.settings) == "dry-run")
        facts = {
            "partner": partner.id if partner else None,
            "subscription": subscription,
            "owner": owner.id if owner else None,
            "owned": not_owned is None,
        }
        return not_owned, owner_dry, facts

    def run(self, run: ActionRun) -> dict[str, Any]:
        out = self.outcomes
        not_owned, owner_dry, ownership = self._ownership(run)
        if not_owned and not run.approved:
            # Held before any read: the app does not even look at another partner's VM unasked.
            verdict = evaluate(Facts(kind=run.action.kind, planned=run.action.decision, not_owned=not_owned))
            return out.settle(run, verdict, {"vm": {"id": run.action.target}, "ownership": ownership})
        vm, settled = out.read_target(run, lambda: self.network.get_vm(run.action.target), "the VM")
        if vm is None:
            assert settled is not None
            return settled
        verdict = evaluate(
            Facts(
                kind=run.action.kind,
                planned=run.action.decision,
                approved=run.approved,
                isolation_tag=isolation_tag(vm.tags),
                not_owned=not_owned,
                owner_dry_run=owner_dry,
            )
        )
        facts = {
            "vm": {"id": vm.id, "name": vm.name, "location": vm.location, "tags": vm.tags, "nics": list(vm.nic_ids)},
            "ownership": ownership,
        }
        if verdict.outcome == Outcome.DRY_RUN:
            return out.settle(run, verdict, facts, preview=self.preview(vm))
        if verdict.outcome != Outcome.EXECUTE:
            return out.settle(run, verdict, facts)
        if not vm.nic_ids:
            return out.fail(run, RequestRejectedError("the VM has no network interface to isolate"), facts)
        try:
            nics = [self.network.get_nic(nic_id) for nic_id in vm.nic_ids]
        except FINAL as exc:
            return out.fail(run, exc, facts)
        entries = run.record.nics
        pending: list[NicState] = []
        for nic in nics:
            quarantine = self.network.quarantine_nsg_id(parse_resource_id(nic.id)["subscription"], nic.location)
            key = nic.id.lower()
            entry = entries.get(key)
            if same_id(nic.nsg_id, quarantine):
                if entry is None:
                    entries[key] = NicEntry(nic.id, nic.location, nic.nsg_id, quarantine, NIC_ALREADY_QUARANTINED)
                elif entry.state == NIC_PENDING:
                    # A previous attempt changed it and stopped before recording that.
                    entries[key] = entry.quarantined()
                continue
            entries[key] = NicEntry(nic.id, nic.location, nic.nsg_id, quarantine, NIC_PENDING)
            pending.append(nic)
        if not pending:
            if any(e.changed_by_us for e in entries.values()):
                return out.contained(run, verdict, facts)
            return out.already(run, verdict, facts, "every NIC already has the quarantine NSG: nothing changed")
        if not run.approved and not self.breaker.take_slot(run.slot_key, run.slot_before or ()):
            for nic in pending:
                entries.pop(nic.id.lower(), None)
            return out.settle(run, breaker_verdict(), facts)
        out.write_ahead(run, verdict, facts)
        try:
            nsgs: dict[tuple[str, str], QuarantineNsg] = {}
            targets: list[tuple[NicState, str]] = []
            for nic in pending:
                sub = parse_resource_id(nic.id)["subscription"]
                loc_key = (sub.lower(), nic.location.replace(" ", "").lower())
                if loc_key not in nsgs:
                    nsgs[loc_key] = self._ensure_nsg(run, sub, nic.location)
                targets.append((nic, nsgs[loc_key].id))
            self._quarantine_nics(run, targets)
        except FINAL as exc:
            # Still pending: read live by this attempt, and its write was refused.
            run.record.nics = {
                k: dataclasses.replace(e, state=NIC_NOT_CHANGED) if e.state == NIC_PENDING else e
                for k, e in entries.items()
            }
            return out.fail(run, exc, facts)
        return out.contained(run, verdict, facts)

    def _ensure_nsg(self, run: ActionRun, subscription: str, location: str) -> QuarantineNsg:
        nsg = self.network.ensure_quarantine_nsg(subscription, location)
        if nsg.created or nsg.repaired:
            run.drafts.append(
                self.outcomes.draft(
                    run,
                    "containment.quarantine-nsg-" + ("created" if nsg.created else "repaired"),
                    f"Quarantine NSG {nsg.id.rsplit('/', 1)[-1]} "
                    + ("created" if nsg.created else "rules restored to deny-all (they had drifted)"),
                    {"nsg": nsg.id, "location": nsg.location},
                )
            )
        return nsg

    def _quarantine_nics(self, run: ActionRun, targets: list[tuple[NicState, str]]) -> None:
        """Every NIC of the VM at once: each PUT is a long-running ARM operation (seconds), so a VM
        with several NICs waits for the slowest one, not for the sum. The row and the evidence are
        updated here, in NIC order, once all are done — so a NIC that succeeded is recorded even when
        another failed, and the next attempt (or a replay) never changes it again."""
        outcomes: list[tuple[NicEntry, EventDraft] | Exception]
        if len(targets) <= 1:
            outcomes = [self._quarantine_nic(run, nic, nsg_id) for nic, nsg_id in targets]
        else:
            with ThreadPoolExecutor(max_workers=min(len(targets), NIC_PARALLELISM), thread_name_prefix="nic") as pool:
                futures = [pool.submit(self._quarantine_nic, run, nic, nsg_id) for nic, nsg_id in targets]
                outcomes = [_outcome(f) for f in futures]
        error: Exception | None = None
        for (nic, _), outcome in zip(targets, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                error = error if isinstance(error, FINAL) else outcome  # a final failure decides the attempt
                continue
            entry, draft = outcome
            run.record.nics[nic.id.lower()] = entry
            run.drafts.append(draft)
        if error is not None:
            raise error

    def _quarantine_nic(self, run: ActionRun, nic: NicState, nsg_id: str) -> tuple[NicEntry, EventDraft]:
        """One NIC (runs in a thread: reads its own row entry, returns the new one and its evidence)."""
        key = nic.id.lower()
        current = run.record.nics[key]
        after: NicState | None = None
        for _ in range(NIC_WRITE_TRIES):
            try:
                after = self.network.set_nic_nsg(nic, nsg_id)
                break
            except ConcurrentEditError:
                nic = self.network.get_nic(nic.id)  # changed since read: decide again on fresh state
                if same_id(nic.nsg_id, nsg_id):
                    after = nic
                    break
                current = dataclasses.replace(current, previous_nsg=nic.nsg_id)
        if after is None:
            raise TransientError(f"NIC {nic.id.rsplit('/', 1)[-1]} kept changing while being quarantined")
        unexpected = [
            p
            for p in changed_paths(nic.document, after.document)
            if not p.startswith("properties.networkSecurityGroup")
        ]
        entry = current.quarantined(isoformat(self.clock()), unexpected)
        return entry, (
            self.outcomes.draft(
                run,
                "containment.nic-quarantined",
                f"NIC {nic.id.rsplit('/', 1)[-1]}: NSG {short(entry.previous_nsg)} → {short(nsg_id)}",
                {
                    "nic": nic.id,
                    "before": {"networkSecurityGroup": entry.previous_nsg, "etag": nic.etag},
                    "after": {"networkSecurityGroup": after.nsg_id, "etag": after.etag},
                    "otherChanges": unexpected,
                },
            )
        )

    def preview(self, vm: VmState) -> dict[str, Any]:
        """Dry-run: what enforce mode would change (reads only, best effort)."""
        nics: list[dict[str, Any]] = []
        for nic_id in vm.nic_ids:
            try:
                nic = self.network.get_nic(nic_id)
                sub = parse_resource_id(nic.id)["subscription"]
                nics.append(
                    {
                        "id": nic.id,
                        "currentNsg": nic.nsg_id,
                        "quarantineNsg": self.network.quarantine_nsg_id(sub, nic.location),
                    }
                )
            except AdapterError as exc:
                nics.append({"id": nic_id, "error": exc.reason})
        return {"nics": nics}


def changed_paths(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths where two ARM documents differ (ETag and provisioning state ignored; lists of
    named items matched by name). Proves a NIC update changed nothing but its NSG."""
    ignore = {"etag", "provisioningState"}
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for k in sorted(set(before) | set(after)):
            if k in ignore:
                continue
            p = f"{path}.{k}" if path else k
            if k not in before or k not in after:
                out.append(p)
            else:
                out.extend(changed_paths(before[k], after[k], p))
        return out
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [path]
        out = []
        for i, (x, y) in enumerate(zip(before, after, strict=True)):
            name = x.get("name") if isinstance(x, dict) else None
            out.extend(changed_paths(x, y, f"{path}[{name if name is not None else i}]"))
        return out
    return [] if before == after else [path]
