"""What the runbook would do for an incident (docs/spec/containment.md, docs/spec/notification.md). Pure.

The plan is decided from the incident, its partner and the settings alone;
guardrails that need live state (VM tags, the blast-radius counter, the
account's current state) are applied when an action is executed.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from shared.models import Entity, EntityKind, Incident, Priority, SocModel
from shared.partners import Partner, PartnerRegistry
from shared.settings import Settings


class ActionKind(StrEnum):
    ISOLATE_VM = "isolate-vm"
    DISABLE_USER = "disable-user"
    DISABLE_SERVICE_PRINCIPAL = "disable-service-principal"
    PARTNER_FINDING = "partner-finding"


class ActionDecision(StrEnum):
    EXECUTE = "execute"  # enforce mode: do it now
    HOLD = "hold"  # approve mode (or a guardrail): wait for POST /approve
    PLAN_ONLY = "plan-only"  # dry-run: record, change nothing
    SKIP = "skip"  # a guardrail forbids it (protected identity)
    NONE = "none"  # nothing to do by us (firewall: the partner acts)


class ContainmentAction(SocModel):
    """One planned containment step."""

    action_id: str
    kind: ActionKind
    target: str
    target_display: str
    entity: Entity
    decision: ActionDecision
    reason: str


class NotificationPlan(SocModel):
    email_to: list[str] = Field(default_factory=list)
    phone_escalation: bool = False
    phone_numbers: list[str] = Field(default_factory=list)
    digest: bool = False
    routed_to_soc: bool = False


class ResponsePlan(SocModel):
    incident_id: str
    priority: str
    response_mode: str
    partner_id: str | None
    containment: list[ContainmentAction] = Field(default_factory=list)
    notification: NotificationPlan
    notes: list[str] = Field(default_factory=list)
    # issue 13 (never silent): why a P1 runbook can contain nothing automatically, else None.
    none_possible: str | None = None


def effective_mode(partner: Partner | None, settings: Settings) -> str:
    """The partner's response mode where it sets one, else the deployment's."""
    return partner.responseMode if partner and partner.responseMode else settings.response_mode


def _action_for(entity: Entity, partner: Partner | None, protected: list[str], mode: str) -> ContainmentAction | None:
    default = {"enforce": ActionDecision.EXECUTE, "approve": ActionDecision.HOLD, "dry-run": ActionDecision.PLAN_ONLY}[
        mode
    ]
    reason = {
        "enforce": "P1 runbook, enforce mode",
        "approve": "P1 runbook, approve mode: held for approval",
        "dry-run": "P1 runbook, dry-run: plan recorded, nothing changed",
    }[mode]
    if (
        entity.kind == EntityKind.HOST
        and entity.azure_resource_id
        and "/microsoft.compute/virtualmachines/" in entity.azure_resource_id.lower()
    ):
        target = entity.azure_resource_id
        return ContainmentAction(
            action_id=_action_id("isolate-vm", target),
            kind=ActionKind.ISOLATE_VM,
            target=target,
            target_display=entity.name or target.rsplit("/", 1)[-1],
            entity=entity,
            decision=default,
            reason=reason,
        )
    if entity.kind == EntityKind.ACCOUNT and (account := entity.object_id or entity.upn):
        if _is_protected(protected, entity.object_id, entity.upn):
            return _lockout(ActionKind.DISABLE_USER, "disable-user", account, entity.upn or account, entity)
        display = entity.upn or entity.name or account
        return _lockout(ActionKind.DISABLE_USER, "disable-user", account, display, entity, default, reason)
    if entity.kind == EntityKind.SERVICE_PRINCIPAL and (principal := entity.object_id or entity.app_id):
        kind, prefix, display = (
            ActionKind.DISABLE_SERVICE_PRINCIPAL,
            "disable-service-principal",
            entity.name or principal,
        )
        if _is_protected(protected, entity.object_id, entity.app_id, entity.name):
            return _lockout(kind, prefix, principal, display, entity)
        return _lockout(kind, prefix, principal, display, entity, default, reason)
    if entity.kind == EntityKind.NETWORK_DEVICE:
        target = entity.name or entity.address or "network device"
        return ContainmentAction(
            action_id=_action_id("partner-finding", target),
            kind=ActionKind.PARTNER_FINDING,
            target=target,
            target_display=target,
            entity=entity,
            decision=ActionDecision.NONE,
            reason="network device: findings go to the partner, who acts",
        )
    return None


def _action_id(kind: str, target: str) -> str:
    import hashlib

    return f"{kind}-{hashlib.sha256(target.lower().encode()).hexdigest()[:16]}"


def plan_response(incident: Incident, partners: PartnerRegistry, settings: Settings) -> ResponsePlan:
    """Containment (P1 only) and notification plan for an incident."""
    partner = partners.get(incident.partner_id)
    mode = effective_mode(partner, settings)
    contacts = partner or partners.soc
    protected = [*contacts.protectedIdentities, *partners.soc.protectedIdentities]
    notes: list[str] = []
    containment: list[ContainmentAction] = []
    if incident.priority == Priority.P1:
        seen: set[str] = set()
        for entity in incident.entities:
            action = _action_for(entity, partner, protected, mode)
            if action and action.action_id not in seen:
                seen.add(action.action_id)
                containment.append(action)
        if not containment:
            notes.append("P1 without a containable entity: notification only")
        none_possible = no_containment_reason(incident, containment)
    else:
        notes.append(f"{incident.priority.value}: no automatic containment (P1 only)")
        none_possible = None
    emails = list(contacts.socAlertEmails)
    phones: list[str] = []
    if incident.priority == Priority.P1:
        emails += [c.email for c in contacts.emergencyContacts if c.email and c.email not in emails]
        phones = [c.phone for c in contacts.emergencyContacts if c.phone]
    notification = NotificationPlan(
        email_to=emails,
        phone_escalation=incident.priority == Priority.P1,
        phone_numbers=phones,
        digest=incident.priority == Priority.P4,
        routed_to_soc=partner is None,
    )
    if partner is None:
        notes.append("no partner matched: the SOC's own contacts are notified")
    if not emails:
        notes.append("no email contacts configured for this incident")
    return ResponsePlan(
        incident_id=incident.id,
        priority=incident.priority.value,
        response_mode=mode,
        partner_id=incident.partner_id,
        containment=containment,
        notification=notification,
        notes=notes,
        none_possible=none_possible,
    )


_CONTAINABLE = {"host": "VM", "account": "account", "servicePrincipal": "service principal"}


def no_containment_reason(incident: Incident, containment: list[ContainmentAction] | None = None) -> str | None:
    """Why nothing about this incident can be contained automatically (docs/spec/containment.md), or None.

    Containment acts on Azure VMs (network isolation) and Entra accounts / service principals (disable).
    Anything else an alert names — an AKS cluster, a storage account, an IP, a mailbox — is shown and
    enriched but never contained, and a P1 naming only such things must say so rather than stay silent.
    """
    if containment is None and any(_containable(e) for e in incident.entities):
        return None  # the plan decides then (the email case: containment was planned or is under way)
    actions = containment or []
    if any(a.decision not in (ActionDecision.SKIP, ActionDecision.NONE, ActionDecision.HOLD) for a in actions):
        return None
    held = [a for a in actions if a.decision == ActionDecision.HOLD]
    if held:  # approve mode, or (issue 11) targets not owned by the partner: a person must decide
        why = sorted({a.reason for a in held})
        return f"every containment action is held for a decision ({'; '.join(why[:3])})"
    protected = [a.target_display for a in actions if a.decision == ActionDecision.SKIP]
    if protected:
        return f"the only containable identities are protected and never disabled ({', '.join(protected[:5])})"
    if not incident.entities:
        return "the alert names no entity at all (no VM, account or service principal to act on)"
    others = [e for e in incident.entities if e.kind.value not in _CONTAINABLE or not _containable(e)]
    kinds = sorted({_kind_words(e) for e in others})
    return (
        "the incident names no VM, account or service principal that can be contained automatically; "
        f"it names {', '.join(kinds[:6])} — shown and enriched, never contained automatically"
    )


def _containable(entity: Entity) -> bool:
    if entity.kind == EntityKind.HOST:
        return bool(
            entity.azure_resource_id and "/microsoft.compute/virtualmachines/" in entity.azure_resource_id.lower()
        )
    if entity.kind == EntityKind.ACCOUNT:
        return bool(entity.object_id or entity.upn)
    if entity.kind == EntityKind.SERVICE_PRINCIPAL:
        return bool(entity.object_id or entity.app_id)
    return False


def _kind_words(entity: Entity) -> str:
    if entity.kind == EntityKind.HOST:
        return f"a host known only by name ({entity.display})"
    if entity.kind == EntityKind.AZURE_RESOURCE:
        return f"an Azure resource ({entity.display})"
    return f"{entity.kind.value} {entity.display}"


def _is_protected(protected: list[str], *ids: str | None) -> bool:
    """Break-glass / emergency-access identities (configuration) are never disabled, matched on any id."""
    return bool({i.lower() for i in ids if i} & set(protected))


def _lockout(
    kind: ActionKind,
    prefix: str,
    target: str,
    display: str,
    entity: Entity,
    decision: ActionDecision = ActionDecision.SKIP,
    reason: str = "protected identity: never disabled",
) -> ContainmentAction:
    """An account or service-principal action; by default the skip of a protected identity."""
    return ContainmentAction(
        action_id=_action_id(prefix, target),
        kind=kind,
        target=target,
        target_display=display,
        entity=entity,
        decision=decision,
        reason=reason,
    )
