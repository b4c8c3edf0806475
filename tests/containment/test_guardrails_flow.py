"""Guardrails through the app: response modes, soc-isolation tags, the blast-radius breaker,
approve/reject, network devices, dry-run."""

from __future__ import annotations

from .conftest import (
    account,
    actions,
    containment_output,
    containment_writes,
    device,
    host,
    ingest,
    nsg_id,
    p1_alert,
    quarantine_id,
    seed_vm,
)

ANALYST = "ana.lyst@soc.example"


def approve(app, incident_id: str, decision: str = "approve", reason: str | None = "partner agreed"):
    body = {"actor": ANALYST, "decision": decision}
    if reason is not None:
        body["reason"] = reason
    return app.post(f"/api/incidents/{incident_id}/approve", body)


def test_vm_tagged_for_approval_is_held_with_its_risk_then_approval_isolates_it(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "dc-01", tags={"Soc-Isolation": "approval", "role": "domain-controller"})
    incident_id = ingest(app, p1_alert(host(vm)))

    assert containment_writes(fake) == []
    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "held" and row["guardrail"] == "soc-isolation-approval"
    assert "domain controller" in row["risk"]
    out = containment_output(app, incident_id)
    assert out["status"] == "held" and out["held"][0]["guardrail"] == "soc-isolation-approval"
    assert app.store.get_incident(incident_id)[0].status.value == "held"

    resp = approve(app, incident_id)
    assert resp.status == 202
    body = resp.json()
    assert body["decision"] == "approve" and [a["status"] for a in body["actions"]] == ["approved"]
    [execution] = body["executions"]
    assert app.durable.status(execution["instanceId"])["runtimeStatus"] == "Completed"
    assert (
        fake.get_resource(nics[0])["properties"]["networkSecurityGroup"]["id"].lower()
        == quarantine_id("eastus").lower()
    )
    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "contained" and row["approval"]["actor"] == ANALYST
    events = [e for e in app.store.list_events(incident_id) if e.event_type == "containment.approved"]
    assert events[0].actor == ANALYST and events[0].actor_type.value == "analyst"
    assert app.store.get_incident(incident_id)[0].status.value == "contained"

    # A second approval finds nothing held and runs nothing again.
    again = approve(app, incident_id)
    assert again.status == 200 and again.json()["message"] == "nothing is held for approval"
    assert len(fake.requests("PUT", "/networkInterfaces/")) == 1


def test_vm_tagged_never_is_never_isolated_even_when_approval_is_asked(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "dns-01", tags={"soc-isolation": "never"})
    incident_id = ingest(app, p1_alert(host(vm)))

    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "skipped" and row["guardrail"] == "soc-isolation-never"
    assert approve(app, incident_id).json()["actions"] == []
    assert containment_writes(fake) == []


def _approve_mode_incident(app, partner_mode, name: str, oid: str) -> str:
    """An incident of a partner in approve mode, about a VM and an account."""
    partner_mode("approve")
    vm, _ = seed_vm(app.fake, name)
    app.fake.add_user(oid, f"{name}@contoso.example")
    return ingest(app, p1_alert(host(vm), account(object_id=oid)))


def test_approve_mode_holds_and_a_rejection_really_blocks(app, partner_mode):
    fake = app.fake
    incident_id = _approve_mode_incident(app, partner_mode, "vm-app", "0f0f0f0f-0000-4000-8000-0000000000a1")

    assert containment_writes(fake) == []
    rows = actions(app, incident_id)
    assert rows["isolate-vm"]["status"] == rows["disable-user"]["status"] == "held"
    assert rows["isolate-vm"]["guardrail"] == "response-mode"

    resp = approve(app, incident_id, "reject", "business-critical, partner will handle")
    assert resp.status == 200
    assert sorted(a["status"] for a in resp.json()["actions"]) == ["rejected", "rejected"]
    assert resp.json()["incidentStatus"] == "open"
    # Nothing runs: not now, not on a later approval, not when the runbook runs again for this epoch.
    assert approve(app, incident_id).json()["actions"] == []
    app.durable.start_new(
        "containment_orchestrator",
        "containment-replay-test",
        {
            "incidentId": incident_id,
            "epoch": 1,
            "trigger": "runbook",
            "actions": [r["action"] for r in app.store.list_records("ContainmentActions", incident_id)],
        },
    )
    assert containment_writes(fake) == []
    assert {r["status"] for r in app.store.list_records("ContainmentActions", incident_id)} == {"rejected"}
    rejected = [e for e in app.store.list_events(incident_id) if e.event_type == "containment.rejected"]
    assert len(rejected) == 2 and all(e.actor == ANALYST for e in rejected)
    assert rejected[0].data["reason"] == "business-critical, partner will handle"


def test_approve_mode_approval_executes_every_held_action(app, partner_mode):
    fake = app.fake
    incident_id = _approve_mode_incident(app, partner_mode, "vm-app2", "0f0f0f0f-0000-4000-8000-0000000000a2")

    resp = approve(app, incident_id, reason=None)
    assert resp.status == 202
    assert {w[0] for w in containment_writes(fake)} == {"PUT", "PATCH", "POST"}
    rows = actions(app, incident_id)
    assert rows["isolate-vm"]["status"] == rows["disable-user"]["status"] == "contained"
    assert app.store.get_incident(incident_id)[0].sla.first_response_at is not None


