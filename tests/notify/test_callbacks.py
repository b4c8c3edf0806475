"""ACS call events at POST /api/callbacks/acs: a key press acknowledges; forged or unknown events never do."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit


def _query(call) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(call.callback_uri).query).items()}


def _url(**query) -> str:
    return "https://soc-responder.example/api/callbacks/acs?" + urlencode(query)


def test_pressing_1_acknowledges_and_stops_the_escalation(notify_app):
    app = notify_app
    start = app.durable.now
    incident_id = app.ingest(10)
    call = next(c for c in app.fake.calls() if c.targets == ["+15555550100"])

    r = app.callback(call, "CallConnected")
    assert r.status == 200, r.text
    assert call.action_names() == ["recognize"]  # the spoken summary with "press 1", collecting one key
    prompt = call.actions[0][1]
    assert prompt["recognizeInputType"] == "dtmf"
    assert prompt["recognizeOptions"]["targetParticipant"]["phoneNumber"]["value"] == "+15555550100"
    assert "Press 1 to acknowledge" in prompt["playPrompt"]["text"]["text"]
    assert prompt["recognizeOptions"]["dtmfOptions"]["maxTonesToCollect"] == 1

    r = app.callback(call, "RecognizeCompleted", recognitionType="dtmf", dtmfResult={"tones": ["one"]})
    assert r.status == 200 and r.json()["acknowledged"] is True
    status = app.escalation(incident_id)
    assert status["runtimeStatus"] == "Completed" and status["output"]["outcome"] == "acknowledged"
    assert call.action_names()[-1] == "play"  # "thank you, acknowledged"
    app.callback(call, "PlayCompleted")
    assert call.action_names()[-1] in ("terminate", "hangup")
    app.callback(call, "CallDisconnected")
    other = next(c for c in app.fake.calls() if c is not call)
    assert other.action_names() == ["terminate"]  # the other contact's phone stops ringing

    doc = app.incident(incident_id)
    assert doc["status"] == "acknowledged" and doc["acknowledgedBy"].startswith("Dana Reyes")
    types = [e["eventType"] for e in doc["timeline"]]
    for t in ("call.answered", "call.acknowledged", "incident.acknowledged", "escalation.acknowledged", "call.ended"):
        assert t in types
    ack = next(e for e in doc["timeline"] if e["eventType"] == "call.acknowledged")
    assert ack["actorType"] == "partner" and "+***0100" in ack["actor"]
    row = next(r for r in doc["notifications"] if r.get("callConnectionId") == call.call_connection_id)
    assert row["status"] == "acknowledged" and "token" not in row and row["tokenHash"]
    app.durable.advance(timedelta(hours=3))
    assert len(app.call_times()) == 1 and app.durable.pending_timers(f"escalation-{incident_id}") == []
    assert start  # the escalation began at the fixture's known minute


def test_another_key_reprompts_then_silence_ends_without_acknowledging(notify_app):
    app = notify_app
    incident_id = app.ingest(10)
    call = app.fake.calls()[0]
    app.callback(call, "CallConnected")
    app.callback(call, "RecognizeCompleted", recognitionType="dtmf", dtmfResult={"tones": ["two"]})
    assert call.action_names() == ["recognize", "recognize"]
    assert call.actions[1][1]["playPrompt"]["text"]["text"].startswith("Sorry, that was not a 1.")
    app.callback(
        call,
        "RecognizeFailed",
        resultInformation={"code": 400, "subCode": 8510, "message": "Action failed, initial silence timeout."},
    )
    app.callback(call, "RecognizeFailed", resultInformation={"code": 400, "subCode": 8510, "message": "timeout"})
    assert call.action_names()[-1] == "play"  # goodbye after three prompts
    app.callback(call, "PlayCompleted")
    app.callback(call, "CallDisconnected")
    assert app.escalation(incident_id)["runtimeStatus"] == "Running"
    doc = app.incident(incident_id)
    assert doc["acknowledgedAt"] is None
    assert "call.no-ack" in [e["eventType"] for e in doc["timeline"]]
    ended = [e for e in doc["timeline"] if e["eventType"] == "call.ended"]
    assert ended[-1]["data"]["outcome"] == "answered-no-ack"


def test_unanswered_and_failed_calls_are_evidenced(notify_app):
    app = notify_app
    incident_id = app.ingest(10)
    a, b = app.fake.calls()
    app.callback(a, "CallDisconnected")
    app.callback(b, "CreateCallFailed", resultInformation={"code": 500, "subCode": 8501, "message": "no answer"})
    doc = app.incident(incident_id)
    outcomes = {
        e["eventType"]: e["data"]
        for e in doc["timeline"]
        if e["eventType"] in ("call.ended", "call.failed")
        and e["data"].get("callConnectionId") in (a.call_connection_id, b.call_connection_id)
    }
    assert outcomes["call.ended"]["outcome"] == "not-answered"
    assert outcomes["call.failed"]["error"]["subCode"] == 8501


def test_forged_and_unknown_events_are_rejected_logged_and_never_acknowledge(notify_app, caplog):
    app = notify_app
    incident_id = app.ingest(10)
    a, b = app.fake.calls()
    qa, qb = _query(a), _query(b)
    press_1 = {"recognitionType": "dtmf", "dtmfResult": {"tones": ["one"]}}
    forged = [
        _url(incidentId=incident_id, callId=qa["callId"]),  # no token
        _url(incidentId=incident_id, callId=qa["callId"], token="x" * 43),  # wrong token
        _url(incidentId=incident_id, callId=qa["callId"], token=qb["token"]),  # another call's token
        _url(incidentId=incident_id, callId="call-nope-a01-c0", token=qa["token"]),  # unknown call
        _url(incidentId="INC-20990101-000000000000", callId=qa["callId"], token=qa["token"]),  # other incident
        _url(callId=qa["callId"], token=qa["token"]),  # no incident
    ]
    with caplog.at_level("WARNING"):
        for url in forged:
            r = app.callback(a, "RecognizeCompleted", url=url, **press_1)
            assert r.status == 401, (url, r.text)  # the call's secret is what authenticates ACS
            assert r.json()["details"] == [{"field": "callback", "message": "unknown or unauthorised call event"}]
    assert sum("rejected ACS callback" in m for m in caplog.messages) == len(forged)

    # The right secret, but an event about a call connection that is not this call's.
    r = app.callback(b, "RecognizeCompleted", url=a.callback_uri, **press_1)
    assert r.status == 400
    # The right secret and connection, but a wrong correlation id or operation context.
    for bad in ({"correlationId": "00000000-0000-0000-0000-000000000000"}, {"operationContext": "call-other"}):
        batch = app.fake.call_event(a.call_connection_id, "RecognizeCompleted", **press_1)
        batch[0]["data"].update(bad)
        path = urlsplit(a.callback_uri)
        assert app.post(f"{path.path}?{path.query}", batch).status == 400
    # Not a CloudEvent batch at all.
    path = urlsplit(a.callback_uri)
    assert app.post(f"{path.path}?{path.query}", {"hello": "world"}).status == 400

    assert app.escalation(incident_id)["runtimeStatus"] == "Running"
    doc = app.incident(incident_id)
    assert doc["acknowledgedAt"] is None and doc["status"] != "acknowledged"
    assert "call.acknowledged" not in [e["eventType"] for e in doc["timeline"]]
    assert a.action_names() == [] and b.action_names() == []
    assert app.get(f"/api/incidents/{incident_id}/verify").json()["valid"] is True
