"""Time to containment (issue 15): a P1's actions fan out, a VM's NICs change at once, the breaker still
holds in plan order, and people are told after a bound even when containment is still running."""

from __future__ import annotations

from datetime import timedelta

from shared.containment import containment_instance_id
from tests.fixtures.app import APP_SETTINGS

from .conftest import account, actions, host, ingest, p1_alert, quarantine_id, seed_vm

TASK_SCHEDULED, TASK_COMPLETED = 4, 5
# A NIC update accepted by ARM completes this long after (wall clock), however often it is polled.
NIC_LRO_SECONDS = 2.0


def _scheduled_before_first_completion(history: list[dict], name: str) -> int:
    """How many ``name`` activities were scheduled before the first of them completed."""
    ids: set[int] = set()
    for event in history:
        if event["EventType"] == TASK_COMPLETED and event.get("TaskScheduledId") in ids:
            break
        if event["EventType"] == TASK_SCHEDULED and event.get("Name") == name:
            ids.add(event["EventId"])
    return len(ids)


def test_a_p1s_actions_fan_out_and_a_vms_nics_change_at_once(enforce):
    app, fake = enforce, enforce.fake
    fake.set_lro("Microsoft.Network/networkInterfaces", after_seconds=NIC_LRO_SECONDS, methods=["PUT"])
    vms = [seed_vm(fake, f"vm-spread-{i}", nsgs=[None, None]) for i in range(2)]
    oid = "0f0f0f0f-0000-4000-8000-0000000000f1"
    fake.add_user(oid, "spread@contoso.example")
    incident_id = ingest(app, p1_alert(*(host(vm) for vm, _ in vms), account(object_id=oid)))

    history = app.durable.history(containment_instance_id(incident_id, 1))
    # Every action was scheduled before any finished: one fan-out, not a sequence.
    assert _scheduled_before_first_completion(history, "containment_execute") == 3
    puts = sorted(r.timestamp for r in fake.requests("PUT", "/networkInterfaces/"))
    assert len(puts) == 4
    # All four NIC updates reached ARM before the first of them could have completed: one after
    # another, each PUT would wait for the previous operation (NIC_LRO_SECONDS).
    assert puts[-1] - puts[0] < NIC_LRO_SECONDS
    rows = actions(app, incident_id)
    assert {rows[k]["status"] for k in ("isolate-vm", "disable-user")} == {"contained"}
    for _vm, nics in vms:
        for nic in nics:
            assert fake.get_resource(nic)["properties"]["networkSecurityGroup"]["id"] == quarantine_id("eastus")
    # Each action is evidenced on its own, once.
    timeline = app.timeline(incident_id)
    assert timeline.count("containment.nic-quarantined") == 4
    assert timeline.count("containment.executed") == 3
    assert len(app.store.get_state("containment-breaker")[0]["slots"]) == 3


def test_the_breaker_holds_the_last_actions_of_the_plan_as_a_sequential_run_would(enforce):
    app, fake = enforce, enforce.fake
    app.configure(BLAST_RADIUS_MAX="2", BLAST_RADIUS_WINDOW_MINUTES="15")
    vms = [seed_vm(fake, f"vm-order-{i}") for i in range(4)]
    incident_id = ingest(app, p1_alert(*(host(vm) for vm, _ in vms)))

    rows = {r["target"]: r for r in actions(app, incident_id).values()}
    statuses = [rows[vm]["status"] for vm, _ in vms]
    assert statuses == ["contained", "contained", "held", "held"]
    assert [rows[vm]["guardrail"] for vm, _ in vms[2:]] == ["blast-radius", "blast-radius"]
    # Decided in plan order by whichever action reached the breaker first, with no extra durable hop.
    assert [c["name"] for c in app.durable.activity_calls() if c["name"].startswith("containment_")] == [
        "containment_execute"
    ] * 4 + ["containment_conclude"]
    state = app.store.get_state("containment-breaker")[0]
    assert sorted(s["key"] for s in state["slots"]) == sorted(
        f"{incident_id}/{rows[vm]['actionId']}" for vm, _ in vms[:2]
    )
    assert "unused" not in state  # held by the breaker: they never had a slot to give back


