"""Release (docs/spec/containment.md, docs/spec/operator-api.md): exact restore, idempotence, what is never released."""

from __future__ import annotations

from devtools.fakes import json_diff

from .conftest import (
    account,
    actions,
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


def release(app, incident_id: str, reason: str = "partner rebuilt the host"):
    return app.post(f"/api/incidents/{incident_id}/release", {"actor": ANALYST, "reason": reason})


def test_release_restores_each_nics_previous_nsg_exactly_and_re_enables_the_account(enforce):
    app, fake = enforce, enforce.fake
    web = nsg_id("nsg-web")
    vm, nics = seed_vm(fake, "vm-rel", nsgs=[web, None])
    oid = "0f0f0f0f-0000-4000-8000-0000000000b1"
    fake.add_user(oid, "jo@contoso.example")
    seeded = {n: fake.get_resource(n) for n in nics}
    incident_id = ingest(app, p1_alert(host(vm), account(object_id=oid)))
    assert fake.get_user(oid)["accountEnabled"] is False
    fake.clear_log()

    resp = release(app, incident_id)

    assert resp.status == 200
    body = resp.json()
    assert body["status"] == "released" and body["failures"] == [] and body["incidentStatus"] == "released"
    for nic in nics:  # the whole document is as before containment (only the ETag moved on)
        assert json_diff(seeded[nic], fake.get_resource(nic)) == []
    assert fake.get_resource(nics[0])["properties"]["networkSecurityGroup"]["id"] == web
    assert "networkSecurityGroup" not in fake.get_resource(nics[1])["properties"]
    assert fake.get_user(oid)["accountEnabled"] is True
    writes = containment_writes(fake)
    assert sorted(writes) == sorted([("PUT", nics[0]), ("PUT", nics[1]), ("PATCH", f"/v1.0/users/{oid}")])
    rows = actions(app, incident_id)
    assert rows["isolate-vm"]["status"] == rows["disable-user"]["status"] == "released"
    assert rows["isolate-vm"]["release"]["actor"] == ANALYST
    timeline = app.timeline(incident_id)
    assert timeline.count("containment.nic-restored") == 2
    assert {"release.requested", "containment.released", "containment.account-enabled"} <= set(timeline)
    released = [e for e in app.store.list_events(incident_id) if e.event_type == "containment.released"]
    assert all(e.phase.value == "Recover" and e.criterion == "CC7.5" and e.actor == ANALYST for e in released)
    restored = {
        e.data["nic"]: e.data for e in app.store.list_events(incident_id) if e.event_type == "containment.nic-restored"
    }
    assert restored[nics[0]]["after"]["networkSecurityGroup"] == web
    assert restored[nics[1]]["after"]["networkSecurityGroup"] is None
    assert app.store.get_incident(incident_id)[0].status.value == "released"


def test_releasing_twice_is_harmless(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "vm-twice")
    incident_id = ingest(app, p1_alert(host(vm)))
    assert release(app, incident_id).json()["status"] == "released"
    fake.clear_log()

    again = release(app, incident_id)

    assert again.status == 200
    assert again.json()["status"] == "already-released" and "already released" in again.json()["message"]
    assert containment_writes(fake) == []
    assert app.timeline(incident_id).count("release.noop") == 1


def test_release_with_nothing_contained_says_so(enforce):
    app, fake = enforce, enforce.fake
    incident_id = ingest(app, p1_alert(device("fw-edge")))

    resp = release(app, incident_id)

    assert resp.status == 200
    assert resp.json()["status"] == "nothing-contained"
    assert resp.json()["message"].startswith("nothing is contained for this incident")
    assert containment_writes(fake) == []


def test_account_disabled_before_us_is_not_re_enabled(enforce):
    app, fake = enforce, enforce.fake
    oid = "0f0f0f0f-0000-4000-8000-0000000000b2"
    fake.add_user(oid, "off@contoso.example", enabled=False)
    incident_id = ingest(app, p1_alert(account(object_id=oid)))

    resp = release(app, incident_id)

    assert resp.json()["status"] == "nothing-contained"
    assert fake.get_user(oid)["accountEnabled"] is False
    assert containment_writes(fake) == []


def test_nic_changed_by_someone_after_quarantine_is_left_as_they_set_it(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-handled", nsgs=[nsg_id("nsg-old")])
    incident_id = ingest(app, p1_alert(host(vm)))
    forensic = nsg_id("nsg-forensics")
    fake.add_nsg(forensic, "eastus")
    nic = fake.get_resource(nics[0])
    nic["properties"]["networkSecurityGroup"] = {"id": forensic}
    fake.add_resource(nics[0], nic)
    fake.clear_log()

    resp = release(app, incident_id)

    assert resp.json()["status"] == "released"
    assert fake.get_resource(nics[0])["properties"]["networkSecurityGroup"]["id"] == forensic
    assert containment_writes(fake) == []
    [row_nic] = actions(app, incident_id)["isolate-vm"]["nics"]
    assert "left as is" in row_nic["restoreNote"]


def test_release_of_held_actions_withdraws_them_so_a_later_approval_runs_nothing(enforce):
    app, fake = enforce, enforce.fake
    vm, _nics = seed_vm(fake, "vm-held", tags={"soc-isolation": "approval"})
    incident_id = ingest(app, p1_alert(host(vm)))

    assert release(app, incident_id).json()["status"] == "released"
    assert actions(app, incident_id)["isolate-vm"]["status"] == "withdrawn"
    resp = app.post(f"/api/incidents/{incident_id}/approve", {"actor": ANALYST, "decision": "approve"})
    assert resp.status == 200 and resp.json()["actions"] == []
    assert containment_writes(fake) == []


def test_failed_release_is_reported_and_a_retry_finishes_it(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-retry", nsgs=[nsg_id("nsg-prev")])
    incident_id = ingest(app, p1_alert(host(vm)))
    fake.inject("PUT", r"/networkInterfaces/", 403)

    first = release(app, incident_id)

    assert first.status == 200 and first.json()["status"] == "release-failed"
    [failure] = first.json()["failures"]
    assert failure["status"] == 403
    assert "containment.release-failed" in app.timeline(incident_id)
    assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"

    second = release(app, incident_id)
    assert second.json()["status"] == "released"
    assert fake.get_resource(nics[0])["properties"]["networkSecurityGroup"]["id"] == nsg_id("nsg-prev")


def test_lowering_priority_never_releases(enforce):
    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-lower")
    incident_id = ingest(app, p1_alert(host(vm)))
    fake.clear_log()

    resp = app.post(
        f"/api/incidents/{incident_id}/priority",
        {"actor": ANALYST, "priority": "P3", "reason": "false positive suspected"},
    )

    assert resp.status == 200
    assert containment_writes(fake) == []
    assert (
        fake.get_resource(nics[0])["properties"]["networkSecurityGroup"]["id"].lower()
        == quarantine_id("eastus").lower()
    )
    assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"


def test_release_body_and_incident_are_validated(enforce):
    app = enforce
    no_reason = app.post("/api/incidents/INC-x/release", {"actor": ANALYST})
    assert no_reason.status == 400 and no_reason.json()["details"][0]["field"] == "reason"
    blank_actor = app.post("/api/incidents/INC-x/release", {"actor": "   ", "reason": "ok"})
    assert blank_actor.status == 400 and blank_actor.json()["details"][0]["field"] == "actor"
    not_json = app.request("POST", "/api/incidents/INC-x/release", None, headers={"content-type": "text/plain"})
    assert not_json.status == 415
    assert release(app, "INC-does-not-exist").status == 404


def test_release_emails_the_incident_contacts_once(enforce):
    app, fake = enforce, enforce.fake
    fake.add_mailbox("soc-responder@soc.example")
    vm, _nics = seed_vm(fake, "vm-mail")
    incident_id = ingest(app, p1_alert(host(vm)))
    before = len(fake.sent_mail())

    release(app, incident_id)
    release(app, incident_id)  # already released: no second email

    mails = fake.sent_mail()[before:]
    assert len(mails) == 1
    assert "soc-alerts@contoso.example" in mails[0].to + mails[0].cc + mails[0].bcc
    assert incident_id in (mails[0].subject or "") + (mails[0].body_content or "")


def test_release_while_containment_is_running_is_refused_with_409(enforce):
    from .conftest import advance

    app, fake = enforce, enforce.fake
    vm, nics = seed_vm(fake, "vm-busy", nsgs=[None, None])
    # The second NIC fails a whole attempt: the row is in-progress and the run waits 15 s to retry.
    fake.inject("PUT", nics[1].rsplit("/", 1)[-1] + "$", 503, times=4)
    incident_id = ingest(app, p1_alert(host(vm)))
    assert actions(app, incident_id)["isolate-vm"]["status"] == "in-progress"
    fake.clear_log()

    resp = release(app, incident_id)

    assert resp.status == 409 and "still running" in resp.json()["error"]
    assert containment_writes(fake) == []
    assert app.timeline(incident_id)[-2:] == ["release.requested", "release.refused"]
    advance(app, 16)  # the retry finishes the job; release then works
    assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"
    assert release(app, incident_id).json()["status"] == "released"
    assert all("networkSecurityGroup" not in fake.get_resource(n)["properties"] for n in nics)
