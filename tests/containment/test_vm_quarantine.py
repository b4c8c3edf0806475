"""VM quarantine through the whole app: ingest → runbook → containment sub-orchestration → real
azure-mgmt clients → the HTTPS fake; evidence in Azurite."""

from __future__ import annotations

from devtools.fakes import json_diff
from shared.containment import list_actions as actions_list

from .conftest import (
    SUB,
    actions,
    advance,
    containment_output,
    containment_writes,
    host,
    ingest,
    nic_id,
    nsg_id,
    p1_alert,
    quarantine_id,
    sample,
    seed_vm,
    vm_id,
)


def _rule(name: str, access: str, port: str = "*") -> dict:
    """An inbound NSG rule as ARM stores it."""
    return {
        "name": name,
        "properties": {
            "protocol": "*",
            "sourcePortRange": "*",
            "destinationPortRange": port,
            "sourceAddressPrefix": "*",
            "destinationAddressPrefix": "*",
            "access": access,
            "priority": 100,
            "direction": "Inbound",
        },
    }


def test_sample_p1_defender_alert_quarantines_every_nic_end_to_end(enforce):
    app = enforce
    fake = app.fake
    web_nsg = nsg_id("nsg-web")
    fake.add_nsg(web_nsg, "eastus")
    nic_a, nic_b = nic_id("nic-primary"), nic_id("nic-backend", rg="rg-network")
    fake.add_nic(nic_a, "eastus", nsg_id=web_nsg)
    fake.add_nic(nic_b, "eastus")
    vm = vm_id("vm-web-01")
    fake.add_vm(vm, "eastus", [nic_a, nic_b])
    # A NIC whose name matches the VM must never be touched: NICs come from the VM's networkProfile.
    decoy = nic_id("vm-web-01-nic")
    fake.add_nic(decoy, "eastus")
    seeded = {n: fake.get_resource(n) for n in (nic_a, nic_b, decoy)}

    resp = app.post("/api/alerts/defender", sample("defender-alert-arm.json"))
    assert resp.status == 202 and resp.json()["priority"] == "P1"
    incident_id = resp.json()["incidentId"]

    quarantine = quarantine_id("eastus")
    writes = containment_writes(fake)
    # The quarantine NSG exists before any NIC points at it; the VM's NICs are written in parallel (any order).
    assert writes[0] == ("PUT", quarantine)
    assert sorted(writes[1:]) == sorted([("PUT", nic_a), ("PUT", nic_b)])
    # Each NIC now has the quarantine NSG and nothing else changed on it; the decoy is untouched.
    for nic in (nic_a, nic_b):
        after = fake.get_resource(nic)
        assert after["properties"]["networkSecurityGroup"]["id"].lower() == quarantine.lower()
        assert [p for p in json_diff(seeded[nic], after) if not p.startswith("properties.networkSecurityGroup")] == []
        assert fake.requests("PUT", nic.rsplit("/", 1)[-1])[0].header("If-Match") == seeded[nic]["etag"]
    assert fake.get_resource(decoy) == seeded[decoy]
    # The quarantine NSG denies everything, both ways, at the top priority.
    rules = {r["name"]: r["properties"] for r in fake.get_resource(quarantine)["properties"]["securityRules"]}
    assert {
        (p["direction"], p["access"], p["priority"], p["sourceAddressPrefix"], p["destinationAddressPrefix"])
        for p in rules.values()
    } == {("Inbound", "Deny", 100, "*", "*"), ("Outbound", "Deny", 100, "*", "*")}
    assert fake.get_resource(quarantine)["location"] == "eastus"

    out = containment_output(app, incident_id)
    assert out["status"] == "contained" and out["failures"] == [] and out["incidentStatus"] == "contained"
    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "contained"
    assert {n["id"]: n["previousNsg"] for n in row["nics"]} == {nic_a: web_nsg, nic_b: None}
    assert all(n["changedByUs"] and n["state"] == "quarantined" for n in row["nics"])

    timeline = app.timeline(incident_id)
    i = timeline.index("containment.started")
    assert timeline[i : i + 5] == [
        "containment.started",
        "containment.quarantine-nsg-created",
        "containment.nic-quarantined",
        "containment.nic-quarantined",
        "containment.executed",
    ]
    events = {e.event_type: e for e in app.store.list_events(incident_id)}
    executed = events["containment.executed"].data
    assert {n["id"]: n["networkSecurityGroup"] for n in executed["before"]["nics"]} == {nic_a: web_nsg, nic_b: None}
    assert {n["networkSecurityGroup"] for n in executed["after"]["nics"]} == {quarantine}
    assert events["containment.executed"].criterion == "CC7.4"
    incident = app.store.get_incident(incident_id)[0]
    assert incident.status.value == "contained"
    assert incident.sla.first_response_at is not None
    assert app.get(f"/api/incidents/{incident_id}/verify").json()["valid"] is True


