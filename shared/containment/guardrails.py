"""Containment guardrails (docs/spec/containment.md): pure decisions over facts the service gathered.

Nothing here does I/O. The service reads the live facts (VM tags, the
account's UPN and type, the breaker's slots), asks these functions what to
do, and evidences the answer with the guardrail that decided it.

Order of precedence (first match wins), for an action the plan wanted:

1. firewall / network device        → partner action (findings only, never touched)
2. protected identity               → skip (live UPN/id checked too, not only the plan's)
3. VM tagged ``soc-isolation=never`` → skip, even when approved
4. target not owned by the incident's partner (issue 11) → hold unless approved
   (``TARGET_NOT_OWNED``; an incident with no known partner owns nothing)
4b. guest account                   → fail and escalate (its home tenant owns it)
5. VM tagged ``soc-isolation=approval`` (or an unknown value) → hold unless approved
6. response mode ``approve``        → hold unless approved
7. otherwise                        → execute (the blast-radius breaker is checked
                                      right before the first write, see ``breaker_reserve``)

In ``dry-run`` every outcome is wrapped as ``dry-run`` with ``would`` saying
what enforce mode would have done; nothing is changed. An approved action on a target
another partner owns follows that owner's response mode (``owner_dry_run``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.models import IncidentStatus
from shared.partners import Partner
from shared.response_plan import ActionDecision, ActionKind

ISOLATION_TAG = "soc-isolation"
BREAKER_STATE = "containment-breaker"


class Outcome(StrEnum):
    EXECUTE = "execute"
    HOLD = "hold"
    DRY_RUN = "dry-run"
    SKIP = "skip"
    PARTNER_ACTION = "partner-action"
    FAIL = "fail"


class Guardrail(StrEnum):
    """Which rule decided (evidenced with every decision)."""

    RESPONSE_MODE = "response-mode"
    APPROVED = "approved"
    PROTECTED_IDENTITY = "protected-identity"
    ISOLATION_NEVER = "soc-isolation-never"
    ISOLATION_APPROVAL = "soc-isolation-approval"
    GUEST_ACCOUNT = "guest-account"
    PARTNER_ACTION = "network-device"
    BLAST_RADIUS = "blast-radius"
    REJECTED = "rejected"
    NOT_OWNED = "ownership"  # issue 11


#: The reason an action on a target outside the incident's partner is held (docs/spec/tenancy.md, issue 11).
TARGET_NOT_OWNED = "target not owned by partner"


@dataclass(frozen=True)
class Facts:
    """What is known about one action when it is about to run."""

    kind: ActionKind
    planned: ActionDecision
    approved: bool = False
    isolation_tag: str | None = None
    protected: bool = False
    guest: bool = False
    not_owned: str | None = None  # issue 11: why the target is not the incident partner's (None: owned)
    owner_dry_run: bool = False  # issue 11: the target's owner (another partner) runs in dry-run


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    guardrail: Guardrail
    reason: str
    risk: str | None = None
    would: Outcome | None = None  # dry-run: what enforce mode would have done

    def wire(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "guardrail": self.guardrail.value,
            "reason": self.reason,
            "risk": self.risk,
            "would": self.would.value if self.would else None,
        }


def isolation_tag(tags: dict[str, str] | None) -> str | None:
    """The VM's ``soc-isolation`` tag value, normalised (tag names are case-insensitive in Azure)."""
    for name, value in (tags or {}).items():
        if name.strip().lower() == ISOLATION_TAG:
            return (value or "").strip().lower()
    return None


def is_protected(protected: Iterable[str], *identifiers: str | None) -> bool:
    """True if any identifier (UPN, object id, app id, name) is on the protected list (case-insensitive)."""
    listed = {p.strip().lower() for p in protected if p}
    return any(i and i.strip().lower() in listed for i in identifiers)


def evaluate(facts: Facts) -> Verdict:
    """What to do with one action, and which guardrail decided (see the module docstring for the order)."""
    if facts.kind == ActionKind.PARTNER_FINDING or facts.planned == ActionDecision.NONE:
        return Verdict(
            Outcome.PARTNER_ACTION,
            Guardrail.PARTNER_ACTION,
            "network device: no action by the app; the findings go to the partner, who acts",
        )
    verdict = _enforce_verdict(facts)
    if facts.approved and facts.owner_dry_run and verdict.outcome == Outcome.EXECUTE:
        return Verdict(
            Outcome.DRY_RUN,
            Guardrail.NOT_OWNED,
            "approved, but the target's owner is in dry-run (the response mode is the target owner's): nothing changed",
            would=verdict.outcome,
        )
    if facts.planned == ActionDecision.PLAN_ONLY and not facts.approved:
        return Verdict(
            Outcome.DRY_RUN,
            Guardrail.RESPONSE_MODE,
            f"dry-run: nothing changed; enforce mode would {verdict.outcome.value} ({verdict.reason})",
            risk=verdict.risk,
            would=verdict.outcome,
        )
    return verdict


