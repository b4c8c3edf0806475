"""Pure parts of the write-back: targets, mappings, the Sentinel merge plan, the comment and its limits,
retries, the classification of Sentinel updates, and what intake keeps for the write-back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from shared.models import (
    AlertSummary,
    Entity,
    EntityKind,
    Incident,
    IncidentStatus,
    Priority,
    RuleHit,
    SlaClocks,
    TriageDecision,
)
from shared.sentinel_updates import classify
from shared.sources import (
    defender_alert_id,
    defender_refs_from_arm,
    defender_refs_from_connector,
    sentinel_incident_id,
)
from shared.writeback import comment, mapping
from shared.writeback import state as st
from shared.writeback.plan import SentinelDesired, plan_incident_update
from shared.writeback.targets import find_targets

UTC = UTC
T0 = datetime(2026, 11, 21, 13, 0, tzinfo=UTC)
SUB = "11111111-2222-3333-4444-555555555555"
RID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-security/providers/Microsoft.OperationalInsights/workspaces/law/"
    "providers/Microsoft.SecurityInsights/incidents/3f2e1d0c"
)


def incident(
    priority: str = "P1",
    status: str = "open",
    alerts: int = 1,
    title: str = "Crypto miner on vm-web-01",
    rules: int = 2,
) -> Incident:
    p = Priority(priority)
    summaries = [
        AlertSummary(
            key=f"generic:x:{i}",
            source="generic",
            source_id=str(i),
            title=f"{title} #{i}",
            severity="High",
            score=9,
            priority=p,
            observed_at=T0 + timedelta(seconds=i),
            received_at=T0 + timedelta(seconds=i),
        )
        for i in range(alerts)
    ]
    hits = [
        RuleHit(rule_id=f"rule-{i}", description=f"rule number {i}", effect="+1", score_after=9) for i in range(rules)
    ]
    sla = SlaClocks(received_at=T0, triaged_at=T0, triage_due=T0, first_response_due=T0, response_sla_due=T0)
    return Incident(
        id="INC-20261121-abc",
        partner_id="contoso",
        title=title,
        priority=p,
        score=9,
        status=IncidentStatus(status),
        created_at=T0,
        updated_at=T0,
        first_seen_at=T0,
        last_seen_at=T0,
        alerts=summaries,
        alert_count=alerts,
        entities=[Entity(kind=EntityKind.HOST, name="vm-web-01")],
        triage=TriageDecision(score=9, priority=p, rules_fired=hits, rules_version="v1"),
        sla=sla,
    )


# ------------------------------------------------------------------ targets
def test_sentinel_incident_id_from_the_id_or_from_the_workspace_info():
    assert sentinel_incident_id(RID.replace("/incidents/", "/Incidents/")).endswith("/incidents/3f2e1d0c")
    built = sentinel_incident_id(None, subscription=SUB, resource_group="rg-security", workspace="law", name="3f2e1d0c")
    assert built == RID
    vm = "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/v"
    assert sentinel_incident_id(vm) is None
    assert sentinel_incident_id(None, subscription=SUB, resource_group="rg/../x", workspace="law", name="n") is None


def test_defender_alert_ids_from_both_shapes_or_the_reason_they_cannot_be_built():
    arm = f"/subscriptions/{SUB}/resourceGroups/rg-prod/providers/Microsoft.Security/locations/eastus/alerts/251_5c3d"
    assert defender_refs_from_arm(arm) == {"defenderAlertId": arm}
    assert "defenderAlertIdMissing" in defender_refs_from_arm(None)
    vm = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm"
    uri = (
        "https://portal.azure.com/#blade/X/AlertBlade/alertId/251_7e1f/subscriptionId/s/referencedFrom/"
        "alertDeepLink/location/westeurope"
    )
    assert defender_refs_from_connector({"AlertUri": uri}, "251_7e1f", [vm]) == {
        "defenderAlertId": f"/subscriptions/{SUB}/providers/Microsoft.Security/locations/westeurope/alerts/251_7e1f"
    }
    assert defender_refs_from_connector({"Location": "centralus"}, "251_7e1f", [vm])["defenderAlertId"].endswith(
        "/locations/centralus/alerts/251_7e1f"
    )
    missing = defender_refs_from_connector({"AlertUri": "https://portal.azure.com/#blade/x/alertId/251"}, "251", [vm])
    assert missing == {
        "defenderAlertIdMissing": "connector payload without the alert's location: its state cannot be updated"
    }
    no_sub = defender_refs_from_connector({"Location": "eastus"}, "251", [None])
    assert "AzureResourceId" in no_sub["defenderAlertIdMissing"]
    assert defender_alert_id(arm.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")) is not None


class _Ev:
    def __init__(self, event_type, data):
        self.event_type, self.data = event_type, data


def test_targets_come_from_the_alerts_evidence_and_sentinel_updates():
    arm = f"/subscriptions/{SUB}/providers/Microsoft.Security/locations/eastus/alerts/a1"
    events = [
        _Ev("alert.received", {"alert": {"key": "generic:fw:1"}}),  # a firewall: nothing to write back to
        _Ev("alert.grouped", {"alert": {"key": "alert:a1", "refs": {"defenderAlertId": arm}}}),
        _Ev("alert.grouped", {"alert": {"key": "alert:a2", "refs": {"defenderAlertIdMissing": "no location"}}}),
        _Ev("alert.duplicate", {"alertKey": "sentinel:3f2e1d0c", "refs": {"sentinelIncidentId": RID}}),
        _Ev(
            "sentinel.update-received",
            {"refs": {"sentinelIncidentId": RID.upper().replace("/SUBSCRIPTIONS", "/subscriptions")}},
        ),
    ]
    t = find_targets(events)
    assert t.sentinel == [RID] and t.defender == [arm]
    assert t.unaddressable == [("alert:a2", "no location")]
    assert not find_targets([events[0]])


# ------------------------------------------------------------------ mappings
@pytest.mark.parametrize("priority,severity", [("P1", "High"), ("P2", "High"), ("P3", "Medium"), ("P4", "Low")])
def test_severity_written_for_each_priority_is_in_step_with_it(priority, severity):
    p = Priority(priority)
    assert mapping.sentinel_severity(p) == severity and mapping.in_step(severity, p)


def test_an_analysts_severity_means_what_it_means_at_ingest_and_never_p1():
    assert [mapping.priority_for_severity(s) for s in ("High", "medium", "Low", "Informational", "bogus")] == [
        Priority.P2,
        Priority.P3,
        Priority.P4,
        Priority.P4,
        None,
    ]
    assert mapping.in_step("Informational", Priority.P4) and not mapping.in_step("High", Priority.P3)


def test_status_only_moves_forward():
    assert mapping.may_move_status("New", "Active") and mapping.may_move_status("Active", "Closed")
    assert not mapping.may_move_status("Closed", "Active") and not mapping.may_move_status("Active", "Active")
    assert not mapping.may_move_status(None, "Active")
    assert mapping.sentinel_status(IncidentStatus.RELEASED) == "Active"
    assert mapping.sentinel_status(IncidentStatus.CLOSED) == "Closed"


def test_labels_follow_priority_containment_approval_and_release():
    assert mapping.desired_labels(Priority.P3, IncidentStatus.OPEN, []) == ["soc-responder", "P3"]
    assert mapping.desired_labels(Priority.P1, IncidentStatus.CONTAINED, ["contained"]) == [
        "soc-responder",
        "P1",
        "contained",
    ]
    assert mapping.desired_labels(Priority.P1, IncidentStatus.HELD, ["held"]) == [
        "soc-responder",
        "P1",
        "held-for-approval",
    ]
    assert mapping.desired_labels(Priority.P1, IncidentStatus.RELEASED, ["released"]) == [
        "soc-responder",
        "P1",
        "released",
    ]


def test_defender_state_in_progress_while_handled_resolved_when_closed_and_people_win():
    assert mapping.defender_action(IncidentStatus.OPEN, []) is None
    assert mapping.defender_action(IncidentStatus.OPEN, ["contained"]) == "inProgress"
    assert mapping.defender_action(IncidentStatus.ACKNOWLEDGED, []) == "inProgress"
    assert mapping.defender_action(IncidentStatus.RESOLVED, ["contained"]) == "resolve"
    assert mapping.defender_action_needed("Active", "inProgress")
    assert not mapping.defender_action_needed("InProgress", "inProgress")
    assert not mapping.defender_action_needed("Dismissed", "inProgress")
    assert not mapping.defender_action_needed("Resolved", "resolve")


# ------------------------------------------------------------------ the Sentinel merge plan
def desired(priority="P1", status="Active", labels=("soc-responder", "P1")) -> SentinelDesired:
    p = Priority(priority)
    return SentinelDesired(
        priority=p,
        severity=mapping.sentinel_severity(p),
        status=status,
        labels=tuple(labels),
        closing_note="closed in soc-responder",
    )


def test_first_write_merges_into_what_is_there_and_keeps_every_other_property():
    props = {
        "title": "t",
        "severity": "Medium",
        "status": "New",
        "owner": {"userPrincipalName": "ana@x"},
        "labels": [{"labelName": "vip", "labelType": "User"}, {"labelName": "P1", "labelType": "AutoAssigned"}],
        "incidentNumber": 4182,
        "additionalData": {"alertsCount": 2},
    }
    plan = plan_incident_update(props, '"e1"', desired(), {}, [])
    body = plan.body
    assert body["etag"] == '"e1"'
    assert body["properties"]["severity"] == "High" and body["properties"]["status"] == "Active"
    assert body["properties"]["owner"] == {"userPrincipalName": "ana@x"} and body["properties"]["title"] == "t"
    assert "incidentNumber" not in body["properties"] and "additionalData" not in body["properties"]
    assert body["properties"]["labels"] == [
        {"labelName": "vip", "labelType": "User"},
        {"labelName": "P1", "labelType": "AutoAssigned"},
        {"labelName": "soc-responder", "labelType": "User"},
    ]
    assert plan.changes == {
        "severity": ["Medium", "High"],
        "status": ["New", "Active"],
        "labelsAdded": ["soc-responder"],
    }
    assert plan.owned == ["soc-responder"]  # P1 was there already (automation rule): never ours to remove


def test_later_writes_only_carry_what_changed_on_our_side_and_remove_only_our_labels():
    applied = {"priority": "P1", "severity": "High", "status": "Active", "labels": ["soc-responder", "P1", "contained"]}
    props = {
        "severity": "Low",
        "status": "New",  # an analyst changed both since: not ours to fight
        "labels": [
            {"labelName": "soc-responder"},
            {"labelName": "P1"},
            {"labelName": "contained"},
            {"labelName": "analyst-note"},
        ],
    }
    same = plan_incident_update(
        props, "e", desired(labels=applied["labels"]), applied, ["soc-responder", "P1", "contained"]
    )
    assert same.body is None
    lowered = plan_incident_update(
        props, "e", desired("P3", labels=("soc-responder", "P3", "released")), applied, ["soc-responder", "P1"]
    )
    names = [x["labelName"] for x in lowered.body["properties"]["labels"]]
    # P1 was ours: removed; "contained" was not ours (an analyst typed it first): kept.
    assert names == ["soc-responder", "contained", "analyst-note", "P3", "released"]
    assert lowered.changes["severity"] == ["Low", "Medium"] and "status" not in lowered.changes
    assert lowered.changes["labelsRemoved"] == ["P1"] and lowered.owned == ["soc-responder", "P3", "released"]


def test_closing_sets_a_classification_unless_an_analyst_gave_one_and_never_reopens():
    applied = {"priority": "P1", "severity": "High", "status": "Active", "labels": ["soc-responder", "P1"]}
    plan = plan_incident_update({"severity": "High", "status": "Active"}, None, desired(status="Closed"), applied, [])
    assert plan.body["properties"]["classification"] == "Undetermined" and "etag" not in plan.body
    kept = plan_incident_update(
        {"severity": "High", "status": "Active", "classification": "TruePositive"},
        None,
        desired(status="Closed"),
        applied,
        [],
    )
    assert kept.body["properties"]["classification"] == "TruePositive"
    assert (
        plan_incident_update(
            {"severity": "High", "status": "Closed"},
            None,
            desired(status="Active"),
            {**applied, "status": "Closed"},
            [],
        ).body
        is None
    )


def test_labels_a_lost_write_put_there_stay_ours_and_go_when_our_state_moves_on():
    """The first PUT landed but its answer was lost: the re-read finds our labels, owned by the claim written
    ahead; nothing was recorded as applied, yet a later change removes them (and never the analyst's)."""
    props = {
        "severity": "High",
        "status": "Active",
        "labels": [
            {"labelName": "vip-user"},
            {"labelName": "soc-responder"},
            {"labelName": "P1"},
            {"labelName": "held-for-approval"},
        ],
    }
    claimed = ["soc-responder", "P1", "held-for-approval"]
    again = plan_incident_update(props, "e2", desired(labels=claimed), {}, claimed)
    assert again.body is None and again.owned == claimed
    moved = plan_incident_update(props, "e2", desired("P2", labels=("soc-responder", "P2", "contained")), {}, claimed)
    assert [x["labelName"] for x in moved.body["properties"]["labels"]] == [
        "vip-user",
        "soc-responder",
        "P2",
        "contained",
    ]
    assert moved.changes["labelsRemoved"] == ["held-for-approval", "P1"]
    assert moved.owned == ["soc-responder", "P2", "contained"]
    # Without the claim the same labels are not ours (an analyst or a rule may have put them there): kept.
    unknown = plan_incident_update(props, "e2", desired("P2", labels=("soc-responder", "P2")), {}, [])
    assert "labelsRemoved" not in unknown.changes and unknown.owned == ["P2"]


def test_a_claimed_label_that_is_not_there_is_not_ours_any_more():
    applied = {"priority": "P1", "severity": "High", "status": "Active", "labels": ["soc-responder", "P1"]}
    props = {"severity": "High", "status": "Active", "labels": [{"labelName": "soc-responder"}]}  # P1 never landed
    plan = plan_incident_update(props, "e", desired(status="Closed"), applied, ["soc-responder", "P1"])
    assert plan.owned == ["soc-responder"] and "labelsAdded" not in plan.changes
    # An analyst types P1 afterwards: theirs, never removed by a later change of ours.
    typed = {**props, "labels": [{"labelName": "soc-responder"}, {"labelName": "P1"}]}
    later = plan_incident_update(typed, "e", desired("P3", labels=("soc-responder", "P3")), applied, plan.owned)
    assert [x["labelName"] for x in later.body["properties"]["labels"]] == ["soc-responder", "P1", "P3"]


def test_label_claims_survive_a_stale_entry_and_are_released_only_as_claimed():
    key = "k"
    state = {
        "targets": {
            key: {
                "id": "rid",
                "kind": "sentinel",
                "owned": ["soc-responder", "P1"],
                "labelClaims": {"soc-responder": "a", "P1": "a"},
            }
        }
    }
    stale = {"id": "rid", "kind": "sentinel", "applied": {"labels": ["soc-responder", "P1"]}, "owned": []}
    # a projection that loaded its entry before the claim was written
    state["targets"][key] = st.merged_target(state["targets"][key], stale)
    assert state["targets"][key]["labelClaims"] == {"soc-responder": "a", "P1": "a"}
    assert state["targets"][key]["applied"] == {"labels": ["soc-responder", "P1"]}
    # P1 removed by a run that saw claim "a"; soc-responder re-claimed by another run since ("b"): kept.
    state["targets"][key]["labelClaims"]["soc-responder"] = "b"
    state["targets"][key] = st.merged_target(
        state["targets"][key], {"id": "rid", st.RELEASED: {"P1": "a", "soc-responder": "a"}}
    )
    entry = state["targets"][key]
    assert entry["labelClaims"] == {"soc-responder": "b"} and entry["owned"] == ["soc-responder"]
    assert st.RELEASED not in entry
    assert st.owned_labels({"owned": ["soc-responder"]}) == {"soc-responder": ""}  # a state from before claims


# ------------------------------------------------------------------ the comment
def view(inc: Incident, actions=(), notifications=()) -> comment.CommentView:
    return comment.CommentView(
        incident=inc,
        actions=list(actions),
        notifications=list(notifications),
        evidence_url=f"https://soc.example/api/incidents/{inc.id}",
        response_mode="enforce",
    )


def test_comment_says_priority_and_why_actions_and_results_who_was_notified_and_links_the_evidence():
    actions = [{"result": "vm-web-01 isolated: quarantine NSG attached to 2 of 2 NIC(s)", "status": "contained"}]
    notes = [
        {
            "channel": "call",
            "contactName": "Dana Reyes",
            "recipient": "+15555550100",
            "attempt": 1,
            "status": "answered",
            "placedAt": "2026-11-21T13:05:00.000Z",
        },
        {
            "channel": "email",
            "kind": "new-incident",
            "recipients": ["soc@contoso.example"],
            "status": "sent",
            "sentAt": "2026-11-21T13:04:00.000Z",
        },
        {"channel": "digest", "status": "queued", "createdAt": "2026-11-21T13:03:00.000Z"},
        {"channel": "other", "status": "x"},
    ]
    text = comment.render_comment(view(incident(), actions, notes))
    assert "P1 Critical" in text and "rule-0: rule number 0" in text
    assert "vm-web-01 isolated: quarantine NSG attached to 2 of 2 NIC(s)" in text and "contained" in text
    plain = re.sub(r"<[^>]+>", "", text)
    assert plain.index("2026-11-21T13:04:00.000Z — email “new-incident” to soc@contoso.example: sent") < plain.index(
        "2026-11-21T13:05:00.000Z — call attempt 1 to Dana Reyes (+***0100): answered"
    )
    assert "2026-11-21T13:03:00.000Z — P4 email for the daily digest: queued" in plain
    assert "+15555550100" not in text  # phone numbers masked
    assert 'href="https://soc.example/api/incidents/INC-20261121-abc"' in text


def test_comment_escapes_attacker_controlled_text():
    text = comment.render_comment(view(incident(title='<img src=x onerror="alert(1)">')))
    assert "<img" not in text and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text


def test_comment_stays_under_sentinels_limit_whatever_the_incident_holds():
    huge = incident(alerts=150, rules=200, title="x" * 5000)
    actions = [{"result": "r" * 2000, "status": "failed"} for _ in range(600)]
    notes = [
        {
            "channel": "email",
            "kind": "k",
            "recipients": [f"p{i}@x.example" for i in range(40)],
            "status": "sent",
            "sentAt": f"2026-11-21T13:{i % 60:02d}:00.000Z",
        }
        for i in range(900)
    ]
    text = comment.render_comment(view(huge, actions, notes))
    assert len(text) <= comment.MAX_COMMENT_CHARS
    assert "150 in this incident" in text and "more actions: see the evidence link" in text
    assert 'href="https://soc.example/api/incidents/INC-20261121-abc"' in text


def test_comment_id_is_a_stable_guid_per_incident_and_sentinel_incident():
    a = comment.comment_id("INC-1", RID)
    assert a == comment.comment_id("INC-1", RID.upper()) and a != comment.comment_id("INC-2", RID)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", a)


# ------------------------------------------------------------------ retries
def test_failures_back_off_then_give_up_and_a_final_one_waits_for_a_change():
    entry: dict = {}
    waits = []
    for _ in range(st.MAX_ATTEMPTS):
        entry["failure"] = st.failure_after(entry, {"final": False}, "fp", T0)
        if entry["failure"]["nextAttemptAt"]:
            waits.append(entry["failure"]["nextAttemptAt"])
    assert waits[:3] == ["2026-11-21T13:01:00.000Z", "2026-11-21T13:02:00.000Z", "2026-11-21T13:04:00.000Z"]
    assert waits[-1] == "2026-11-21T14:00:00.000Z"  # capped at an hour
    assert entry["failure"]["final"] and entry["failure"]["attempts"] == st.MAX_ATTEMPTS
    assert st.deferred(entry, "fp", T0, honour_backoff=False)  # given up: even the runbook leaves it
    assert st.deferred(entry, "other", T0, honour_backoff=True) is None  # something changed: try again
    one = {"failure": st.failure_after({}, {"final": False}, "fp", T0)}
    assert st.deferred(one, "fp", T0, honour_backoff=True) and st.deferred(one, "fp", T0, honour_backoff=False) is None
    assert st.deferred(one, "fp", T0 + timedelta(minutes=1), honour_backoff=True) is None


# ------------------------------------------------------------------ updates coming back from Sentinel
def test_classify_tells_our_echo_from_an_analysts_change_and_ignores_stale_deliveries():
    writes = [{"etag": "e2", "changed": ["severity"], "severity": "High", "lastModified": "2026-11-21T13:10:00Z"}]
    entry = {"seen": {"severity": "High", "status": "Active"}, "writes": writes}
    base = {"severity": "Medium", "status": "New", "owner": None}
    # our own write coming back
    echo = {"severity": "High", "status": "Active", "owner": None}
    assert classify(entry, echo, "e2", None, base) == ({}, ["severity"], [])
    # an analyst's change (another etag), owner assigned too
    changes, own, stale = classify(
        entry, {"severity": "Low", "status": "Active", "owner": "ana@x"}, "e3", "2026-11-21T13:20:00Z", base
    )
    assert changes == {"severity": ["High", "Low"], "owner": [None, "ana@x"]} and not own and not stale
    # an update older than our write does not undo it
    assert classify(entry, {"severity": "Medium"}, "e1", "2026-11-21T13:05:00Z", base) == ({}, [], ["severity"])
    # first update ever: compared with what the incident showed when it came in
    assert classify({}, {"severity": "Medium", "status": "New"}, "e0", None, base) == ({}, [], [])
    assert classify({}, {"severity": "High"}, "e0", None, base) == ({"severity": ["Medium", "High"]}, [], [])
    # a value never known before (the alert's summary aged out of a huge incident) is no change to act on
    assert classify({}, {"severity": "High", "status": "Active"}, "e0", None, {}) == ({}, [], [])


# ------------------------------------------------------------------ intake: where to write back
def test_intake_keeps_the_sentinel_incident_id_etag_owner_and_the_defender_alert_id():
    import copy
    import json
    from pathlib import Path

    from shared.intake import defender, sentinel

    samples = Path(__file__).resolve().parents[2] / "samples"
    trigger = json.loads((samples / "sentinel-incident-trigger.json").read_text())
    trigger["object"]["properties"]["owner"]["email"] = "ana@contoso.example"
    ext = sentinel.parse(trigger, T0).extended_properties
    assert ext["sentinelIncidentId"] == (
        f"/subscriptions/{SUB}/resourceGroups/rg-security/providers/Microsoft.OperationalInsights/workspaces/"
        "law-soc-prod/providers/Microsoft.SecurityInsights/incidents/3f2e1d0c-b9a8-4765-8432-10fedcba9876"
    )
    assert ext["sentinelEtag"] == '"0300bf09-0000-0c00-0000-65a1b2c30000"'
    assert ext["sentinelOwner"] == "ana@contoso.example"
    assert ext["sentinelLastModified"] == "2026-11-21T13:25:02Z" and ext["sentinelStatus"] == "New"
    no_id = copy.deepcopy(trigger)
    del no_id["object"]["id"]
    assert sentinel.parse(no_id, T0).extended_properties["sentinelIncidentId"] == ext["sentinelIncidentId"]
    assert "sentinelIncidentId" not in sentinel.parse(no_id["object"], T0).extended_properties  # bare, no id
    weird = copy.deepcopy(trigger)
    weird["object"]["properties"]["owner"] = "not an object"
    assert "sentinelOwner" not in sentinel.parse(weird, T0).extended_properties  # tolerated, not a 400

    arm = json.loads((samples / "defender-alert-arm.json").read_text())
    assert defender.parse(arm, T0).extended_properties["defenderAlertId"] == arm["id"]
    connector = json.loads((samples / "defender-alert-connector.json").read_text())
    assert "location" in defender.parse(connector, T0).extended_properties["defenderAlertIdMissing"]