def test_blast_radius_breaker_trips_at_n_plus_one(enforce):
    app, fake = enforce, enforce.fake
    app.configure(BLAST_RADIUS_MAX="2", BLAST_RADIUS_WINDOW_MINUTES="15")
    vms = [seed_vm(fake, f"vm-fleet-{i}") for i in range(4)]
    incidents = [ingest(app, p1_alert(host(vm))) for vm, _ in vms]

    statuses = [actions(app, i)["isolate-vm"]["status"] for i in incidents]
    assert statuses == ["contained", "contained", "held", "held"]
    assert actions(app, incidents[2])["isolate-vm"]["guardrail"] == "blast-radius"
    assert "containment.breaker-tripped" in app.timeline(incidents[2])
    assert len(fake.requests("PUT", "/networkInterfaces/")) == 2
    # People decide: an approval runs the held one regardless of the breaker.
    assert approve(app, incidents[2]).status == 202
    assert actions(app, incidents[2])["isolate-vm"]["status"] == "contained"
    state = app.store.get_state("containment-breaker")[0]
    assert len(state["slots"]) == 2


def test_dry_run_sends_no_write_request_at_all(app, partner_mode):
    partner_mode(None)  # the partner sets no mode: the deployment's dry-run applies
    app.configure(RESPONSE_MODE="dry-run")
    fake = app.fake
    vm, _nics = seed_vm(fake, "vm-dry", nsgs=[nsg_id("nsg-x")])
    fake.add_user("0f0f0f0f-0000-4000-8000-0000000000d1", "dry@contoso.example")
    incident_id = ingest(app, p1_alert(host(vm), account(object_id="0f0f0f0f-0000-4000-8000-0000000000d1")))

    assert list(fake.writes(api="arm")) == []
    assert [r for r in fake.writes(api="graph") if not r.path.lower().endswith("/sendmail")] == []
    rows = actions(app, incident_id)
    assert rows["isolate-vm"]["status"] == rows["disable-user"]["status"] == "dry-run"
    preview = rows["isolate-vm"]["preview"]["nics"][0]
    assert preview["currentNsg"].endswith("/nsg-x") and preview["quarantineNsg"].endswith("soc-quarantine-eastus")
    assert "enforce mode would execute" in rows["isolate-vm"]["reason"]
    assert containment_output(app, incident_id)["status"] == "dry-run"
    assert app.timeline(incident_id).count("containment.dry-run") == 2


def test_network_device_gets_findings_for_the_partner_and_no_action(enforce):
    app, fake = enforce, enforce.fake
    incident_id = ingest(app, p1_alert(device("fgt-edge-01")))

    row = actions(app, incident_id)["partner-finding"]
    assert row["status"] == "partner-action" and "partner" in row["result"]
    assert containment_writes(fake) == []
    assert "containment.partner-action" in app.timeline(incident_id)


def test_approve_body_and_incident_are_validated(enforce):
    app = enforce
    missing = app.post("/api/incidents/INC-nope/approve", {"decision": "approve"})
    assert missing.status == 400 and missing.json()["details"][0]["field"] == "actor"
    bad = app.post("/api/incidents/INC-nope/approve", {"actor": ANALYST, "decision": "maybe"})
    assert bad.status == 400 and bad.json()["details"][0]["field"] == "decision"
    assert "maybe" not in bad.text  # the value sent is never echoed
    not_object = app.post("/api/incidents/INC-nope/approve", ["approve"])
    assert not_object.status == 400 and not_object.json()["details"][0]["field"] == "body"
    unknown = app.post("/api/incidents/INC-nope/approve", {"actor": ANALYST, "decision": "approve"})
    assert unknown.status == 404
    nothing_held = approve(app, ingest(app, p1_alert(device("fw-1"))))
    assert nothing_held.status == 200 and nothing_held.json()["actions"] == []


def test_a_failure_in_an_approved_run_is_emailed_to_people(app, partner_mode):
    partner_mode("approve")
    fake = app.fake
    fake.add_mailbox("soc-responder@soc.example")
    oid = "0f0f0f0f-0000-4000-8000-0000000000e1"
    fake.add_user(oid, "chief@contoso.example", forbidden=True)
    incident_id = ingest(app, p1_alert(account(object_id=oid)))
    before = len(fake.sent_mail())

    execution = approve(app, incident_id).json()["executions"][0]

    out = app.durable.status(execution["instanceId"])["output"]
    assert out["status"] == "failed" and out["failures"][0]["status"] == 403
    mails = fake.sent_mail()[before:]
    assert len(mails) == 1 and "403" in (mails[0].body_content or "")


def test_an_approval_whose_run_never_started_is_started_by_the_next_approve_call(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "dc-02", tags={"soc-isolation": "approval"})
    incident_id = ingest(app, p1_alert(host(vm)))
    action_id = actions(app, incident_id)["isolate-vm"]["actionId"]
    # What a crash between recording the approval and starting its run leaves behind.
    row, etag = app.store.get_record("ContainmentActions", incident_id, action_id)
    row.update(
        status="approved",
        approval={
            "decision": "approve",
            "actor": ANALYST,
            "reason": None,
            "at": "2026-11-22T10:00:00.000Z",
            "approvalId": "apr-lost",
        },
    )
    app.store.put_record("ContainmentActions", incident_id, action_id, row, etag=etag)

    resp = approve(app, incident_id)

    assert resp.status == 202
    [execution] = resp.json()["executions"]
    assert execution["approvalId"] == "apr-lost" and execution["resumed"] is True
    assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"
    assert len(fake.requests("PUT", "/networkInterfaces/")) == 1
    assert approve(app, incident_id).status == 200  # and a further call starts nothing
    assert len(fake.requests("PUT", "/networkInterfaces/")) == 1
