"""Idempotency and restarts: replays, re-runs and duplicate starts never act twice."""

from __future__ import annotations

from datetime import timedelta

from .conftest import ROOT, account, actions, containment_writes, host, ingest, p1_alert, seed_vm


def _successful_puts(fake, nic: str) -> int:
    return len([r for r in fake.requests("PUT", nic.rsplit("/", 1)[-1]) if r.status == 200])


def test_host_restart_mid_containment_resumes_and_does_not_repeat(enforce):
    from devtools.functions_runtime import LocalFunctionsRuntime
    from function_app import build_app
    from shared import runtime

    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-restart", nsgs=[None, None])
    # The second NIC fails for a whole activity attempt (1 try + 3 SDK retries): the first is already changed.
    fake.inject("PUT", nics[1].rsplit("/", 1)[-1] + "$", 503, times=4)
    incident_id = ingest(app, p1_alert(host(vm)))
    assert _successful_puts(fake, nics[0]) == 1 and _successful_puts(fake, nics[1]) == 0
    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "in-progress"
    assert [n["state"] for n in row["nics"] if n["id"] == nics[0]] == ["quarantined"]

    # The host goes down while the orchestration waits for its retry; a new process resumes it.
    state = app.durable.export_state()
    app.runtime.close()
    runtime.reset()
    restarted = LocalFunctionsRuntime(build_app(), durable_state=state, host_json=str(ROOT / "host.json"))
    try:
        restarted.durable.advance(timedelta(seconds=16))
        status = restarted.durable.status(f"runbook-{incident_id}-1")
        assert status["runtimeStatus"] == "Completed"
        assert status["output"]["containment"]["status"] == "contained"
        assert len(restarted.durable.activity_calls("plan_response")) == 1  # finished steps are not re-run
        assert len(restarted.durable.activity_calls("containment_execute")) == 2
    finally:
        restarted.close()
    assert _successful_puts(fake, nics[0]) == 1  # not repeated
    assert _successful_puts(fake, nics[1]) == 1
    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "contained" and all(n["changedByUs"] for n in row["nics"])


def test_activity_re_run_after_a_lost_completion_changes_nothing(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "vm-rerun")
    oid = "0f0f0f0f-0000-4000-8000-0000000000c1"
    fake.add_user(oid, "rerun@contoso.example")
    incident_id = ingest(app, p1_alert(host(vm), account(object_id=oid)))
    writes_before = containment_writes(fake)
    events_before = len(app.timeline(incident_id))

    for call in app.durable.activity_calls("containment_execute"):
        again = app.runtime.invoke("containment_execute", request=call["input"])
        assert again["status"] == "contained"

    assert containment_writes(fake) == writes_before
    assert fake.sign_in_revocations(oid) == 1
    assert len(app.timeline(incident_id)) == events_before


def test_crash_after_the_change_but_before_it_was_recorded_is_finished_not_repeated(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-crash")
    incident_id = ingest(app, p1_alert(host(vm)))
    # Rewind the row to what a crash right after the NIC PUT leaves: in-progress, the NIC still "pending".
    got = app.store.get_record("ContainmentActions", incident_id, actions(app, incident_id)["isolate-vm"]["actionId"])
    row, etag = got
    for entry in row["nics"].values():
        entry.update(state="pending", changedByUs=False)
    row["status"] = "in-progress"
    app.store.put_record("ContainmentActions", incident_id, row["actionId"], row, etag=etag)
    fake.clear_log()

    request = app.durable.activity_calls("containment_execute")[0]["input"]
    result = app.runtime.invoke("containment_execute", request=request)

    assert result["status"] == "contained" and result["nics"][0]["changedByUs"] is True
    assert containment_writes(fake) == []
    # ...and release still knows it was us, so it puts the NIC back.
    resp = app.post(f"/api/incidents/{incident_id}/release", {"actor": "a@soc.example", "reason": "rebuilt"})
    assert resp.json()["status"] == "released"
    assert "networkSecurityGroup" not in fake.get_resource(nics[0])["properties"]


def test_runbook_started_again_for_the_same_epoch_does_not_act_twice(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "vm-dup")
    incident_id = ingest(app, p1_alert(host(vm)))
    writes = containment_writes(fake)

    app.durable.start_new("incident_runbook", f"runbook-{incident_id}-1", {"incidentId": incident_id, "epoch": 1})

    assert app.durable.status(f"runbook-{incident_id}-1")["runtimeStatus"] == "Completed"
    assert containment_writes(fake) == writes
    assert len(fake.requests("PUT", "/networkInterfaces/")) == 1


def test_new_epoch_after_release_contains_again_and_a_later_release_restores_again(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-epoch")
    incident_id = ingest(app, p1_alert(host(vm)))
    app.post(f"/api/incidents/{incident_id}/release", {"actor": "a@soc.example", "reason": "looked clean"})
    assert "networkSecurityGroup" not in fake.get_resource(nics[0])["properties"]

    # The incident comes back to P1 (epoch 2): containment runs again.
    app.durable.start_new("incident_runbook", f"runbook-{incident_id}-2", {"incidentId": incident_id, "epoch": 2})
    assert fake.get_resource(nics[0])["properties"].get("networkSecurityGroup") is not None
    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "contained" and row["epoch"] == 2
    assert (
        app.post(f"/api/incidents/{incident_id}/release", {"actor": "a@soc.example", "reason": "rebuilt"}).json()[
            "status"
        ]
        == "released"
    )
    assert "networkSecurityGroup" not in fake.get_resource(nics[0])["properties"]


def test_breaker_holds_across_scaled_out_instances_racing_for_the_last_slots(enforce):
    """Four instances (four contexts, one evidence store) race; the ETag-guarded state row lets exactly
    BLAST_RADIUS_MAX of them contain."""
    import threading

    from shared.containment.guardrails import BREAKER_STATE
    from shared.models import Entity, EntityKind
    from shared.response_plan import ActionDecision, ActionKind, ContainmentAction
    from shared.runtime import AppContext

    app, fake = enforce, enforce.fake
    app.configure(BLAST_RADIUS_MAX="2")
    requests = []
    for i in range(4):
        vm, _ = seed_vm(fake, f"vm-race-{i}")
        incident_id = ingest(app, p1_alert(host(vm), score=8))  # P2: nothing ran yet
        action = ContainmentAction(
            action_id=f"isolate-vm-race{i}",
            kind=ActionKind.ISOLATE_VM,
            target=vm,
            target_display=vm.rsplit("/", 1)[-1],
            decision=ActionDecision.EXECUTE,
            entity=Entity(kind=EntityKind.HOST, azure_resource_id=vm),
            reason="test",
        )
        requests.append({"incidentId": incident_id, "epoch": 1, "action": action.wire(), "trigger": "runbook"})
    instances = [AppContext() for _ in requests]
    barrier = threading.Barrier(len(requests))
    results: list[dict] = [{}] * len(requests)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = instances[i].containment.execute(requests[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert sorted(r["status"] for r in results) == ["contained", "contained", "held", "held"]
    assert {r["guardrail"] for r in results if r["status"] == "held"} == {"blast-radius"}
    assert len(app.store.get_state(BREAKER_STATE)[0]["slots"]) == 2
    assert len([r for r in fake.requests("PUT", "/networkInterfaces/") if r.status == 200]) == 2