def test_vm_in_another_region_gets_its_own_quarantine_nsg(enforce):
    app, fake = enforce, enforce.fake
    fake.add_nsg(quarantine_id("eastus"), "eastus", [_rule("soc-deny-all-in", "Deny")])
    vm, nics = seed_vm(fake, "vm-eu", location="West Europe", nsgs=[None])
    incident_id = ingest(app, p1_alert(host(vm)))

    west = quarantine_id("westeurope")
    assert fake.get_resource(west)["location"] == "West Europe"
    assert fake.get_resource(nics[0])["properties"]["networkSecurityGroup"]["id"].lower() == west.lower()
    assert ("PUT", quarantine_id("eastus")) not in containment_writes(fake)
    assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"


def test_vm_already_quarantined_changes_nothing_and_says_so(enforce):
    app, fake = enforce, enforce.fake
    first, _ = seed_vm(fake, "vm-a")
    ingest(app, p1_alert(host(first)))
    vm, _nics = seed_vm(fake, "vm-b", nsgs=[quarantine_id("eastus")])
    fake.clear_log()

    incident_id = ingest(app, p1_alert(host(vm)))

    assert containment_writes(fake) == []
    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "already-contained"
    assert row["nics"][0]["changedByUs"] is False
    assert "containment.already-contained" in app.timeline(incident_id)
    # Nothing of this incident to put back: the NIC keeps the quarantine it had before.
    resp = app.post(f"/api/incidents/{incident_id}/release", {"actor": "ana@soc.example", "reason": "done"})
    assert resp.status == 200 and resp.json()["status"] == "nothing-contained"
    assert containment_writes(fake) == []


def test_deleted_vm_fails_and_is_escalated(enforce):
    app, fake = enforce, enforce.fake
    gone = vm_id("vm-deleted")
    incident_id = ingest(app, p1_alert(host(gone)))

    assert containment_writes(fake) == []
    out = containment_output(app, incident_id)
    assert out["status"] == "failed"
    [failure] = out["failures"]
    assert failure["target"] == gone and failure["final"] is True and "no longer exists" in failure["reason"]
    assert actions(app, incident_id)["isolate-vm"]["status"] == "failed"
    failed = [e for e in app.store.list_events(incident_id) if e.event_type == "containment.failed"]
    assert len(failed) == 1 and "escalated to people" in failed[0].summary
    # The notify step received the failure to email about.
    assert app.durable.activity_calls("notify_incident")[0]["input"]["containment"]["failures"] == out["failures"]


def test_quarantine_nsg_rules_loosened_by_someone_are_restored_before_use(enforce):
    app, fake = enforce, enforce.fake
    fake.add_nsg(quarantine_id("eastus"), "eastus", [_rule("let-me-in", "Allow", port="3389")])
    vm, _nics = seed_vm(fake, "vm-c")
    incident_id = ingest(app, p1_alert(host(vm)))

    names = {r["name"] for r in fake.get_resource(quarantine_id("eastus"))["properties"]["securityRules"]}
    assert names == {"soc-deny-all-in", "soc-deny-all-out"}
    assert containment_writes(fake)[0] == ("PUT", quarantine_id("eastus"))
    assert "containment.quarantine-nsg-repaired" in app.timeline(incident_id)


