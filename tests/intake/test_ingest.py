"""Ingest routes through the real handlers, Azurite and the durable host."""

from __future__ import annotations

import copy
from datetime import UTC

from tests.fixtures.app import sample

DEFENDER = "/api/alerts/defender"
SENTINEL = "/api/incidents/sentinel"
GENERIC = "/api/alerts"


def test_defender_arm_alert_becomes_p1_incident_with_evidence(app):
    r = app.post(DEFENDER, sample("defender-alert-arm.json"))
    assert r.status == 202, r.text
    body = r.json()
    assert body["priority"] == "P1" and body["outcome"] == "created" and body["incidentId"].startswith("INC-")
    inc = app.get(f"/api/incidents/{body['incidentId']}")
    assert inc.status == 200
    doc = inc.json()
    assert doc["partnerId"] == "contoso"
    fired = [h["ruleId"] for h in doc["triage"]["rulesFired"]]
    assert fired[:3] == ["severity-base", "impact-tactic", "crypto-mining"]
    assert "catalogue-crypto-mining" in fired  # the rules derived from the alert catalogue (issue 13)
    assert doc["sla"]["triageDue"] and doc["sla"]["firstResponseDue"] and doc["sla"]["responseSlaDue"]
    types = [e["eventType"] for e in doc["timeline"]]
    assert types[:2] == ["alert.received", "incident.triaged"]
    assert "containment.planned" in types  # the runbook ran and recorded its plan
    assert {e["criterion"] for e in doc["timeline"][:2]} == {"CC7.3"}
    status = app.durable.status(f"runbook-{body['incidentId']}-1")
    assert status["runtimeStatus"] == "Completed"
    assert app.get(f"/api/incidents/{body['incidentId']}/verify").json()["valid"] is True


def test_connector_shape_and_generic_alert(app):
    r1 = app.post(DEFENDER, sample("defender-alert-connector.json"))
    r2 = app.post(GENERIC, sample("generic-alert.json"))
    assert (r1.status, r1.json()["priority"]) == (202, "P2")
    assert (r2.status, r2.json()["priority"]) == (202, "P2")
    assert r1.json()["incidentId"] != r2.json()["incidentId"]


def test_sentinel_trigger_and_bare_resource_are_one_incident(app):
    trigger = sample("sentinel-incident-trigger.json")
    a = app.post(SENTINEL, trigger).json()
    b = app.post(SENTINEL, trigger["object"]).json()
    assert a["incidentId"] == b["incidentId"] and b["outcome"] == "duplicate"
    assert a["priority"] == "P1"
    # one runbook only
    assert [i for i in app.durable.instance_ids() if i.startswith("runbook-")] == [f"runbook-{a['incidentId']}-1"]


def test_redelivery_gets_same_incident_and_no_second_runbook(app):
    first = app.post(DEFENDER, sample("defender-alert-arm.json")).json()
    for _ in range(3):
        again = app.post(DEFENDER, sample("defender-alert-arm.json")).json()
        assert again["incidentId"] == first["incidentId"] and again["outcome"] == "duplicate"
    assert len(app.durable.activity_calls("plan_response")) == 1
    assert app.timeline(first["incidentId"]).count("alert.duplicate") == 3


def test_defender_alert_inside_sentinel_incident_is_recognised(app):
    alert = sample("defender-alert-arm.json")
    sys_id = alert["properties"]["systemAlertId"]
    trigger = sample("sentinel-incident-trigger.json")
    trigger["object"]["properties"]["alerts"][0]["properties"]["systemAlertId"] = sys_id
    d = app.post(DEFENDER, alert).json()
    s = app.post(SENTINEL, trigger).json()
    assert s["incidentId"] == d["incidentId"] and s["outcome"] == "grouped"
    assert "alert.grouped" in app.timeline(d["incidentId"])


def test_alerts_sharing_an_entity_group_and_take_the_highest_priority(app):
    low = sample("generic-alert.json")
    low["score"] = 5
    first = app.post(GENERIC, low).json()
    assert first["priority"] == "P3"
    worse = sample("generic-alert.json")
    worse.update(id="fgt-other", score=10, title="Same host, much worse")
    second = app.post(GENERIC, worse).json()
    assert second["incidentId"] == first["incidentId"] and second["outcome"] == "grouped"
    assert second["priority"] == "P1"
    doc = app.get(f"/api/incidents/{first['incidentId']}").json()
    assert doc["alertCount"] == 2 and doc["priority"] == "P1" and doc["runbookEpoch"] == 2
    assert "priority.changed" in [e["eventType"] for e in doc["timeline"]]
    # reaching P1 runs the P1 runbook again
    assert app.durable.status(f"runbook-{first['incidentId']}-2")["runtimeStatus"] == "Completed"


