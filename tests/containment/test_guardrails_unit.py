"""Pure containment decisions: guardrail order, the breaker, incident status, NSG rules, row summaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.arm_network import investigation_sources, quarantine_rules, region_key, rules_drifted
from shared.containment import approval_instance_id, containment_instance_id
from shared.containment.execute import error_line
from shared.containment.guardrails import (
    Facts,
    Guardrail,
    Outcome,
    breaker_reserve,
    evaluate,
    is_protected,
    isolation_tag,
    status_after_containment,
    status_after_release,
)
from shared.containment.isolate_vm import changed_paths
from shared.containment.ports import DirectoryAccount, parse_resource_id, same_id
from shared.containment.records import ActionStatus, as_record, changed_by_us, result_text, summary
from shared.containment.requests import ApprovalRequest, ReleaseRequest, parse_request
from shared.errors import RequestRejectedError, ValidationError
from shared.models import IncidentStatus
from shared.response_plan import ActionDecision, ActionKind

VM = ActionKind.ISOLATE_VM
USER = ActionKind.DISABLE_USER
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


# -- guardrail order ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "facts, outcome, guardrail",
    [
        (Facts(VM, ActionDecision.EXECUTE), Outcome.EXECUTE, Guardrail.RESPONSE_MODE),
        (Facts(VM, ActionDecision.HOLD), Outcome.HOLD, Guardrail.RESPONSE_MODE),
        (Facts(VM, ActionDecision.HOLD, approved=True), Outcome.EXECUTE, Guardrail.APPROVED),
        (Facts(VM, ActionDecision.EXECUTE, isolation_tag="approval"), Outcome.HOLD, Guardrail.ISOLATION_APPROVAL),
        (
            Facts(VM, ActionDecision.EXECUTE, isolation_tag="approval", approved=True),
            Outcome.EXECUTE,
            Guardrail.APPROVED,
        ),
        (Facts(VM, ActionDecision.EXECUTE, isolation_tag="sometimes"), Outcome.HOLD, Guardrail.ISOLATION_APPROVAL),
        (Facts(VM, ActionDecision.EXECUTE, isolation_tag="never"), Outcome.SKIP, Guardrail.ISOLATION_NEVER),
        (
            Facts(VM, ActionDecision.EXECUTE, isolation_tag="never", approved=True),
            Outcome.SKIP,
            Guardrail.ISOLATION_NEVER,
        ),
        (Facts(USER, ActionDecision.EXECUTE, protected=True), Outcome.SKIP, Guardrail.PROTECTED_IDENTITY),
        (Facts(USER, ActionDecision.SKIP), Outcome.SKIP, Guardrail.PROTECTED_IDENTITY),
        (Facts(USER, ActionDecision.HOLD, protected=True, approved=True), Outcome.SKIP, Guardrail.PROTECTED_IDENTITY),
        (Facts(USER, ActionDecision.EXECUTE, guest=True), Outcome.FAIL, Guardrail.GUEST_ACCOUNT),
        (Facts(USER, ActionDecision.EXECUTE, guest=True, protected=True), Outcome.SKIP, Guardrail.PROTECTED_IDENTITY),
        (Facts(ActionKind.PARTNER_FINDING, ActionDecision.NONE), Outcome.PARTNER_ACTION, Guardrail.PARTNER_ACTION),
    ],
)
def test_guardrails_decide_in_order(facts, outcome, guardrail):
    verdict = evaluate(facts)
    assert (verdict.outcome, verdict.guardrail) == (outcome, guardrail)


def test_dry_run_wraps_every_decision_and_says_what_enforce_would_do():
    assert evaluate(Facts(VM, ActionDecision.PLAN_ONLY)).would == Outcome.EXECUTE
    held = evaluate(Facts(VM, ActionDecision.PLAN_ONLY, isolation_tag="approval"))
    assert (held.outcome, held.would) == (Outcome.DRY_RUN, Outcome.HOLD) and held.risk
    assert evaluate(Facts(USER, ActionDecision.PLAN_ONLY, guest=True)).would == Outcome.FAIL
    assert evaluate(Facts(ActionKind.PARTNER_FINDING, ActionDecision.NONE)).outcome == Outcome.PARTNER_ACTION


def test_isolation_tag_name_is_case_insensitive_and_value_normalised():
    assert isolation_tag({"SOC-Isolation": " Never "}) == "never"
    assert isolation_tag({"owner": "x"}) is None
    assert isolation_tag(None) is None


def test_protected_identities_match_any_identifier_case_insensitively():
    assert is_protected(["BreakGlass-01@contoso.example"], None, "breakglass-01@CONTOSO.example")
    assert not is_protected(["breakglass-01@contoso.example"], "someone@contoso.example", None)
    guest = DirectoryAccount(kind="user", id="1", upn="v_f.example#EXT#@contoso.example", user_type="Member")
    assert guest.is_guest


# -- blast-radius breaker -------------------------------------------------------------------------
def test_breaker_allows_n_then_holds_and_never_stores_more_than_n():
    slots: list[dict] = []
    window = timedelta(minutes=15)
    decisions = []
    for i in range(4):
        allowed, slots = breaker_reserve(slots, f"k{i}", T0 + timedelta(minutes=i), 2, window)
        decisions.append(allowed)
    assert decisions == [True, True, False, False]
    assert [s["key"] for s in slots] == ["k0", "k1"]


def test_breaker_re_reservation_by_the_same_action_is_free_and_the_window_slides():
    window = timedelta(minutes=15)
    allowed, slots = breaker_reserve([], "a", T0, 1, window)
    assert allowed and breaker_reserve(slots, "a", T0 + timedelta(minutes=1), 1, window) == (True, slots)
    assert breaker_reserve(slots, "b", T0 + timedelta(minutes=14, seconds=59), 1, window)[0] is False
    allowed, later = breaker_reserve(slots, "b", T0 + timedelta(minutes=15), 1, window)
    assert allowed and [s["key"] for s in later] == ["b"]


def test_breaker_of_zero_holds_every_automatic_containment():
    assert breaker_reserve([], "a", T0, 0, timedelta(minutes=5))[0] is False


# -- incident status -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "current, contained, held, expected",
    [
        (IncidentStatus.OPEN, True, True, IncidentStatus.CONTAINED),
        (IncidentStatus.OPEN, False, True, IncidentStatus.HELD),
        (IncidentStatus.HELD, True, False, IncidentStatus.CONTAINED),
        (IncidentStatus.HELD, False, False, IncidentStatus.OPEN),
        (IncidentStatus.RELEASED, True, False, IncidentStatus.CONTAINED),
        (IncidentStatus.ACKNOWLEDGED, True, False, IncidentStatus.ACKNOWLEDGED),
        (IncidentStatus.CLOSED, True, False, IncidentStatus.CLOSED),
        (IncidentStatus.OPEN, False, False, IncidentStatus.OPEN),
    ],
)
def test_status_after_containment(current, contained, held, expected):
    assert status_after_containment(current, contained, held) == expected


def test_release_status_keeps_resolved_and_closed():
    assert status_after_release(IncidentStatus.CONTAINED) == IncidentStatus.RELEASED
    assert status_after_release(IncidentStatus.ACKNOWLEDGED) == IncidentStatus.RELEASED
    assert status_after_release(IncidentStatus.RESOLVED) == IncidentStatus.RESOLVED


# -- quarantine NSG rules -------------------------------------------------------------------------
def test_quarantine_rules_without_a_source_deny_all_at_priority_100():
    rules = quarantine_rules(None)
    assert [(r["name"], r["properties"]["access"], r["properties"]["priority"]) for r in rules] == [
        ("soc-deny-all-in", "Deny", 100),
        ("soc-deny-all-out", "Deny", 100),
    ]


def test_quarantine_rules_with_a_source_allow_it_first_and_validate_it():
    rules = {r["name"]: r["properties"] for r in quarantine_rules("10.9.0.0/16")}
    assert rules["soc-allow-investigation-in"]["sourceAddressPrefix"] == "10.9.0.0/16"
    assert rules["soc-deny-all-in"]["priority"] == 110
    with pytest.raises(RequestRejectedError, match="SOC_INVESTIGATION_SOURCE"):
        investigation_sources("10.0.0.0/8, not-an-ip")


def test_rule_drift_detects_added_loosened_or_missing_rules_but_not_case_or_order():
    desired = quarantine_rules(None)
    same = [
        dict(r, properties={**r["properties"], "direction": r["properties"]["direction"].upper()})
        for r in reversed(desired)
    ]
    assert not rules_drifted(same, desired)
    loosened = [dict(desired[0], properties={**desired[0]["properties"], "access": "Allow"}), desired[1]]
    assert rules_drifted(loosened, desired)
    assert rules_drifted(desired[:1], desired)
    assert rules_drifted(desired + [{"name": "extra", "properties": {"access": "Allow"}}], desired)


def test_rules_as_arm_stores_them_are_not_drift():
    desired = quarantine_rules("10.1.0.0/24, 10.2.0.0/24")
    stored = [
        dict(
            r,
            etag="W/x",
            properties={
                "sourcePortRanges": [],
                "destinationPortRanges": [],
                "sourceAddressPrefixes": [],
                "destinationAddressPrefixes": [],
                "sourceAddressPrefix": "",
                "destinationAddressPrefix": "",
                **r["properties"],
                "provisioningState": "Succeeded",
                "description": "edited text",
            },
        )
        for r in desired
    ]
    assert not rules_drifted(stored, desired)


def test_region_keys_ignore_spaces_and_case():
    assert region_key("West Europe") == region_key("westeurope") == "westeurope"


# -- rows and summaries ---------------------------------------------------------------------------
def _row(**extra):
    base = {
        "actionId": "isolate-vm-1",
        "kind": "isolate-vm",
        "target": "/subscriptions/s/vm",
        "targetDisplay": "vm-1",
        "status": "contained",
        "epoch": 1,
        "verdict": {"guardrail": "response-mode", "reason": "enforce mode"},
        "nics": {
            "n1": {"id": "N1", "changedByUs": True, "previousNsg": None, "quarantineNsg": "Q", "state": "quarantined"},
            "n2": {
                "id": "N2",
                "changedByUs": False,
                "previousNsg": "Q",
                "quarantineNsg": "Q",
                "state": "already-quarantined",
            },
        },
        "account": {},
    }
    base.update(extra)
    return base


def test_result_text_tells_people_what_happened():
    assert result_text(_row()) == "vm-1 isolated: quarantine NSG attached to 1 of 2 NIC(s)"
    failed = result_text(_row(status="failed", failure={"reason": "403 no"}))
    assert failed.startswith("vm-1: FAILED, escalated to people: 403 no") and "partly applied" in failed
    assert "rejected by ana" in result_text(_row(status="rejected", approval={"actor": "ana"}))
    assert (
        result_text(_row(kind="disable-user", targetDisplay="jo@x"))
        == "account jo@x disabled and its sign-in sessions revoked"
    )


def test_summary_exposes_nics_with_their_original_ids():
    s = summary(_row())
    assert [n["id"] for n in s["nics"]] == ["N1", "N2"] and s["guardrail"] == "response-mode"


def test_new_cycle_keeps_unrestored_changes_and_forgets_released_ones():
    kept = as_record(_row(status="failed")).next_cycle(2, T0).to_row()
    assert kept["epoch"] == 2 and kept["status"] is None and list(kept["nics"]) == ["n1"] and changed_by_us(kept)
    fresh = as_record(_row(status="released")).next_cycle(2, T0).to_row()
    assert fresh["nics"] == {} and not changed_by_us(fresh)


def test_changed_paths_name_only_what_differs():
    before = {
        "etag": "1",
        "properties": {
            "ipConfigurations": [{"name": "a", "properties": {"ip": "10.0.0.4"}}],
            "provisioningState": "Succeeded",
        },
    }
    after = {
        "etag": "2",
        "properties": {
            "ipConfigurations": [{"name": "a", "properties": {"ip": "10.0.0.4"}}],
            "networkSecurityGroup": {"id": "Q"},
            "provisioningState": "Updating",
        },
    }
    assert changed_paths(before, after) == ["properties.networkSecurityGroup"]
    after["properties"]["ipConfigurations"][0]["properties"]["ip"] = "10.0.0.5"
    assert "properties.ipConfigurations[a].properties.ip" in changed_paths(before, after)


# -- requests, ids, misc --------------------------------------------------------------------------
def test_operator_requests_are_validated_without_echoing_values():
    ok = parse_request(ApprovalRequest, {"actor": " ana@soc.example ", "decision": "reject", "extra": 1})
    assert ok.actor == "ana@soc.example" and ok.reason is None
    with pytest.raises(ValidationError) as bad:
        parse_request(ReleaseRequest, {"actor": "ana\x07", "reason": ""})
    fields = [d["field"] for d in bad.value.details]
    assert fields == ["actor", "reason"] and "\x07" not in str(bad.value.details)
    with pytest.raises(ValidationError):
        parse_request(ApprovalRequest, "approve")


def test_instance_ids_are_deterministic_per_incident_and_epoch():
    assert containment_instance_id("INC-1", 2) == "containment-INC-1-2"
    assert approval_instance_id("INC-1", "apr-abc") == "containment-INC-1-apr-abc"


def test_resource_ids_parse_and_compare_case_insensitively():
    parts = parse_resource_id("/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/vm")
    assert parts == {
        "subscription": "S",
        "resourceGroup": "RG",
        "type": "microsoft.compute/virtualmachines",
        "name": "vm",
    }
    with pytest.raises(ValueError):
        parse_resource_id("/subscriptions/S/resourceGroups/RG")
    assert same_id("/A/b/", "/a/B") and not same_id(None, "/a") and same_id(None, None)


def test_error_line_keeps_the_reason_and_drops_the_stack():
    text = (
        "Activity function 'containment_execute' failed: Result: Failure\n"
        "Exception: TransientError: update NIC n1: 500 InternalServerError boom\nStack:   File x, line 1"
    )
    assert error_line(text) == "update NIC n1: 500 InternalServerError boom"
    assert ActionStatus.CONTAINED == "contained"
