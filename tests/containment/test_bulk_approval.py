"""Issue 14, item 4: ``POST /api/approvals`` decides the held actions of many incidents at once, each evidenced
on its own incident."""

from __future__ import annotations

from .conftest import actions, containment_writes, host, ingest, p1_alert, seed_vm

APPROVER = "duty.manager@soc.example"


def _held_fleet(app, n: int) -> list[str]:
    app.configure(BLAST_RADIUS_MAX="1", BLAST_RADIUS_WINDOW_MINUTES="15")
    incidents = [ingest(app, p1_alert(host(seed_vm(app.fake, f"vm-bulk-{i}")[0]))) for i in range(n)]
    assert [actions(app, i)["isolate-vm"]["status"] for i in incidents] == ["contained"] + ["held"] * (n - 1)
    return incidents


def test_bulk_approval_runs_every_held_action_and_evidences_each_incident(enforce):
    app = enforce
    incidents = _held_fleet(app, 4)
    held = incidents[1:]
    r = app.post(
        "/api/approvals",
        {"actor": APPROVER, "decision": "approve", "reason": "storm: approved by duty manager", "incidentIds": held},
    )
    assert r.status == 202, r.text
    body = r.json()
    assert (body["incidents"], body["decided"], body["actions"], body["executions"]) == (3, 3, 3, 3)
    assert [res["incidentId"] for res in body["results"]] == held
    for incident_id in held:
        assert actions(app, incident_id)["isolate-vm"]["status"] == "contained"
        approved = [e for e in app.store.list_events(incident_id) if e.event_type == "containment.approved"]
        assert len(approved) == 1 and approved[0].actor == APPROVER
        assert approved[0].data["reason"] == "storm: approved by duty manager"
    # A repeat converges: nothing is held any more, nothing runs twice.
    writes = len(containment_writes(app.fake))
    again = app.post("/api/approvals", {"actor": APPROVER, "decision": "approve", "incidentIds": held})
    assert again.status == 200 and again.json()["actions"] == 0
    assert len(containment_writes(app.fake)) == writes


def test_bulk_rejection_blocks_and_an_unknown_incident_does_not_fail_the_others(enforce):
    app = enforce
    incidents = _held_fleet(app, 3)
    r = app.post(
        "/api/approvals",
        {"actor": APPROVER, "decision": "reject", "reason": "patch night", "incidentIds": [*incidents[1:], "INC-nope"]},
    )
    assert r.status == 200, r.text
    body = r.json()
    assert (body["decided"], body["notFound"], body["actions"]) == (2, 1, 2)
    assert body["results"][-1] == {"incidentId": "INC-nope", "error": "incident not found"}
    for incident_id in incidents[1:]:
        assert actions(app, incident_id)["isolate-vm"]["status"] == "rejected"
        assert "containment.rejected" in app.timeline(incident_id)


def test_bulk_approval_body_is_validated_and_writes_nothing(enforce):
    app = enforce
    for body, field in [
        ({"actor": APPROVER, "decision": "approve"}, "incidentIds"),
        ({"actor": APPROVER, "decision": "approve", "incidentIds": []}, "incidentIds"),
        ({"actor": APPROVER, "decision": "maybe", "incidentIds": ["INC-1"]}, "decision"),
        ({"actor": APPROVER, "decision": "approve", "incidentIds": ["a/b"]}, "incidentIds"),
        ({"actor": APPROVER, "decision": "approve", "incidentIds": ["INC-x"] * 201}, "incidentIds"),
    ]:
        r = app.post("/api/approvals", body)
        assert r.status == 400, (body, r.text)
        assert field in [d["field"] for d in r.json()["details"]], r.text


SOC_DUTY_PHONE = "+15555550199"  # config/partners.json: soc.emergencyContacts (SOC duty manager)


def test_a_breaker_trip_pages_the_soc_duty_contacts_once_per_breaker_window(enforce):
    app = enforce
    app.fake.add_mailbox("soc-responder@soc.example")
    # issue 14: the partner's two numbers ring from ACS_CALLER_ID (two calls in progress: its limit); the duty
    # number's call takes the pool's second caller number instead of waiting for one of them to end.
    app.configure(ACS_CALLER_IDS="+15555550001")
    incidents = _held_fleet(app, 4)
    duty_calls = [c for c in app.fake.calls() if SOC_DUTY_PHONE in c.targets]
    assert len(duty_calls) == 1  # one page per storm (breaker window), not one per held incident
    pages = [
        next(e for e in app.store.list_events(i) if e.event_type == "soc.breaker-page").data for i in incidents[1:]
    ]
    assert [p["paged"] for p in pages] == [True, False, False]
    assert len({p["pageId"] for p in pages}) == 1
    paged = incidents[1]
    placed = [e for e in app.store.list_events(paged) if e.event_type == "call.placed"]
    assert any(e.data["contact"] == "SOC duty manager" for e in placed)
    # The held email reaches the duty manager's mailbox too.
    held_mail = [m for m in app.fake.sent_mail() if "duty-manager@soc.example" in m.to]
    assert held_mail