def test_grouping_window_is_respected(app):
    a = sample("generic-alert.json")
    b = sample("generic-alert.json")
    b.update(id="later", observedAt="2026-11-21T21:04:55Z")  # 3 h later, window 60 min
    ia = app.post(GENERIC, a).json()["incidentId"]
    ib = app.post(GENERIC, b).json()["incidentId"]
    assert ia != ib


def test_unknown_partner_is_recorded_and_routed_to_soc(app):
    alert = sample("generic-alert.json")
    alert["tenantId"] = "99999999-9999-9999-9999-999999999999"
    r = app.post(GENERIC, alert)
    assert r.status == 202
    doc = app.get(f"/api/incidents/{r.json()['incidentId']}").json()
    assert doc["partnerId"] is None
    planned = next(e for e in doc["timeline"] if e["eventType"] == "notification.planned")
    assert planned["data"]["notification"]["routedToSoc"] is True
    assert "soc-oncall@soc.example" in planned["data"]["notification"]["emailTo"]


def test_twenty_concurrent_deliveries_make_one_incident(app):
    payload = sample("defender-alert-arm.json")
    results = app.post_together(DEFENDER, [copy.deepcopy(payload) for _ in range(20)], timeout=60)
    assert [r.status for r in results] == [202] * 20
    ids = {r.json()["incidentId"] for r in results}
    assert len(ids) == 1
    assert sorted(r.json()["outcome"] for r in results).count("created") == 1
    incident_id = ids.pop()
    assert [i for i in app.durable.instance_ids() if i.startswith("runbook-")] == [f"runbook-{incident_id}-1"]
    assert len(app.durable.activity_calls("plan_response")) == 1
    assert app.get(f"/api/incidents/{incident_id}/verify").json()["valid"] is True
    assert len(list(app.store.iter_incidents())) == 1


def test_unknown_incident_is_404(app):
    assert app.get("/api/incidents/INC-nope").status == 404
    assert app.get("/api/incidents/INC-nope/verify").status == 404


def test_a_raise_below_p1_by_a_new_alert_is_notified(app):
    app.fake.add_mailbox("soc-responder@soc.example")
    low = sample("generic-alert.json")
    low["score"] = 5
    first = app.post(GENERIC, low).json()
    worse = sample("generic-alert.json")
    worse.update(id="fgt-raise", score=8, title="Same device, worse")
    second = app.post(GENERIC, worse).json()
    assert (second["incidentId"], second["priority"]) == (first["incidentId"], "P2")
    assert app.durable.status(f"runbook-{first['incidentId']}-2")["runtimeStatus"] == "Completed"
    subjects = [m.subject for m in app.fake.sent_mail()]
    assert len(subjects) == 2 and "P2" in subjects[1]
    assert "notification.email.sent" in app.timeline(first["incidentId"])


def test_concurrent_related_alerts_all_join_one_incident(app):
    first = app.post(GENERIC, sample("generic-alert.json")).json()
    bodies = []
    for i in range(10):
        related = sample("generic-alert.json")
        related.update(id=f"related-{i}", title=f"Related detection {i}")
        bodies.append(related)
    results = app.post_together(GENERIC, bodies, timeout=60)
    assert {r.json()["incidentId"] for r in results} == {first["incidentId"]}
    assert {r.json()["outcome"] for r in results} == {"grouped"}
    doc = app.get(f"/api/incidents/{first['incidentId']}").json()
    # Every join survived the ETag races: none was lost to a concurrent update.
    assert doc["alertCount"] == 11 and len(doc["alerts"]) == 11
    assert app.timeline(first["incidentId"]).count("alert.grouped") == 10
    assert app.get(f"/api/incidents/{first['incidentId']}/verify").json()["valid"] is True


def test_a_join_whose_delivery_failed_part_way_is_finished_by_the_retry(app):
    """The delivery that claimed a related alert died before merging it: the retry must not be a
    'duplicate' that loses the alert and its priority raise."""
    from datetime import datetime

    from shared.intake import generic

    low = sample("generic-alert.json")
    low["score"] = 5
    first = app.post(GENERIC, low).json()
    worse = sample("generic-alert.json")
    worse.update(id="fgt-crashed", score=10, title="Same device, much worse")
    alert = generic.parse(worse, datetime.now(UTC))
    app.store.claim_alert(alert.primary_key, first["incidentId"], datetime.now(UTC))  # then it died
    retry = app.post(GENERIC, worse).json()
    assert (retry["incidentId"], retry["outcome"], retry["priority"]) == (first["incidentId"], "grouped", "P1")
    doc = app.get(f"/api/incidents/{first['incidentId']}").json()
    assert doc["alertCount"] == 2 and "priority.changed" in [e["eventType"] for e in doc["timeline"]]
    assert app.durable.status(f"runbook-{first['incidentId']}-2")["runtimeStatus"] == "Completed"
    # A further delivery is now a plain duplicate.
    assert app.post(GENERIC, worse).json()["outcome"] == "duplicate"
