"""Write-back to Sentinel through the HTTPS fake with the real ARM pipeline client: what analysts see in their
console, incident updates coming back, limits, failures."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.writeback.conftest import (
    CONTOSO_TENANT,
    EVIDENCE_BASE,
    JORDAN,
    OTHER_SUB,
    analyst_edit,
    comments_of,
    host_entity,
    incident_rid,
    ip_entity,
    labels_of,
    seed_sentinel,
    seed_vm,
    sentinel_payload,
    sentinel_writes,
    strip_tags,
    update_payload,
)

ANA = "ana.analyst@contoso.example"


def test_sentinel_incident_gets_the_comment_labels_and_status_and_keeps_the_analysts_labels(wb):
    wb.fake.add_user(*JORDAN)
    payload = sentinel_payload()
    seed_sentinel(
        wb.fake,
        payload,
        labels=[
            {"labelName": "vip-user", "labelType": "User"},
            {"labelName": "Exfil-rule", "labelType": "AutoAssigned"},
        ],
    )
    rid = incident_rid(payload)
    seeded_etag = wb.fake.get_resource(rid)["etag"]
    iid = wb.post_sentinel(payload)["incidentId"]

    assert wb.runbook(iid)["writeback"]["status"] == "written"
    doc = wb.fake.get_resource(rid)["properties"]
    assert labels_of(wb.fake, rid) == ["vip-user", "Exfil-rule", "soc-responder", "P1", "contained"]
    assert [x.get("labelType") for x in doc["labels"][:2]] == ["User", "AutoAssigned"]  # sent back as read
    assert doc["status"] == "Active" and doc["severity"] == "High"  # High is already in step with P1: kept
    assert doc["title"] == payload["object"]["properties"]["title"]
    [put] = [r for r in wb.fake.requests("PUT", rid) if r.path.lower() == rid.lower()]
    assert put.header("If-Match") == seeded_etag and put.body["etag"] == seeded_etag

    [comment] = comments_of(wb.fake, rid)
    text = comment["properties"]["message"]
    plain = strip_tags(text)
    incident = wb.incident(iid)
    assert "P1 Critical" in plain and f"score {incident['score']}/10" in plain
    for hit in incident["triage"]["rulesFired"]:  # why: every rule that fired
        assert hit["ruleId"] in plain and hit["description"] in plain
    assert "account jordan.lee@contoso.example disabled and its sign-in sessions revoked" in plain
    emails = [n for n in incident["notifications"] if n["channel"] == "email"]
    calls = [n for n in incident["notifications"] if n["channel"] == "call"]
    assert emails and len(calls) == 2
    assert f"{emails[0]['sentAt']} — email" in plain and "soc-alerts@contoso.example" in plain
    dana = next(c for c in calls if c["contactName"] == "Dana Reyes")  # issue 14: rows named by number, not order
    assert f"{dana['placedAt']} — call attempt 1 to Dana Reyes (+***0100)" in plain
    assert "+15555550100" not in text
    assert f'href="{EVIDENCE_BASE}/api/incidents/{iid}"' in text
    assert len(text) <= 30_000

    [event] = wb.events(iid, "writeback.sentinel")
    assert event["data"]["changes"] == {
        "status": ["New", "Active"],
        "comment": "added",
        "labelsAdded": ["soc-responder", "P1", "contained"],
    }
    assert event["phase"] == "Notify" and event["actor"] == "soc-responder"


def test_priority_changes_through_the_api_reach_sentinel_by_the_sync_timer(wb):
    payload = sentinel_payload(severity="Medium", tactics=[])  # Medium, nothing raising it: P3
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    body = wb.post_sentinel(payload)
    iid = body["incidentId"]
    assert body["priority"] == "P3"
    assert labels_of(wb.fake, rid) == ["soc-responder", "P3"]
    [first] = comments_of(wb.fake, rid)

    r = wb.post(f"/api/incidents/{iid}/priority", {"actor": ANA, "priority": "P2", "reason": "VIP account"})
    assert r.status == 200, r.text
    wb.sync()

    doc = wb.fake.get_resource(rid)["properties"]
    assert doc["severity"] == "High" and labels_of(wb.fake, rid) == ["soc-responder", "P2"]  # P3 was ours: removed
    [updated] = comments_of(wb.fake, rid)  # the same comment, updated in place
    assert updated["id"] == first["id"] and "P2 High" in updated["properties"]["message"]
    event = wb.events(iid, "writeback.sentinel")[-1]
    assert event["data"]["changes"]["severity"] == ["Medium", "High"]
    assert event["data"]["changes"]["labelsRemoved"] == ["P3"] and event["data"]["changes"]["comment"] == "updated"


def test_a_severity_change_made_in_sentinel_is_a_priority_change_by_the_analyst(wb):
    payload = sentinel_payload(severity="Medium", tactics=[])
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    wb.fake.clear_log()

    analyst_edit(wb.fake, rid, severity="Low", owner={"userPrincipalName": ANA, "assignedTo": "Ana Analyst"})
    body = wb.post_sentinel(update_payload(wb.fake, payload))
    assert (body["outcome"], body["priority"]) == ("updated", "P4")

    [changed] = wb.events(iid, "sentinel.incident-updated")
    assert changed["actor"] == ANA and changed["actorType"] == "analyst"
    assert changed["data"]["changes"] == {"severity": ["Medium", "Low"], "owner": [None, ANA]}
    prio = [e for e in wb.events(iid, "priority.changed") if e["actor"] == ANA]
    assert len(prio) == 1 and prio[0]["data"]["from"] == "P3" and prio[0]["data"]["to"] == "P4"
    assert "Microsoft Sentinel" in prio[0]["data"]["reason"]
    assert [m for m in wb.fake.sent_mail() if "Priority changed P3 → P4" in (m.subject or "")]

    wb.sync()  # Low is in step with P4: the analyst's severity stays; only our labels and comment follow
    assert wb.fake.get_resource(rid)["properties"]["severity"] == "Low"
    assert labels_of(wb.fake, rid) == ["soc-responder", "P4"]
    # The same update delivered again changes nothing more.
    again = wb.post_sentinel(update_payload(wb.fake, payload))
    assert again["outcome"] == "duplicate" and len(wb.events(iid, "priority.changed")) == 1


def test_sentinel_cannot_raise_to_p1_and_high_on_a_p1_changes_nothing(wb):
    payload = sentinel_payload(severity="Low", tactics=[])
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    analyst_edit(wb.fake, rid, severity="High")
    assert wb.post_sentinel(update_payload(wb.fake, payload))["priority"] == "P2"  # what High means at ingest
    assert wb.durable.status(f"runbook-{iid}-2") is None  # no P1 runbook from a Sentinel severity


def test_our_own_write_back_coming_back_as_an_update_does_not_loop(wb):
    wb.fake.add_user(*JORDAN)
    # a named P1 detection (issue 13: a tactic alone no longer lifts a Medium to P1): raised to P1, we write High
    payload = sentinel_payload(severity="Medium", alert_type="VM_CredentialDumping")
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    assert wb.fake.get_resource(rid)["properties"]["severity"] == "High"
    before = wb.incident(iid)
    wb.fake.clear_log()

    for _ in range(3):  # Sentinel may deliver the update of our write more than once
        body = wb.post_sentinel(update_payload(wb.fake, payload))
        assert (body["outcome"], body["priority"]) == ("duplicate", "P1")
        wb.sync()
    wb.sync()

    assert wb.fake.requests(path_contains="Microsoft.SecurityInsights") == []  # not even a read
    after = wb.incident(iid)
    assert after["priority"] == "P1" and after["runbookEpoch"] == before["runbookEpoch"]
    echoes = wb.events(iid, "sentinel.update-received")
    assert len(echoes) == 3 and echoes[0]["data"]["ownWriteBack"] == ["severity", "status"]
    assert not wb.events(iid, "sentinel.incident-updated")


def test_a_concurrent_edit_gets_412_and_is_merged_not_overwritten(wb):
    payload = sentinel_payload(severity="Medium", tactics=[])
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    reads = []

    def read_then_analyst_edits(req, m):
        current = wb.fake.get_resource(rid)
        reads.append(current["etag"])
        if len(reads) == 1:  # between our read and our write, an analyst assigns it and adds a label
            analyst_edit(
                wb.fake,
                rid,
                owner={"userPrincipalName": ANA},
                labels=[*current["properties"].get("labels", []), {"labelName": "phishing-campaign"}],
            )
        return 200, current

    path = rid.split("/providers/Microsoft.SecurityInsights")[1]
    wb.fake.route("GET", re.escape(path) + "$", read_then_analyst_edits)
    iid = wb.post_sentinel(payload)["incidentId"]

    puts = [r for r in wb.fake.requests("PUT") if r.path.lower() == rid.lower()]
    assert [p.status for p in puts] == [412, 200]
    assert [p.header("If-Match") for p in puts] == reads
    doc = wb.fake.get_resource(rid)["properties"]
    assert labels_of(wb.fake, rid) == ["phishing-campaign", "soc-responder", "P3"]
    assert doc["owner"] == {"userPrincipalName": ANA} and doc["status"] == "Active"
    assert wb.events(iid, "writeback.sentinel")[0]["data"]["concurrentEdits"] == 1


def test_dry_run_writes_nothing_back(wb):
    payload = sentinel_payload(sub=OTHER_SUB, entities=[ip_entity("203.0.113.9")])  # no partner: RESPONSE_MODE dry-run
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    before = wb.fake.get_resource(rid)
    iid = wb.post_sentinel(payload)["incidentId"]
    wb.sync()
    wb.post_sentinel(update_payload(wb.fake, payload))
    wb.sync()

    assert wb.fake.requests(path_contains="Microsoft.SecurityInsights") == []
    assert wb.fake.get_resource(rid) == before and comments_of(wb.fake, rid) == []
    [skipped] = wb.events(iid, "writeback.skipped")
    assert skipped["data"]["responseMode"] == "dry-run" and skipped["data"]["targets"] == [
        rid.replace("/Incidents/", "/incidents/")
    ]
    assert skipped["data"]["wouldWrite"]["labels"] == ["soc-responder", "P1"]


def test_a_sentinel_api_failure_leaves_containment_and_calls_untouched(wb):
    vm, nic = seed_vm(wb.fake, "vm-files-01")
    payload = sentinel_payload(alert_type="Ransomware_FileEncryption", entities=[host_entity(vm), ip_entity()])
    seed_sentinel(wb.fake, payload)
    wb.fake.inject(None, r"Microsoft\.SecurityInsights", 503, times=1000)

    iid = wb.post_sentinel(payload)["incidentId"]

    out = wb.runbook(iid)
    assert out["containment"]["status"] == "contained"
    assert "soc-quarantine-eastus" in wb.fake.get_resource(nic)["properties"]["networkSecurityGroup"]["id"]
    assert len(wb.fake.calls()) == 2 and wb.durable.status(f"escalation-{iid}")["runtimeStatus"] == "Running"
    assert [m for m in wb.fake.sent_mail() if iid in (m.body_content or "")]
    assert out["writeback"]["status"] == "failed"
    [failed] = wb.events(iid, "writeback.failed")
    assert failed["data"]["error"]["status"] == 503 and failed["data"]["final"] is False
    assert failed["data"]["nextAttemptAt"]
    assert wb.incident(iid)["status"] == "contained"
    # The timer does not hammer a failing Sentinel before the backoff is due.
    wb.fake.clear_log()
    wb.sync()
    assert wb.fake.requests(path_contains="Microsoft.SecurityInsights") == []


def test_an_access_denied_is_evidenced_once_with_the_role_to_grant(wb):
    payload = sentinel_payload(severity="Medium", tactics=[])
    seed_sentinel(wb.fake, payload)
    wb.fake.inject(None, r"Microsoft\.SecurityInsights", 403, times=1000)
    iid = wb.post_sentinel(payload)["incidentId"]
    [failed] = wb.events(iid, "writeback.failed")
    assert failed["data"]["final"] is True and "Microsoft Sentinel Responder" in failed["summary"]
    wb.fake.clear_log()
    wb.sync()
    wb.sync()
    assert wb.fake.requests(path_contains="Microsoft.SecurityInsights") == []  # not retried until something changes
    assert len(wb.events(iid, "writeback.failed")) == 1

    wb.fake.clear_faults()
    assert wb.post(f"/api/incidents/{iid}/priority", {"actor": ANA, "priority": "P2", "reason": "r"}).status == 200
    wb.sync()
    assert labels_of(wb.fake, incident_rid(payload)) == ["soc-responder", "P2"]


def test_an_incident_that_did_not_come_from_sentinel_is_written_back_once_a_sentinel_incident_joins(wb):
    r = wb.post(
        "/api/alerts",
        {
            "source": "fortigate",
            "id": "fw-77",
            "title": "Outbound beacon",
            "score": 5,
            "observedAt": "2026-11-21T13:00:00Z",
            "tenantId": CONTOSO_TENANT,
            "entities": [{"kind": "ip", "address": "185.220.101.4"}],
        },
    )
    iid = r.json()["incidentId"]
    assert wb.runbook(iid)["writeback"] == {"incidentId": iid, "status": "no-target"}
    assert wb.fake.requests(path_contains="Microsoft.SecurityInsights") == []

    payload = sentinel_payload(severity="Medium", tactics=[], entities=[ip_entity()])
    seed_sentinel(wb.fake, payload)
    joined = wb.post_sentinel(payload)
    assert (joined["incidentId"], joined["outcome"]) == (iid, "grouped")
    wb.sync()
    rid = incident_rid(payload)
    assert labels_of(wb.fake, rid) == ["soc-responder", "P3"]
    [comment] = comments_of(wb.fake, rid)
    assert iid in comment["properties"]["message"] and "2 in this incident" in comment["properties"]["message"]


def test_writeback_targets_none_turns_it_off_and_says_so_once(wb):
    wb.configure(WRITEBACK_TARGETS="none")
    payload = sentinel_payload(severity="Medium", tactics=[])
    seed_sentinel(wb.fake, payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    wb.sync()
    assert wb.fake.requests(path_contains="Microsoft.SecurityInsights") == []
    [skipped] = wb.events(iid, "writeback.skipped")
    assert "turned off" in skipped["summary"]


@pytest.mark.slow
def test_an_incident_with_150_alerts_keeps_one_comment_within_sentinels_limits(wb):
    payload = sentinel_payload(severity="Medium", tactics=[], entities=[ip_entity()])
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    for i in range(150):
        r = wb.post(
            "/api/alerts",
            {
                "source": "fortigate",
                "id": f"fw-{i}",
                "title": f"Beacon to C2 #{i} " + "x" * 300,
                "score": 5,
                "observedAt": "2026-11-21T13:10:00Z",
                "tenantId": CONTOSO_TENANT,
                "entities": [{"kind": "ip", "address": "185.220.101.4"}],
            },
        )
        assert r.json()["incidentId"] == iid, r.text
        if i % 30 == 29:
            wb.sync()
    wb.sync()

    [comment] = comments_of(wb.fake, rid)
    message = comment["properties"]["message"]
    assert len(message) <= 30_000 and "151 in this incident" in message
    comment_puts = wb.fake.requests("PUT", "/comments/")
    assert {r.path.lower() for r in comment_puts} == {comment["id"].lower()}
    assert len(comment_puts) <= 6  # written once, then updated in place at most once per sync that saw a change
    assert len(sentinel_writes(wb.fake)) <= 8
    assert labels_of(wb.fake, rid) == ["soc-responder", "P3"]


def test_a_transient_failure_is_retried_with_backoff_and_recovers(wb):
    from shared.adapters.defender_alerts import ArmDefenderAlerts
    from shared.adapters.sentinel import ArmSentinelIncidents
    from shared.writeback.service import WritebackService

    now = [datetime(2026, 11, 22, 9, 0, tzinfo=UTC)]
    ctx = wb.context
    service = WritebackService(
        ctx.store,
        ctx.partners,
        ctx.settings,
        ArmSentinelIncidents(ctx.settings),
        ArmDefenderAlerts(ctx.settings),
        clock=lambda: now[0],
    )
    wb.configure(WRITEBACK_TARGETS="none")  # the runbook's own write-back stays out of the way
    payload = sentinel_payload(severity="Medium", tactics=[])
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    iid = wb.post_sentinel(payload)["incidentId"]

    wb.fake.inject("GET", r"Microsoft\.SecurityInsights/incidents/[^/]+$", 503, times=1000)
    assert service.write_back(iid, "timer")["status"] == "failed"
    assert len(wb.fake.requests("GET", rid)) > 1  # the ARM pipeline's own retries came first
    wb.fake.clear_log()
    now[0] += timedelta(seconds=30)
    assert service.sync(now[0])["outcomes"] == {"deferred": 1}
    assert wb.fake.requests(path_contains="SecurityInsights") == []
    now[0] += timedelta(seconds=31)
    service.sync(now[0])
    failed = wb.events(iid, "writeback.failed")
    assert [e["data"]["attempt"] for e in failed] == [1, 2]
    assert failed[1]["data"]["nextAttemptAt"] == "2026-11-22T09:03:01.000Z"  # 2 minutes after the second attempt

    wb.fake.clear_faults()
    now[0] += timedelta(minutes=2)
    report = service.sync(now[0])
    assert report["outcomes"] == {"written": 1}
    assert labels_of(wb.fake, rid) == ["soc-responder", "P3"]
    recovered = wb.events(iid, "writeback.sentinel")[-1]
    assert recovered["data"]["afterFailures"] == 2


def test_approval_and_release_made_through_the_api_show_up_as_labels(wb, tmp_path):
    import json

    from tests.writeback.conftest import ROOT

    registry = json.loads((ROOT / "config/partners.json").read_text())
    registry["partners"][0]["responseMode"] = "approve"
    (tmp_path / "partners.json").write_text(json.dumps(registry))
    wb.configure(PARTNERS_FILE=str(tmp_path / "partners.json"), CONTAINMENT_RETRY_BACKOFF_SECONDS="0")
    vm, _nic = seed_vm(wb.fake, "vm-db-02")
    payload = sentinel_payload(alert_type="Ransomware_FileEncryption", entities=[host_entity(vm)])
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    assert labels_of(wb.fake, rid) == ["soc-responder", "P1", "held-for-approval"]

    r = wb.post(f"/api/incidents/{iid}/approve", {"actor": ANA, "decision": "approve", "reason": "go"})
    assert r.status in (200, 202), r.text
    wb.sync()
    assert labels_of(wb.fake, rid) == ["soc-responder", "P1", "contained"]
    assert "quarantine NSG attached" in comments_of(wb.fake, rid)[0]["properties"]["message"]

    r = wb.post(f"/api/incidents/{iid}/release", {"actor": ANA, "reason": "partner re-imaged the VM"})
    assert r.status == 200, r.text
    wb.sync()
    assert labels_of(wb.fake, rid) == ["soc-responder", "P1", "released"]
    assert wb.fake.get_resource(rid)["properties"]["status"] == "Active"  # released is still open: partner remediates
    assert len(comments_of(wb.fake, rid)) == 1


def test_an_incident_already_at_100_comments_gets_no_more_but_still_its_labels(wb):
    payload = sentinel_payload(severity="Medium", tactics=[])
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    for i in range(100):
        wb.fake.add_resource(f"{rid}/comments/analyst-{i}", {"properties": {"message": f"note {i}"}})
    iid = wb.post_sentinel(payload)["incidentId"]
    assert len(comments_of(wb.fake, rid)) == 100 and wb.fake.requests("PUT", "/comments/") == []
    assert labels_of(wb.fake, rid) == ["soc-responder", "P3"]
    [event] = wb.events(iid, "writeback.sentinel")
    assert "100 comments" in event["summary"]
    wb.fake.clear_log()
    wb.sync()
    assert wb.fake.requests(path_contains="Microsoft.SecurityInsights") == []  # said once, not retried every minute


def test_the_activity_run_twice_after_a_crash_writes_nothing_twice(wb):
    payload = sentinel_payload(severity="Medium", tactics=[])
    seed_sentinel(wb.fake, payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    # The host died after the writes, before the write-back recorded them: its state is gone.
    wb.store.set_state(f"writeback:{iid}", {}, None)
    wb.fake.clear_log()

    result = wb.runtime.invoke("write_back_incident", request={"incidentId": iid, "trigger": "runbook"})

    assert result["status"] == "unchanged"
    assert [r.method for r in sentinel_writes(wb.fake)] == []  # read, found everything in place
    assert len(wb.events(iid, "writeback.sentinel")) == 1
    assert len(comments_of(wb.fake, incident_rid(payload))) == 1


def test_a_comment_failure_keeps_what_was_written_to_the_incident(wb):
    payload = sentinel_payload(severity="Medium", tactics=[])
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    wb.fake.inject("PUT", r"/comments/[^/]+$", 503, times=1000)
    iid = wb.post_sentinel(payload)["incidentId"]
    assert labels_of(wb.fake, rid) == ["soc-responder", "P3"] and comments_of(wb.fake, rid) == []
    assert [e["eventType"] for e in wb.events(iid) if e["eventType"].startswith("writeback.")] == [
        "writeback.sentinel",
        "writeback.failed",
    ]

    wb.fake.clear_faults()
    wb.fake.clear_log()
    result = wb.runtime.invoke("write_back_incident", request={"incidentId": iid, "trigger": "runbook"})
    assert result["status"] == "written"
    assert [(r.method, r.path.rsplit("/", 2)[-2]) for r in sentinel_writes(wb.fake)] == [("PUT", "comments")]
    assert len(comments_of(wb.fake, rid)) == 1
    # The labels we added are still known to be ours: a priority change swaps them.
    wb.post(f"/api/incidents/{iid}/priority", {"actor": ANA, "priority": "P2", "reason": "r"})
    wb.sync()
    assert labels_of(wb.fake, rid) == ["soc-responder", "P2"]


def test_a_priority_lowered_in_sentinel_stops_the_phone_escalation_at_once(wb):
    payload = sentinel_payload()  # the sample: High + Exfiltration → P1, phones ring
    seed_sentinel(wb.fake, payload)
    rid = incident_rid(payload)
    iid = wb.post_sentinel(payload)["incidentId"]
    escalation = f"escalation-{iid}"
    assert wb.app.durable.status(escalation)["runtimeStatus"] == "Running"
    calls_before = len(wb.fake.calls())
    analyst_edit(wb.fake, rid, severity="Low")
    body = wb.post_sentinel(update_payload(wb.fake, payload))
    assert body["priority"] == "P4"
    # Stopped by the update itself, not at the next scheduled attempt.
    assert wb.app.durable.status(escalation)["runtimeStatus"] == "Completed"
    wb.app.durable.advance(timedelta(hours=2))
    assert len(wb.fake.calls()) == calls_before