def test_a_slot_taken_for_an_action_that_did_not_need_it_goes_back(enforce):
    app, fake = enforce, enforce.fake
    done_vm, _ = seed_vm(fake, "vm-done", nsgs=[quarantine_id("eastus")])
    fake.add_nsg(quarantine_id("eastus"), "eastus")
    open_vm, _ = seed_vm(fake, "vm-open")
    incident_id = ingest(app, p1_alert(host(done_vm), host(open_vm)))

    rows = {r["target"]: r for r in actions(app, incident_id).values()}
    assert (rows[done_vm]["status"], rows[open_vm]["status"]) == ("already-contained", "contained")
    slots = app.store.get_state("containment-breaker")[0]["slots"]
    # The breaker counts containments carried out: the slot the open VM took for the quarantined one
    # (earlier in the plan) is returned.
    assert [s["key"] for s in slots] == [f"{incident_id}/{rows[open_vm]['actionId']}"]


def test_people_are_told_after_the_bound_while_containment_still_runs(enforce):
    app, fake = enforce, enforce.fake
    app.configure(CONTAINMENT_NOTIFY_AFTER_SECONDS="20")
    fake.add_mailbox(APP_SETTINGS["MAIL_SENDER"])
    vm, nics = seed_vm(fake, "vm-hung")
    # ARM fails the NIC update for two whole attempts (1 try + 3 SDK retries each): retried at +15 s
    # and +30 s by the orchestration, so containment outlives the 20 s bound.
    fake.inject("PUT", nics[0].rsplit("/", 1)[-1] + "$", 503, times=8)
    incident_id = ingest(app, p1_alert(host(vm)))
    runbook = f"runbook-{incident_id}-1"
    assert app.durable.status(runbook)["runtimeStatus"] == "Running"
    assert fake.sent_mail() == []

    app.durable.advance(timedelta(seconds=21))
    # The bound passed: the email went out saying the VM's isolation is still in progress, and the
    # phones ring, while the containment run goes on.
    mails = fake.sent_mail()
    assert len(mails) == 1
    body = str(mails[0])
    assert "vm-hung" in body and "in progress" in body.lower()
    assert app.durable.status(f"escalation-{incident_id}") is not None
    # issue 14: each emergency number's pager places its call (contoso: two numbers, one call each)
    assert len([c for c in app.durable.activity_calls("place_contact_call") if c["result"]["attempted"]]) == 2
    assert app.durable.status(containment_instance_id(incident_id, 1))["runtimeStatus"] == "Running"
    assert app.durable.status(runbook)["customStatus"]["step"] == "awaiting-containment"
    # Release is refused while that run can still change the VM.
    resp = app.post(f"/api/incidents/{incident_id}/release", {"actor": "a@soc.example", "reason": "too early"})
    assert resp.status == 409

    app.durable.advance(timedelta(seconds=15))
    output = app.durable.status(runbook)["output"]
    assert output["containment"]["status"] == "contained"
    assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"
    # The write-back ran after containment finished, so it projects the final result.
    assert output["writeback"] is not None
    assert app.store.get_incident(incident_id)[0].status.value == "contained"


def test_a_failure_that_comes_after_the_first_email_is_emailed_too(enforce):
    app, fake = enforce, enforce.fake
    app.configure(CONTAINMENT_NOTIFY_AFTER_SECONDS="20")
    fake.add_mailbox(APP_SETTINGS["MAIL_SENDER"])
    vm, nics = seed_vm(fake, "vm-down")
    fake.inject("PUT", nics[0].rsplit("/", 1)[-1] + "$", 503, times=100)  # ARM refuses every attempt
    incident_id = ingest(app, p1_alert(host(vm)))

    app.durable.advance(timedelta(seconds=21))
    assert len(fake.sent_mail()) == 1  # the first email: isolation in progress
    app.durable.advance(timedelta(seconds=30))  # attempts at +15 s and +30 s fail too: given up
    output = app.durable.status(f"runbook-{incident_id}-1")["output"]
    assert output["containment"]["status"] == "failed"
    assert actions(app, incident_id)["isolate-vm"]["status"] == "failed"
    mails = fake.sent_mail()
    assert len(mails) == 2
    assert "vm-down" in str(mails[1]) and "fail" in str(mails[1]).lower()
    assert "error" not in output["lateFailures"]


def test_with_no_wait_at_all_containment_still_starts_at_once(enforce):
    app, fake = enforce, enforce.fake
    app.configure(CONTAINMENT_NOTIFY_AFTER_SECONDS="0")
    vm, _ = seed_vm(fake, "vm-nowait")
    incident_id = ingest(app, p1_alert(host(vm)))

    names = [c["name"] for c in app.durable.activity_calls()]
    # Containment is started before the runbook moves on (not when it is finally awaited, after
    # notify and investigation).
    assert names.index("containment_execute") < names.index("investigate_incident")
    assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"
    assert app.durable.status(f"runbook-{incident_id}-1")["output"]["containment"]["status"] == "contained"
