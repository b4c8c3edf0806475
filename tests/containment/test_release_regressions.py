"""Release regressions: changes kept across epochs, releases racing a run, changes never recorded,
rows stuck in progress, and an account whose state Graph did not report."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from shared.models import isoformat

from .conftest import ROOT, account, actions, advance, containment_writes, host, ingest, p1_alert, seed_vm

ANALYST = "a@soc.example"


def release(app, incident_id: str, reason: str = "false positive"):
    return app.post(f"/api/incidents/{incident_id}/release", {"actor": ANALYST, "reason": reason})


def _rewrite(app, incident_id: str, action_id: str, change) -> None:
    row, etag = app.store.get_record("ContainmentActions", incident_id, action_id)
    change(row)
    app.store.put_record("ContainmentActions", incident_id, action_id, row, etag=etag)


def test_release_restores_an_earlier_epochs_change_on_a_row_now_held_then_withdraws_it(enforce, partner_mode):
    app, fake = enforce, enforce.fake
    oid = "0f0f0f0f-0000-4000-8000-0000000000d1"
    fake.add_user(oid, "dana@contoso.example")
    fake.inject("POST", r"/revokeSignInSessions", 403)  # epoch 1: disabled, then the revoke is refused
    incident_id = ingest(app, p1_alert(account(object_id=oid)))
    assert actions(app, incident_id)["disable-user"]["account"]["disabledByUs"] is True
    partner_mode("approve")  # epoch 2 holds the action; the row keeps epoch 1's change
    app.durable.start_new("incident_runbook", f"runbook-{incident_id}-2", {"incidentId": incident_id, "epoch": 2})
    assert actions(app, incident_id)["disable-user"]["status"] == "held"

    resp = release(app, incident_id)

    assert resp.status == 200 and resp.json()["status"] == "released"
    assert fake.get_user(oid)["accountEnabled"] is True
    row = actions(app, incident_id)["disable-user"]
    assert row["status"] == "withdrawn" and row["account"]["restored"] is True
    assert {"containment.account-enabled", "containment.withdrawn"} <= set(app.timeline(incident_id))


def test_release_during_a_retry_wait_is_refused_so_the_run_cannot_undo_it(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-race")
    oid = "0f0f0f0f-0000-4000-8000-0000000000e1"
    fake.add_user(oid, "eli@contoso.example")
    fake.inject("GET", rf"/users/{oid}", 500, times=20)  # the account's first attempt fails: 15 s wait
    incident_id = ingest(app, p1_alert(host(vm), account(object_id=oid)))
    assert fake.get_resource(nics[0])["properties"].get("networkSecurityGroup") is not None

    resp = release(app, incident_id)

    assert resp.status == 409 and "still running" in resp.json()["error"]
    assert fake.get_resource(nics[0])["properties"].get("networkSecurityGroup") is not None  # nothing undone
    refused = [e for e in app.store.list_events(incident_id) if e.event_type == "release.refused"]
    assert refused and any(r.startswith("containment-") for r in refused[-1].data["runs"])
    fake.clear_faults()
    advance(app, 16, times=2)
    assert fake.get_user(oid)["accountEnabled"] is False
    assert release(app, incident_id).json()["status"] == "released"
    assert fake.get_user(oid)["accountEnabled"] is True
    assert "networkSecurityGroup" not in fake.get_resource(nics[0])["properties"]


def test_crash_after_the_nic_put_then_retries_exhausted_is_still_released(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-pending")
    incident_id = ingest(app, p1_alert(host(vm)))
    action_id = actions(app, incident_id)["isolate-vm"]["actionId"]

    def crashed(row):  # what a crash right after the NIC PUT leaves
        for entry in row["nics"].values():
            entry.update(state="pending", changedByUs=False)
        row["status"] = "in-progress"

    _rewrite(app, incident_id, action_id, crashed)
    request = app.durable.activity_calls("containment_execute")[0]["input"]
    fake.inject("GET", r"/virtualMachines/vm-pending$", 503, times=100)  # then ARM is down for every retry
    with pytest.raises(Exception):
        app.runtime.invoke("containment_execute", request=request)
    fake.clear_faults()
    failed = app.runtime.invoke(
        "containment_record_failure", request={**request, "error": "read VM: 503", "attempts": 3}
    )
    assert failed["status"] == "failed" and failed["failure"]["partiallyApplied"] is True

    resp = release(app, incident_id)

    assert resp.json()["status"] == "released"
    assert "networkSecurityGroup" not in fake.get_resource(nics[0])["properties"]


def test_crash_after_the_account_patch_then_retries_exhausted_is_still_released(enforce):
    app, fake = enforce, enforce.fake
    oid = "0f0f0f0f-0000-4000-8000-0000000000e2"
    fake.add_user(oid, "fay@contoso.example")
    incident_id = ingest(app, p1_alert(account(object_id=oid)))
    action_id = actions(app, incident_id)["disable-user"]["actionId"]

    def crashed(row):  # PATCH landed, nothing recorded after the write-ahead (a row without the marker)
        row["account"].pop("disabledByUs", None)
        row["account"].pop("sessionsRevoked", None)
        row["status"] = "in-progress"

    _rewrite(app, incident_id, action_id, crashed)
    request = app.durable.activity_calls("containment_execute")[0]["input"]
    failed = app.runtime.invoke(
        "containment_record_failure", request={**request, "error": "read account: 503", "attempts": 3}
    )
    assert failed["failure"]["partiallyApplied"] is True

    assert release(app, incident_id).json()["status"] == "released"
    assert fake.get_user(oid)["accountEnabled"] is True


def test_row_left_in_progress_by_a_run_that_is_gone_is_released(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-stuck")
    incident_id = ingest(app, p1_alert(host(vm)))
    action_id = actions(app, incident_id)["isolate-vm"]["actionId"]
    # The run completed (or was terminated) but the row still says in-progress: recording its end failed.
    _rewrite(app, incident_id, action_id, lambda row: row.update(status="in-progress"))

    resp = release(app, incident_id)

    assert resp.status == 200 and resp.json()["status"] == "released"
    assert "networkSecurityGroup" not in fake.get_resource(nics[0])["properties"]
    row = actions(app, incident_id)["isolate-vm"]
    assert row["status"] == "released" and row["failure"]["code"] == "RunStopped"


def test_without_a_run_check_only_an_in_progress_row_older_than_every_retry_is_stuck(enforce):
    from shared.containment import ATTEMPTS, IN_PROGRESS_STUCK_AFTER, RETRY_INTERVAL
    from shared.errors import ConflictError

    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-old")
    incident_id = ingest(app, p1_alert(host(vm)))
    action_id = actions(app, incident_id)["isolate-vm"]["actionId"]
    service = app.context.containment
    _rewrite(app, incident_id, action_id, lambda row: row.update(status="in-progress"))
    with pytest.raises(ConflictError):
        service.release(incident_id, ANALYST, "too early")
    assert fake.get_resource(nics[0])["properties"].get("networkSecurityGroup") is not None

    old = service.clock() - IN_PROGRESS_STUCK_AFTER - timedelta(minutes=1)
    _rewrite(app, incident_id, action_id, lambda row: row.update(updatedAt=isoformat(old)))
    assert service.release(incident_id, ANALYST, "stuck")["status"] == "released"
    assert "networkSecurityGroup" not in fake.get_resource(nics[0])["properties"]
    # The bound covers every attempt of execute and of record_failure at the host's function timeout.
    timeout = json.loads((ROOT / "host.json").read_text())["functionTimeout"]
    h, m, s = (int(x) for x in timeout.split(":"))
    assert 2 * ATTEMPTS * (timedelta(hours=h, minutes=m, seconds=s) + RETRY_INTERVAL) <= IN_PROGRESS_STUCK_AFTER


def test_account_enabled_null_is_a_final_failure_never_a_success(enforce):
    app, fake = enforce, enforce.fake
    oid = "0f0f0f0f-0000-4000-8000-0000000000e3"
    fake.add_user(oid, "gus@contoso.example", enabled=None)

    incident_id = ingest(app, p1_alert(account(object_id=oid)))

    row = actions(app, incident_id)["disable-user"]
    assert row["status"] == "failed" and row["failure"]["code"] == "AccountStateUnknown"
    assert "accountEnabled" in row["failure"]["reason"] and row["failure"]["partiallyApplied"] is False
    assert containment_writes(fake) == []  # no PATCH, no revoke
    assert len(fake.requests("GET", f"/users/{oid}")) == 2  # read once more before giving up
    assert "containment.executed" not in app.timeline(incident_id)


def test_account_enabled_null_once_is_read_again_and_contained(enforce):
    app, fake = enforce, enforce.fake
    oid = "0f0f0f0f-0000-4000-8000-0000000000e4"
    fake.add_user(oid, "hal@contoso.example")
    fake.inject(
        "GET",
        rf"/users/{oid}$",
        200,
        body={"id": oid, "userPrincipalName": "hal@contoso.example", "userType": "Member", "accountEnabled": None},
    )

    incident_id = ingest(app, p1_alert(account(object_id=oid)))

    assert actions(app, incident_id)["disable-user"]["status"] == "contained"
    assert fake.get_user(oid)["accountEnabled"] is False
    assert len(fake.requests("GET", f"/users/{oid}")) == 2