def _enforce_verdict(facts: Facts) -> Verdict:
    tag = facts.isolation_tag
    if facts.planned == ActionDecision.SKIP or facts.protected:
        return Verdict(
            Outcome.SKIP,
            Guardrail.PROTECTED_IDENTITY,
            "protected identity (break-glass / emergency access): never disabled by the app",
        )
    if tag == "never":
        return Verdict(
            Outcome.SKIP,
            Guardrail.ISOLATION_NEVER,
            "VM tagged soc-isolation=never: never isolated by the app",
            risk="the VM stays reachable; the partner must contain it by hand",
        )
    if facts.not_owned and not facts.approved:
        return Verdict(
            Outcome.HOLD,
            Guardrail.NOT_OWNED,
            f"{TARGET_NOT_OWNED}: {facts.not_owned}; held for approval",
            risk="acting on another partner's (or an unknown) estate: an alert naming a target of someone "
            "else must not contain it",
        )
    if facts.guest:
        return Verdict(
            Outcome.FAIL,
            Guardrail.GUEST_ACCOUNT,
            "guest account: its home tenant owns it, so the app does not disable it here; "
            "block it with conditional access or ask its home tenant",
        )
    if tag is not None and not facts.approved:
        shown = "approval" if tag == "approval" else f"{tag!r} (not a known value: treated as approval)"
        return Verdict(
            Outcome.HOLD,
            Guardrail.ISOLATION_APPROVAL,
            f"VM tagged soc-isolation={shown}: held for approval",
            risk="isolating this VM (e.g. the sole domain controller or DNS resolver) may stop "
            "authentication or name resolution for other machines",
        )
    if facts.planned == ActionDecision.HOLD and not facts.approved:
        return Verdict(
            Outcome.HOLD, Guardrail.RESPONSE_MODE, "approve mode: held until POST /api/incidents/{id}/approve"
        )
    if facts.approved:
        return Verdict(Outcome.EXECUTE, Guardrail.APPROVED, "approved by an analyst")
    return Verdict(Outcome.EXECUTE, Guardrail.RESPONSE_MODE, "enforce mode")


# -- ownership (issue 11) ----------------------------------------------------------------------
def vm_not_owned(incident_partner: Partner | None, owner: Partner | None, subscription: str) -> str | None:
    """Why a VM in ``subscription`` is not the incident partner's (None: it is). ``owner``: the partner whose
    ``subscriptionIds`` list that subscription, if any."""
    if incident_partner is None:
        return "the incident has no known partner, so nothing is contained automatically"
    if incident_partner.owns_subscription(subscription):
        return None
    if owner is not None:
        return f"subscription {subscription} belongs to partner {owner.id!r}, not {incident_partner.id!r}"
    return f"subscription {subscription} is not one of partner {incident_partner.id!r}'s subscriptions"


def account_not_owned(incident_partner: Partner | None, tenant: str | None, found: bool) -> str | None:
    """Why an account is not the incident partner's (None: it is): it must be found in that partner's
    tenant (``found``: the partner tenant's Graph answered it; a 404 there means not owned)."""
    if incident_partner is None:
        return "the incident has no known partner, so nothing is contained automatically"
    if found:
        return None
    where = f"tenant {tenant}" if tenant else "the SOC's directory"
    return f"not found in {where}, the directory of partner {incident_partner.id!r}"


# -- blast-radius breaker ------------------------------------------------------------------
def breaker_reserve(
    slots: list[dict[str, str]], key: str, now: datetime, limit: int, window: timedelta
) -> tuple[bool, list[dict[str, str]]]:
    """Try to take one of ``limit`` automatic-containment slots in the sliding ``window``.

    ``slots`` are ``{"key", "at"}`` (ISO 8601 UTC). Returns (allowed, slots to store).
    Slots older than the window are dropped; a key that already holds a slot is
    allowed again (an activity re-run after a crash must not count twice).
    The list never grows beyond ``limit``, so the state row stays small.
    """
    live = [s for s in slots if now - _parse(s["at"]) < window]
    if any(s["key"] == key for s in live):
        return True, live
    if len(live) >= limit:
        return False, live
    return True, live + [{"key": key, "at": now.isoformat()}]


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- incident status ------------------------------------------------------------------------
_HUMAN_OWNED = (IncidentStatus.ACKNOWLEDGED, IncidentStatus.RESOLVED, IncidentStatus.CLOSED)


def status_after_containment(current: IncidentStatus, contained: bool, held: bool) -> IncidentStatus:
    """The incident's status once containment ran: contained beats held; people's states are kept."""
    if current in _HUMAN_OWNED:
        return current
    if contained:
        return IncidentStatus.CONTAINED
    if held:
        return IncidentStatus.HELD if current in (IncidentStatus.OPEN, IncidentStatus.HELD) else current
    # Nothing contained, nothing held (all rejected, skipped or failed): no longer held.
    return IncidentStatus.OPEN if current == IncidentStatus.HELD else current


def status_after_release(current: IncidentStatus) -> IncidentStatus:
    """Released, unless the incident is already resolved or closed."""
    if current in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
        return current
    return IncidentStatus.RELEASED
