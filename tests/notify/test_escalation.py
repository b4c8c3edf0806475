"""The P1 phone escalation through the durable host's replay engine, in simulated time, against the ACS fake."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from tests.notify.conftest import CALLBACK_BASE, CALLER_ID, CONTOSO_PHONES, SOC_EMAILS, pager_id


def _roll_back_to_running(inst: dict, task: dict) -> None:
    """Exported durable state as it was while ``task`` (an activity) was running: its completion and everything
    the orchestration did after it are not there yet (the host crashed mid-activity)."""
    tid = task["id"]
    cut = next(i for i, e in enumerate(inst["history"]) if e["EventType"] == 5 and e.get("TaskScheduledId") == tid)
    inst["history"] = inst["history"][:cut]
    keep = next(i for i, r in enumerate(inst["flat"]) if r["id"] == tid)
    inst["flat"] = inst["flat"][: keep + 1]
    inst["tasks"] = {k: t for k, t in inst["tasks"].items() if t["id"] <= tid}
    inst["seq"] = tid + 1
    inst["inbox"] = []
    task["status"] = "running"


def _rows(app, partition: str) -> list[dict]:
    """Notification rows of a partition, with their row ids."""
    return [
        {**doc, "id": rid}
        for rid, doc in (
            (rid, app.store.get_record("Notifications", partition, rid)[0]) for rid in _row_ids(app, partition)
        )
    ]


def _row_ids(app, partition: str) -> list[str]:
    client = app.store._t("Notifications")
    return [e["RowKey"] for e in client.query_entities(f"PartitionKey eq '{partition}'", select=["RowKey"])]


def expected_schedule(start, hours: int) -> list:
    """Attempts at +0/+15/+30/+45 then the top of every hour (start is HH:07:30), up to start + hours."""
    top = start.replace(minute=0, second=0) + timedelta(hours=2)  # first top of the hour >= start + 60 min
    times = [start + timedelta(minutes=m) for m in (0, 15, 30, 45)]
    while top <= start + timedelta(hours=hours):
        times.append(top)
        top += timedelta(hours=1)
    return times


def test_p1_calls_every_emergency_contact_at_the_exact_times_of_the_first_three_hours(notify_app):
    app = notify_app
    start = app.durable.now
    incident_id = app.ingest(10)
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Running"
    # issue 14: the incident's escalation pages each contact number; each number's pager places its calls
    assert status["customStatus"]["state"] == "paged" and status["customStatus"]["contacts"] == 2
    assert sorted(status["customStatus"]["pagers"]) == sorted(pager_id(p) for p in CONTOSO_PHONES)
    pager = app.pager()
    assert pager["customStatus"]["callsThisEpisode"] == 1

    # The first attempt: one createCall per emergency contact, from the caller id, with a per-call callback.
    calls = app.fake.calls()
    assert sorted(c.targets[0] for c in calls) == sorted(CONTOSO_PHONES)
    for call in calls:
        assert call.source_caller_id == CALLER_ID
        cb = urlsplit(call.callback_uri)
        assert f"{cb.scheme}://{cb.netloc}{cb.path}" == f"{CALLBACK_BASE}/api/callbacks/acs"
        query = parse_qs(cb.query)
        assert query["incidentId"] == [incident_id] and len(query["token"][0]) >= 32
        assert pager_id(call.targets[0]) == f"pager-{query['contact'][0]}"  # a hash of the number, not the number
        assert call.operation_context == query["callId"][0]
    assert len({parse_qs(urlsplit(c.callback_uri).query)["token"][0] for c in calls}) == 2  # one secret per call

    app.durable.advance_to(start + timedelta(hours=3))
    want = expected_schedule(start, 3)
    for phone in CONTOSO_PHONES:
        assert app.call_times(phone) == want
    assert len(want) == 6 and want[4] == start.replace(minute=0, second=0) + timedelta(hours=2)
    assert len(app.fake.calls()) == 2 * len(want)
    status = app.pager()
    assert status["customStatus"]["callsThisEpisode"] == 6 and status["customStatus"]["state"] == "waiting"
    assert status["customStatus"]["nextCallAt"] == (want[-1] + timedelta(hours=1)).isoformat()
    pending = app.durable.pending_timers(pager_id(CONTOSO_PHONES[0]))
    assert [t["fire_at"] for t in pending] == [want[-1] + timedelta(hours=1)]
    assert app.escalation(incident_id)["runtimeStatus"] == "Running"
    timeline = app.timeline(incident_id)
    assert timeline.count("call.placed") == 12
    assert "escalation.started" in timeline


def test_ack_after_the_second_attempt_stops_everything(notify_app):
    app = notify_app
    start = app.durable.now
    incident_id = app.ingest(10)
    app.durable.advance_to(start + timedelta(minutes=20))
    assert len(app.call_times()) == 2
    r = app.post(f"/api/incidents/{incident_id}/ack", {"actor": "ana@soc.example", "note": "on it"})
    assert r.status == 200, r.text
    assert r.json()["escalation"] == "stopped" and r.json()["acknowledgedBy"] == "ana@soc.example"
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["outcome"] == "acknowledged" and status["output"]["attempts"] == 2
    # issue 14: the numbers' pagers had nothing else waiting: their episodes ended, no call is due
    for phone in CONTOSO_PHONES:
        assert app.pager(phone)["customStatus"]["state"] == "idle"
        assert app.pager(phone)["customStatus"]["nextCallAt"] is None
    app.durable.advance(timedelta(hours=6))
    assert len(app.call_times()) == 2 and len(app.fake.calls()) == 4  # no call after the acknowledgement
    doc = app.incident(incident_id)
    assert doc["acknowledgedBy"] == "ana@soc.example" and doc["status"] == "acknowledged"
    timeline = app.timeline(incident_id)
    assert timeline.index("incident.acknowledged") < timeline.index("escalation.acknowledged")
    ack = next(e for e in doc["timeline"] if e["eventType"] == "incident.acknowledged")
    assert ack["actor"] == "ana@soc.example" and ack["actorType"] == "analyst" and ack["data"]["note"] == "on it"


def test_limit_reached_gives_the_exhausted_event_and_an_email(notify_app):
    app = notify_app
    app.configure(ESCALATION_MAX_ATTEMPTS="3")
    start = app.durable.now
    incident_id = app.ingest(10)
    app.durable.advance_to(start + timedelta(minutes=44))
    assert app.escalation(incident_id)["runtimeStatus"] == "Running"  # the last call's window is still open
    app.durable.advance_to(start + timedelta(minutes=45))
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Completed" and status["output"]["outcome"] == "exhausted"
    assert app.call_times() == [start, start + timedelta(minutes=15), start + timedelta(minutes=30)]
    assert "escalation.exhausted" in app.timeline(incident_id)
    [mail] = app.mails("Phone escalation exhausted")
    assert set(SOC_EMAILS) <= set(mail.to) and "soc-alerts@contoso.example" in mail.to
    assert "3 call attempt(s)" in mail.body_content
    app.durable.advance(timedelta(hours=3))
    assert len(app.call_times()) == 3


def test_restart_mid_schedule_resumes_the_same_schedule(notify_app):
    from devtools.functions_runtime import LocalFunctionsRuntime
    from function_app import build_app

    app = notify_app
    start = app.durable.now
    incident_id = app.ingest(10)
    app.durable.advance_to(start + timedelta(minutes=40))
    state = app.durable.export_state()
    app.runtime.close()
    # A new host process: new app object, durable state restored from storage.
    restarted = LocalFunctionsRuntime(build_app(), durable_state=state)
    try:
        restarted.durable.advance_to(start + timedelta(hours=3))
        for phone in CONTOSO_PHONES:
            calls = [
                c["time"]
                for c in restarted.durable.activity_calls("place_contact_call", pager_id(phone))
                if (c["result"] or {}).get("attempted")
            ]
            assert calls == expected_schedule(start, 3)
            partition = f"~contact-{pager_id(phone).removeprefix('pager-')}"
            records = [r for r in app.store.list_records("Notifications", partition) if r.get("channel") == "call"]
            assert len(records) == len({r["attempt"] for r in records}) == 6
            assert all(r["announced"] == [incident_id] for r in records)
        assert len(app.fake.calls()) == 2 * 6  # nothing placed twice across the restart
    finally:
        restarted.close()


def test_restart_while_a_call_activity_was_running_does_not_call_twice(notify_app):
    from devtools.functions_runtime import LocalFunctionsRuntime
    from function_app import build_app

    app = notify_app
    start = app.durable.now
    incident_id = app.ingest(10)
    state = app.durable.export_state()
    # The host crashed while the first number's first call was being placed: its activity is re-run after
    # the restart.
    pager = pager_id(CONTOSO_PHONES[0])
    [inst] = [i for i in state["instances"] if i["instance_id"] == pager]
    done = [t for t in inst["tasks"].values() if t["kind"] == "activity" and t["name"] == "place_contact_call"]
    assert done and done[0]["status"] == "completed"
    _roll_back_to_running(inst, done[0])
    # ... and the call had been dialled but its outcome was not recorded yet.
    partition = f"~contact-{pager.removeprefix('pager-')}"
    [record_id] = [r["id"] for r in _rows(app, partition) if r.get("channel") == "call"]
    row, etag = app.store.get_record("Notifications", partition, record_id)
    app.store.put_record("Notifications", partition, record_id, {**row, "status": "placing"}, etag=etag)
    app.runtime.close()
    restarted = LocalFunctionsRuntime(build_app(), durable_state=state)
    try:
        restarted.durable.advance_to(start + timedelta(minutes=16))
        assert len(app.fake.calls()) == 4  # each number once at +0 (the re-run found its row), once at +15
        assert app.timeline(incident_id).count("call.outcome-unknown") == 1
        reruns = [r for r in restarted.durable.activity_calls("place_contact_call", pager) if r["input"]["number"] == 1]
        assert len(reruns) == 2  # the original run and the re-run after the restart
        assert reruns[-1]["result"]["duplicate"] is True
    finally:
        restarted.close()


def test_one_escalation_per_incident_whatever_the_duplicates(notify_app):
    from tests.notify.conftest import generic_alert

    app = notify_app
    incident_id = app.ingest(10, alert_id="dup-1")
    alert = generic_alert(10, alert_id="dup-1")
    for _ in range(3):
        assert app.post("/api/alerts", alert).json()["outcome"] == "duplicate"
    r = app.post(f"/api/incidents/{incident_id}/call", {"actor": "ana@soc.example", "reason": "call again"})
    assert r.status == 200 and r.json()["escalation"] == "already-running"
    assert [i for i in app.durable.instance_ids() if i.startswith("escalation-")] == [f"escalation-{incident_id}"]
    assert len(app.fake.calls()) == 2
    assert "escalation.already-running" in app.timeline(incident_id)


def test_calls_disabled_is_evidenced_and_people_are_emailed(notify_app):
    app = notify_app
    app.configure(ACS_ENDPOINT=None)
    incident_id = app.ingest(10)
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Completed" and status["output"]["outcome"] == "impossible"
    timeline = app.timeline(incident_id)
    assert "call.skipped" in timeline and "escalation.impossible" in timeline
    assert app.mails("Phone escalation exhausted")
    assert app.fake.calls() == []


def test_acs_refusing_a_call_is_evidenced_and_the_schedule_continues(notify_app):
    app = notify_app
    start = app.durable.now
    app.fake.inject("POST", r"^/calling/callConnections$", 403, times=2)
    incident_id = app.ingest(10)
    doc = app.incident(incident_id)
    failed = [e for e in doc["timeline"] if e["eventType"] == "call.failed"]
    assert len(failed) == 2 and failed[0]["data"]["error"]["status"] == 403
    app.durable.advance_to(start + timedelta(minutes=15))
    assert len(app.fake.calls()) == 2  # attempt 2 went through


def test_an_acknowledgement_arriving_while_a_call_is_being_placed_is_not_lost(notify_app):
    app = notify_app
    start = app.durable.now
    incident_id = app.ingest(10)
    iid = f"escalation-{incident_id}"
    raised = []

    def create_call(req, match):
        # Attempt 2 is being placed right now (its activity is running): the event is queued meanwhile.
        if not raised:
            raised.append(True)
            app.durable.raise_event(iid, "Acknowledged", {"actor": "dana", "via": "phone"}, run=False)
        return 201, {
            "callConnectionId": f"cc-{len(raised)}-{req.json['targets'][0]['rawId']}",
            "callConnectionState": "connecting",
            "callbackUri": req.json["callbackUri"],
            "targets": req.json["targets"],
            "correlationId": "corr-1",
        }

    app.fake.route("POST", r"^/calling/callConnections$", create_call)
    app.durable.advance_to(start + timedelta(hours=2))
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Completed" and status["output"]["outcome"] == "acknowledged"
    assert app.call_times() == [start, start + timedelta(minutes=15)]  # no third call
    assert app.durable.pending_timers(iid) == []
    assert app.pager()["customStatus"]["state"] == "idle"


def test_an_acknowledgement_before_the_escalation_started_still_counts(notify_app):
    app = notify_app
    incident_id = app.ingest(8, alert_id="early")  # P2: no call yet
    assert app.post(f"/api/incidents/{incident_id}/ack", {"actor": "ana@soc.example"}).status == 200
    # The runbook's escalation of the same epoch starts late (say the rule changed, or a replay): no call.
    app.runtime.invoke(
        "start_call_escalation",
        request={"incidentId": incident_id, "epoch": 1, "trigger": "p2-rule", "reason": "P2 call rule: always"},
    )
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Completed" and status["output"]["outcome"] == "acknowledged"
    assert status["output"]["attempts"] == 0 and app.fake.calls() == []