def test_investigation_source_gets_allow_rules_above_deny_all(enforce):
    app, fake = enforce, enforce.fake
    app.configure(SOC_INVESTIGATION_SOURCE="10.99.0.0/24, 10.98.1.5")
    vm, _ = seed_vm(fake, "vm-d")
    ingest(app, p1_alert(host(vm)))

    nsg = fake.get_resource(quarantine_id("eastus"))
    rules = {r["name"]: r["properties"] for r in nsg["properties"]["securityRules"]}
    assert rules["soc-allow-investigation-in"]["sourceAddressPrefixes"] == ["10.99.0.0/24", "10.98.1.5/32"]
    assert rules["soc-allow-investigation-out"]["destinationAddressPrefixes"] == ["10.99.0.0/24", "10.98.1.5/32"]
    assert rules["soc-allow-investigation-in"]["priority"] < rules["soc-deny-all-in"]["priority"]
    assert rules["soc-deny-all-out"]["access"] == "Deny"


def test_nic_changed_between_read_and_write_is_reread_not_overwritten(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-e")
    fake.inject("PUT", r"/networkInterfaces/", 412, body={"error": {"code": "PreconditionFailed", "message": "etag"}})
    incident_id = ingest(app, p1_alert(host(vm)))

    puts = fake.requests("PUT", "/networkInterfaces/")
    assert [r.status for r in puts] == [412, 200]
    assert len(fake.requests("GET", nics[0].rsplit("/", 1)[-1])) == 2  # read again before the second PUT
    assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"


def test_throttled_nic_update_is_retried_after_retry_after(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "vm-f")
    fake.inject("PUT", r"/networkInterfaces/", 429, headers={"Retry-After": "1"})
    incident_id = ingest(app, p1_alert(host(vm)))

    puts = fake.requests("PUT", "/networkInterfaces/")
    assert [r.status for r in puts] == [429, 200]
    assert puts[1].timestamp - puts[0].timestamp >= 0.9  # azure-core waited as Retry-After asked
    assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"
    assert len(app.durable.activity_calls("containment_execute")) == 1  # the SDK's retry was enough


def test_persistent_arm_5xx_exhausts_sdk_and_durable_retries_then_escalates(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-g")
    fake.inject("PUT", r"/networkInterfaces/", 500, times=1000)
    incident_id = ingest(app, p1_alert(host(vm)))
    # First attempt failed; the durable retry timers (15 s apart) bring the next ones.
    assert app.durable.status(f"runbook-{incident_id}-1")["runtimeStatus"] == "Running"
    advance(app, 16, times=3)

    calls = app.durable.activity_calls("containment_execute")
    assert len(calls) == 3 and all(c.get("error") for c in calls)
    # Each activity attempt = 1 try + 3 azure-core retries.
    assert len(fake.requests("PUT", "/networkInterfaces/")) == 3 * 4
    out = containment_output(app, incident_id)
    [failure] = out["failures"]
    assert failure["code"] == "RetriesExhausted" and "gave up after 3 attempts" in failure["reason"]
    assert "500" in failure["reason"]
    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "failed"
    timeline = app.timeline(incident_id)
    assert timeline.count("containment.attempt-failed") == 3 and timeline.count("containment.failed") == 1
    assert fake.get_resource(nics[0])["properties"].get("networkSecurityGroup") is None


def test_same_alert_delivered_twice_contains_once(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "vm-h")
    body = p1_alert(host(vm))
    first = ingest(app, body)
    second = ingest(app, body)

    assert first == second
    assert len(fake.requests("PUT", "/networkInterfaces/")) == 1
    assert len(app.durable.activity_calls("containment_execute")) == 1


def test_below_p1_nothing_is_contained(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "vm-i")
    incident_id = ingest(app, p1_alert(host(vm), score=8))

    assert containment_writes(fake) == []
    assert app.durable.status(f"containment-{incident_id}-1") is None
    assert "containment" not in app.durable.status(f"runbook-{incident_id}-1")["output"]


def test_incident_view_lists_actions_with_results(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "vm-j", nsgs=[None, None])
    incident_id = ingest(app, p1_alert(host(vm)))

    view = app.get(f"/api/incidents/{incident_id}").json()
    [row] = view["actions"]
    assert row["status"] == "contained" and row["kind"] == "isolate-vm" and SUB in row["target"]
    assert view["status"] == "contained"
    [summary] = actions_list(app.store, incident_id)
    assert summary["result"] == "vm-j isolated: quarantine NSG attached to 2 of 2 NIC(s)"
