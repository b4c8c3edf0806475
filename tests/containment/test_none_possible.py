"""Never silent (issue 13): why a P1 can contain nothing automatically (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.ingest import open_incident
from shared.models import Alert, Entity, EntityKind, Priority, TriageDecision
from shared.partners import PartnerRegistry
from shared.response_plan import no_containment_reason, plan_response
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SUB = "11111111-2222-3333-4444-555555555555"
VM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-1"
AKS = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-prod"


def incident(*entities: Entity, priority: Priority = Priority.P1):
    alert = Alert(source="defender", source_id="a", dedupe_keys=["alert:a"], title="t", observed_at=NOW)
    alert = alert.model_copy(update={"entities": list(entities), "subscription_ids": [SUB]})
    decision = TriageDecision(score=9, priority=priority, rules_fired=[], rules_version="v")
    return open_incident("INC-1", alert, decision, None, "UTC", NOW, NOW)


@pytest.fixture
def plan(tmp_path):
    def make(inc, mode="enforce", protected=()):
        raw = json.loads((ROOT / "config/partners.json").read_text())
        raw["soc"]["protectedIdentities"] = list(protected)
        path = tmp_path / "partners.json"
        path.write_text(json.dumps(raw))
        return plan_response(inc, PartnerRegistry.load(path), Settings.from_env({"RESPONSE_MODE": mode}))

    return make


def test_only_non_vm_resources_say_why(plan):
    p = plan(incident(Entity(kind=EntityKind.AZURE_RESOURCE, name="aks-prod", azure_resource_id=AKS)))
    assert p.containment == [] and "Azure resource (aks-prod)" in (p.none_possible or "")


def test_no_entity_at_all(plan):
    assert "no entity" in (plan(incident()).none_possible or "")


def test_a_host_known_only_by_name_is_not_containable(plan):
    p = plan(incident(Entity(kind=EntityKind.HOST, name="websrv1")))
    assert "known only by name (websrv1)" in (p.none_possible or "")


def test_only_protected_identities(plan):
    p = plan(
        incident(Entity(kind=EntityKind.ACCOUNT, upn="breakglass@contoso.example")),
        protected=["breakglass@contoso.example"],
    )
    assert "protected" in (p.none_possible or "")


def test_every_action_held_in_approve_mode(plan):
    p = plan(incident(Entity(kind=EntityKind.HOST, name="vm-1", azure_resource_id=VM)), mode="approve")
    assert "held for a decision" in (p.none_possible or "")


@pytest.mark.parametrize("mode", ["enforce", "dry-run"])
def test_a_containable_vm_is_not_none_possible(plan, mode):
    inc = incident(Entity(kind=EntityKind.HOST, name="vm-1", azure_resource_id=VM))
    assert plan(inc, mode=mode).none_possible is None and no_containment_reason(inc) is None


def test_below_p1_there_is_nothing_to_say(plan):
    assert plan(incident(priority=Priority.P2)).none_possible is None
