"""Issue 14: one phone escalation per contact number, through the durable replay engine and the ACS fake.

Each number's pager (``pager-{hash of the number}``) places one call at a time, announcing every incident
waiting for the number; pressing 1 acknowledges exactly what the call announced.
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

from tests.fixtures.app import ROOT
from tests.notify.conftest import CONTOSO_PHONES, CONTOSO_TENANT, pager_id

DANA = CONTOSO_PHONES[0]
SOC_DUTY = "+15555550199"


def _calls_to(app, phone: str) -> list:
    return [c for c in app.fake.calls() if c.targets == [phone]]


def _announced(app, call) -> list[str]:
    """The incidents a contact call announced (its row in the contact's partition)."""
    from urllib.parse import parse_qs, urlsplit

    query = parse_qs(urlsplit(call.callback_uri).query)
    row, _ = app.store.get_record("Notifications", f"~contact-{query['contact'][0]}", query["callId"][0])
    return row["announced"]


def _p1s(app, n: int, prefix: str = "storm", tenant: str = CONTOSO_TENANT) -> list[str]:
    return [app.ingest(10, alert_id=f"{prefix}-{i}", title=f"Ransomware on host {i}", tenant=tenant) for i in range(n)]


def _storm(app, n: int, prefix: str = "storm") -> list[str]:
    """``n`` P1s posted while the durable host is paused (a storm), then the host runs."""
    app.runtime.auto_run = False
    try:
        ids = _p1s(app, n, prefix)
    finally:
        app.runtime.auto_run = True
    app.durable.run_until_idle()
    return ids


def _no_overlap(app, phone: str) -> None:
    """No two calls to ``phone`` were on the line at once: each call row ended before the next was created."""
    partition = f"~contact-{pager_id(phone).removeprefix('pager-')}"
    client = app.store._t("Notifications")
    rows = sorted(
        (e["RowKey"], app.store.get_record("Notifications", partition, e["RowKey"])[0])
        for e in client.query_entities(f"PartitionKey eq '{partition}'", select=["RowKey"])
        if e["RowKey"].startswith("call-")
    )
    assert len(rows) >= 2
    for (_, earlier), (_, later) in itertools.pairwise(rows):
        assert earlier["endedAt"] and earlier["endedAt"] <= later["createdAt"]


def _end(app, phone: str) -> None:
    """ACS reports the end of every call to ``phone`` still on the line (nobody answered)."""
    for call in _calls_to(app, phone):
        if "ended" not in call.action_names():
            app.callback(call, "CallDisconnected")
            call.actions.append(("ended", None))  # the test's own mark: this call's end was reported


def test_a_storm_of_five_p1s_rings_each_number_once_announcing_all_and_one_key_press_acknowledges_all(notify_app):
    app = notify_app
    start = app.durable.now
    incidents = _storm(app, 5)
    [call] = _calls_to(app, DANA)  # one call, not five
    assert sorted(_announced(app, call)) == sorted(incidents)
    assert len(_calls_to(app, CONTOSO_PHONES[1])) == 1

    app.callback(call, "CallConnected")
    spoken = call.actions[0][1]["playPrompt"]["text"]["text"]
    assert "5 security incidents need your attention: 5 priority 1" in spoken
    assert "Press 1 to acknowledge all 5 incidents" in spoken
    r = app.callback(call, "RecognizeCompleted", recognitionType="dtmf", dtmfResult={"tones": ["1"]})
    assert r.status == 200 and r.json()["acknowledged"] is True and r.json()["incidentsAcknowledged"] == 5
    for incident_id in incidents:
        status = app.escalation(incident_id)
        assert status["runtimeStatus"] == "Completed" and status["output"]["outcome"] == "acknowledged"
        doc = app.incident(incident_id)
        assert doc["status"] == "acknowledged" and doc["acknowledgedBy"].startswith("Dana Reyes")
        ack = next(e for e in doc["timeline"] if e["eventType"] == "incident.acknowledged")
        assert ack["data"]["via"] == "phone" and ack["actorType"] == "partner"
        assert "call.acknowledged" in [e["eventType"] for e in doc["timeline"]]
        assert any(r.get("contactCallId") and r["status"] == "acknowledged" for r in doc["notifications"])
    # The other number's call announced only these incidents: it is hung up; nobody is called again.
    [other] = _calls_to(app, CONTOSO_PHONES[1])
    assert other.action_names() == ["terminate"]
    app.callback(call, "PlayCompleted")
    app.callback(call, "CallDisconnected")
    app.durable.advance_to(start + timedelta(hours=3))
    assert len(app.fake.calls()) == 2
    assert app.pager()["customStatus"]["state"] == "idle"


def test_one_call_at_a_time_and_at_most_four_calls_in_the_first_hour_whatever_the_incidents(notify_app):
    app = notify_app
    start = app.durable.now
    first = _p1s(app, 1, "a")  # the number is rung at once
    more = _p1s(app, 3, "b")  # arrive while the first call rings: they wait for the line
    [call] = _calls_to(app, DANA)
    assert _announced(app, call) == first
    app.durable.advance(timedelta(seconds=40))
    _end(app, DANA)  # not answered: the line is free, the new incidents are announced now
    calls = _calls_to(app, DANA)
    assert len(calls) == 2 and sorted(_announced(app, calls[1])) == sorted(first + more)
    assert app.call_times()[1] == start + timedelta(seconds=40)  # within a minute of the new P1s
    for i in range(6):  # more P1s keep arriving through the hour; nobody answers
        app.durable.advance(timedelta(minutes=9))
        _p1s(app, 1, f"late-{i}")
        _end(app, DANA)
    first_hour = [t for t in app.call_times() if t < start + timedelta(hours=1)]
    assert len(first_hour) == 4, first_hour  # the SPEC's four calls in the first hour, however many P1s
    _no_overlap(app, DANA)


def test_the_ack_route_for_two_incidents_shortens_the_next_call(notify_app):
    app = notify_app
    start = app.durable.now
    incidents = _storm(app, 5)
    [call] = _calls_to(app, DANA)
    app.callback(call, "CallDisconnected")  # not answered
    for incident_id in incidents[:2]:
        r = app.post(f"/api/incidents/{incident_id}/ack", {"actor": "ana@soc.example"})
        assert r.status == 200 and r.json()["escalation"] == "stopped"
    app.durable.advance_to(start + timedelta(minutes=15))
    calls = _calls_to(app, DANA)
    assert len(calls) == 2 and sorted(_announced(app, calls[1])) == sorted(incidents[2:])
    app.callback(calls[1], "CallConnected")
    assert "3 security incidents need your attention" in calls[1].actions[0][1]["playPrompt"]["text"]["text"]
    # ... and a P1 raised again after its acknowledgement is announced again
    r = app.post(
        f"/api/incidents/{incidents[0]}/priority", {"actor": "ana@soc.example", "priority": "P3", "reason": "fp?"}
    )
    assert r.status == 200, r.text
    r = app.post(
        f"/api/incidents/{incidents[0]}/priority", {"actor": "ana@soc.example", "priority": "P1", "reason": "real"}
    )
    assert r.status == 200, r.text
    app.callback(calls[1], "CallDisconnected")
    calls = _calls_to(app, DANA)
    assert len(calls) == 3 and incidents[0] in _announced(app, calls[2])


def test_a_new_p1_after_the_call_was_answered_is_announced_next_time_not_acknowledged_by_that_call(notify_app):
    app = notify_app
    [first] = _p1s(app, 1, "a")
    [call] = _calls_to(app, DANA)
    app.callback(call, "CallConnected")  # the summary of what the call announced is being spoken
    [late] = _p1s(app, 1, "b")
    app.callback(call, "RecognizeCompleted", recognitionType="dtmf", dtmfResult={"tones": ["one"]})
    assert app.escalation(first)["output"]["outcome"] == "acknowledged"
    assert app.escalation(late)["runtimeStatus"] == "Running"
    assert app.incident(late)["acknowledgedAt"] is None
    app.callback(call, "PlayCompleted")
    app.callback(call, "CallDisconnected")
    calls = _calls_to(app, DANA)
    assert len(calls) == 2 and _announced(app, calls[1]) == [late]  # at once: it is new to this number


def test_two_partners_sharing_one_emergency_number_get_one_call_announcing_both(notify_app, tmp_path):
    app = notify_app
    registry = json.loads((ROOT / "config/partners.json").read_text())
    fabrikam = json.loads(json.dumps(registry["partners"][0]))
    fabrikam.update(
        id="fabrikam",
        name="Fabrikam Inc",
        tenantIds=["11111111-aaaa-bbbb-cccc-222222222222"],
        subscriptionIds=["99999999-2222-3333-4444-555555555555"],
        emergencyContacts=[{"name": "Dana Reyes (on call for Fabrikam)", "phone": DANA}],
    )
    registry["partners"].append(fabrikam)
    path = tmp_path / "partners.json"
    path.write_text(json.dumps(registry))
    app.configure(PARTNERS_FILE=str(path))
    app.runtime.auto_run = False
    try:
        contoso = app.ingest(10, alert_id="c-1")
        fab = app.ingest(10, alert_id="f-1", tenant="11111111-aaaa-bbbb-cccc-222222222222")
    finally:
        app.runtime.auto_run = True
    app.durable.run_until_idle()
    [call] = _calls_to(app, DANA)  # the shared number: one call announcing both partners' incidents
    assert sorted(_announced(app, call)) == sorted([contoso, fab])
    app.callback(call, "CallConnected")
    assert "Contoso Ltd and Fabrikam Inc" in call.actions[0][1]["playPrompt"]["text"]["text"]
    assert {s["pager"] for s in _paged(app, contoso)} & {s["pager"] for s in _paged(app, fab)} == {pager_id(DANA)}


def _paged(app, incident_id: str) -> list[dict]:
    event = next(e for e in app.store.list_events(incident_id) if e.event_type == "escalation.paged")
    assert all("0100" not in s["pager"] for s in event.data["contacts"])  # ids carry a hash, not the number
    return event.data["contacts"]


def test_no_caller_number_carries_more_than_two_calls_and_a_pool_spreads_them(notify_app):
    app = notify_app
    app.runtime.auto_run = False
    try:
        _p1s(app, 1, "c")  # contoso: two numbers
        app.ingest(10, alert_id="soc-1", tenant=None)  # no partner: the SOC's duty number
    finally:
        app.runtime.auto_run = True
    app.durable.run_until_idle()
    # One caller number (ACS_CALLER_ID): two calls at once at most; the third number waits for a free slot.
    assert len(app.fake.calls()) == 2 and {c.source_caller_id for c in app.fake.calls()} == {"+15555550000"}
    waiting = [app.pager(p)["customStatus"]["state"] for p in (*CONTOSO_PHONES, SOC_DUTY)]
    assert "caller numbers busy" in waiting
    app.callback(app.fake.calls()[0], "CallDisconnected")
    app.durable.advance(timedelta(seconds=30))
    assert len(app.fake.calls()) == 3
    assert app.context.notifications.contact_pages.pool.in_use() == {"+15555550000": 2}


def test_a_caller_number_pool_places_calls_to_many_numbers_at_once(notify_app):
    app = notify_app
    app.configure(ACS_CALLER_IDS="+15555550001, +15555550002")
    app.runtime.auto_run = False
    try:
        _p1s(app, 1, "c")
        app.ingest(10, alert_id="soc-1", tenant=None)
    finally:
        app.runtime.auto_run = True
    app.durable.run_until_idle()
    calls = app.fake.calls()
    assert len(calls) == 3  # three numbers rung at once
    used = app.context.notifications.contact_pages.pool.in_use()
    assert sum(used.values()) == 3 and max(used.values()) <= 2
    assert {c.source_caller_id for c in calls} <= {"+15555550000", "+15555550001", "+15555550002"}


def test_the_soc_breaker_page_waits_for_the_duty_number_like_every_call(notify_app):
    from shared.notify.contact_pages import ContactPages

    app = notify_app
    app.runtime.auto_run = False
    try:
        incident_id = app.ingest(10, alert_id="soc-a", tenant=None)  # no partner: the SOC's duty number is paged
    finally:
        app.runtime.auto_run = True
    app.durable.run_until_idle()
    assert len(_calls_to(app, SOC_DUTY)) == 1
    # A breaker page for the same number while its call rings: registered, not dialled at once.
    pages: ContactPages = app.context.notifications.contact_pages
    other = app.ingest(10, alert_id="soc-b", tenant=None)
    request = {
        "incidentId": other,
        "requestKey": "soc-breaker-e1",
        "audience": "soc",
        "epoch": 1,
        "priority": "P1",
        "requestedAt": app.incident(other)["createdAt"],
        "maxAttempts": 1,
    }
    assert pages.register(request)["contacts"] == [pager_id(SOC_DUTY).removeprefix("pager-")]
    assert len(_calls_to(app, SOC_DUTY)) == 1  # never two calls to one number at once
    app.callback(_calls_to(app, SOC_DUTY)[0], "CallDisconnected")
    calls = _calls_to(app, SOC_DUTY)
    assert len(calls) == 2 and other in _announced(app, calls[1])
    assert incident_id


def test_forty_p1s_paged_while_the_number_is_on_the_line_wait_for_it_and_the_pager_keeps_going(notify_app):
    app = notify_app
    [first] = _p1s(app, 1, "first")
    later = _p1s(app, 40, "wave")  # one by one, each waking the pager while its call rings
    assert len(_calls_to(app, DANA)) == 1
    _end(app, DANA)
    calls = _calls_to(app, DANA)
    assert len(calls) == 2 and sorted(_announced(app, calls[1])) == sorted([first, *later])
    assert app.pager()["runtimeStatus"] == "Running"  # its history stays short: pages are read from the row


def test_calls_disabled_while_pages_wait_end_the_escalation_with_people_emailed_never_silently(notify_app):
    app = notify_app
    start = app.durable.now
    [incident_id] = _p1s(app, 1, "x")
    assert len(app.fake.calls()) == 2
    app.configure(ACS_ENDPOINT=None)
    app.durable.advance_to(start + timedelta(minutes=15))
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Completed" and status["output"]["outcome"] == "exhausted"
    assert "call.skipped" in app.timeline(incident_id) and app.mails("Phone escalation exhausted")
    assert len(app.fake.calls()) == 2
