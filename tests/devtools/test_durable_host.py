"""LocalDurableHost: orchestrations through the durable SDK's own replay engine."""

from __future__ import annotations

import json
import pathlib
import sys
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from devtools.durable import InstanceAlreadyExistsError, InstanceGoneError, LocalDurableHost, UnknownFunctionError  # noqa: E402

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


from tests.devtools import sample_app as sample  # noqa: E402  (one shared sample app)


@pytest.fixture
def host():
    with LocalDurableHost(sample.app, now=T0) as h:
        yield h


def _types(history):
    return Counter(e["EventType"] for e in history)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# --------------------------------------------------------------- activities


def test_activities_run_for_real_with_json_round_trips(host):
    iid = host.start_new("greeting_sequence", "greet", ["ann", "bob"])
    status = host.status(iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["input"] == ["ann", "bob"]
    assert status["customStatus"] == {"greeted": 2}
    assert status["output"] == {"greetings": ["Hello ann!", "Hello bob!"], "shouted": ["HELLO ANN!", "HELLO BOB!"]}

    calls = host.activity_calls()
    assert [(c["name"], c["input"]) for c in calls] == [
        ("say_hello", "ann"),
        ("say_hello", "bob"),
        ("shout", {"text": "Hello ann!"}),
        ("shout", {"text": "Hello bob!"}),
    ]
    # dict inputs arrive as dicts (ActivityTriggerConverter), results are JSON
    assert calls[2]["result"] == {"text": "HELLO ANN!", "type": "dict"}
    assert all(c["time"] == T0 for c in calls)

    history = host.history(iid)
    assert history[0]["EventType"] == 12 and history[1]["EventType"] == 0
    completed = [e for e in history if e["EventType"] == 5]
    assert [json.loads(e["Result"]) for e in completed][:2] == ["Hello ann!", "Hello bob!"]
    scheduled = [e for e in history if e["EventType"] == 4]
    assert [e["EventId"] for e in scheduled] == [0, 1, 2, 3]
    assert history[-1]["EventType"] == 1


def test_async_activity_runs_on_the_shared_loop(host):
    host.start_new("call_escalation", "call-ASYNC", {"incident": "ASYNC", "max_calls": 1})
    assert sample.CALLS[-1]["incident"] == "ASYNC"
    assert host.activity_calls("place_call")[-1]["result"] == {"placed": 1}


# ------------------------------------------------------------------ retries


def test_retry_options_two_failures_then_success(host):
    sample.FLAKY_FAILURES["retry-ok"] = 2
    iid = host.start_new("retrying", "retry-ok", {"key": "retry-ok"})
    assert host.status(iid)["runtimeStatus"] == "Running"
    assert [t["fire_at"] for t in host.pending_timers(iid)] == [T0 + timedelta(seconds=30)]
    assert host.pending_timers(iid)[0]["retry"] is True

    host.advance(5 * MIN)
    status = host.status(iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"ok": "retry-ok"}

    types = _types(host.history(iid))
    assert types[10] == 2 and types[11] == 2  # two retry timers created + fired
    assert types[6] == 2 and types[5] == 1 and types[4] == 3
    calls = host.activity_calls("flaky", iid)
    assert [(c["attempt"], c["time"], c["error"] is None) for c in calls] == [
        (1, T0, False),
        (2, T0 + timedelta(seconds=30), False),
        (3, T0 + timedelta(seconds=60), True),
    ]
    assert "RuntimeError: transient failure (retry-ok)" in calls[0]["error"]


def test_retry_options_exhausted_fails_the_orchestration(host):
    sample.FLAKY_FAILURES["retry-bad"] = 10
    iid = host.start_new("retrying", "retry-bad", {"key": "retry-bad"})
    host.advance(10 * MIN)
    status = host.status(iid)
    assert status["runtimeStatus"] == "Failed"
    assert "Activity function 'flaky' failed" in status["output"]
    assert len(host.activity_calls("flaky", iid)) == 3
    # DTFx (and the SDK) wait for one more timer after the last attempt
    assert _types(host.history(iid))[10] == 3


# -------------------------------------------------------- timer vs event race


def test_race_event_wins_cancels_the_timer(host):
    iid = host.start_new("call_escalation", "call-A", {"incident": "A", "max_calls": 3})
    assert host.status(iid)["customStatus"] == {"stage": "waiting", "attempt": 1}
    host.advance(5 * MIN)
    host.raise_event(iid, "Ack", {"actor": "ann"})

    status = host.status(iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"acknowledged": True, "attempts": 1, "by": {"actor": "ann"}}
    assert status["customStatus"] == {"stage": "acknowledged", "attempt": 1}
    assert host.pending_timers(iid) == []
    assert [t["status"] for t in host.timers(iid)] == ["cancelled"]

    host.advance(timedelta(hours=2))  # nothing else happens
    assert len(host.activity_calls("place_call", iid)) == 1


def test_race_timer_wins_and_each_step_sees_its_time(host):
    iid = host.start_new("call_escalation", "call-B", {"incident": "B", "max_calls": 4})
    fired = host.advance(timedelta(hours=2))  # all timers fire, one at a time, in order
    assert fired == 4
    calls = host.activity_calls("place_call", iid)
    assert [c["time"] for c in calls] == [T0 + n * 15 * MIN for n in range(4)]
    # current_utc_datetime inside the orchestrator == the fired timer's time
    assert [c["input"]["at"] for c in calls] == [(T0 + n * 15 * MIN).isoformat() for n in range(4)]
    status = host.status(iid)
    assert status["output"] == {"acknowledged": False, "attempts": 4}
    assert status["customStatus"] == {"stage": "exhausted", "attempt": 4}
    assert status["lastUpdatedTime"] == T0 + 60 * MIN
    assert [t["status"] for t in host.timers(iid)] == ["fired"] * 4


def test_timers_of_several_instances_interleave_in_fire_order(host):
    host.start_new("call_escalation", "call-C", {"incident": "C", "max_calls": 2})
    host.advance(7 * MIN)
    host.start_new("call_escalation", "call-D", {"incident": "D", "max_calls": 2})
    assert [(t["instance_id"], t["fire_at"]) for t in host.pending_timers()] == [
        ("call-C", T0 + 15 * MIN),
        ("call-D", T0 + 22 * MIN),
    ]
    host.advance(timedelta(minutes=20))
    order = [
        (c["instance_id"], c["time"])
        for c in host.activity_calls("place_call")
        if c["instance_id"] in ("call-C", "call-D")
    ]
    assert order == [("call-C", T0), ("call-D", T0 + 7 * MIN), ("call-C", T0 + 15 * MIN), ("call-D", T0 + 22 * MIN)]


# ------------------------------------------------------------ composition


def test_sub_orchestration_and_failing_child(host):
    iid = host.start_new("parent_orchestrator", "parent", ["zoe"])
    status = host.status(iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["child"]["greetings"] == ["Hello zoe!"]
    assert (
        "Orchestrator function 'failing_orchestrator' failed: orchestrator blew up" in status["output"]["child_failure"]
    )
    child = host.status("parent-child")
    assert child["runtimeStatus"] == "Completed" and child["parentInstanceId"] == "parent"
    failed_child = [i for i in host.instance_ids() if i.startswith("parent:")]
    assert failed_child and host.status(failed_child[0])["runtimeStatus"] == "Failed"
    types = _types(host.history(iid))
    assert types[7] == 2 and types[8] == 1 and types[9] == 1


def test_orchestrator_exception_fails_the_instance(host):
    iid = host.start_new("failing_orchestrator", "fails")
    status = host.status(iid)
    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == "Orchestrator function 'failing_orchestrator' failed: orchestrator blew up"
    assert host.history(iid)[-1]["OrchestrationStatus"] == "Failed"


def test_unknown_activity_fails_clearly(host):
    iid = host.start_new("calls_missing_activity", "missing")
    status = host.status(iid)
    assert status["runtimeStatus"] == "Failed"
    assert "Activity function 'no_such_activity' does not exist." in status["output"]
    with pytest.raises(UnknownFunctionError):
        host.start_new("no_such_orchestrator")


def test_activity_error_can_be_caught_by_the_orchestrator(host):
    sample.FLAKY_FAILURES["caught"] = 1
    iid = host.start_new("catches_activity_error", "caught", "caught")
    caught = host.status(iid)["output"]["caught"]
    assert "Activity function 'flaky' failed" in caught
    assert "RuntimeError: kaput" in caught


def test_continue_as_new(host):
    iid = host.start_new("counter", "counter", 0)
    host.advance(10 * MIN)
    status = host.status(iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"final": 3}
    assert status["input"] == 3
    assert _types(host.history(iid))[0] == 1  # only the last execution's history


# ---------------------------------------------------- instance id handling


def test_duplicate_start_direct(host):
    host.start_new("call_escalation", "call-E", {"incident": "E"})
    with pytest.raises(InstanceAlreadyExistsError, match="status Running already exists"):
        host.start_new("call_escalation", "call-E", {"incident": "E"})
    with pytest.raises(ValueError):
        host.start_new("call_escalation", "bad/id", {"incident": "E"})
    with LocalDurableHost(sample.app, now=T0, overridable_existing_instance_states="AnyState") as lenient:
        lenient.start_new("call_escalation", "call-E", {"incident": "E"})
        lenient.start_new("call_escalation", "call-E", {"incident": "E2"})
        assert lenient.status("call-E")["input"]["incident"] == "E2"


def test_terminate_and_gone(host):
    iid = host.start_new("call_escalation", "call-T", {"incident": "T"})
    host.terminate(iid, "enough")
    status = host.status(iid)
    assert status["runtimeStatus"] == "Terminated" and status["output"] == "enough"
    assert host.pending_timers(iid) == []
    with pytest.raises(InstanceGoneError):
        host.raise_event(iid, "Ack", {})


# --------------------------------------------------------------- restart


def test_export_and_restore_mid_timer_resumes_the_schedule(host):
    iid = host.start_new("call_escalation", "call-R", {"incident": "R", "max_calls": 3})
    host.advance(5 * MIN)
    state = host.export_state()
    history_before = host.history(iid)
    host.close()

    restored = LocalDurableHost.from_state(json.loads(json.dumps(state)), sample.app)
    try:
        assert restored.now == T0 + 5 * MIN
        assert restored.history(iid) == history_before
        assert [t["fire_at"] for t in restored.pending_timers(iid)] == [T0 + 15 * MIN]
        restored.advance(20 * MIN)  # T0+15 fires: call 2; next timer T0+30
        calls = restored.activity_calls("place_call", iid)
        assert [(c["input"]["attempt"], c["time"]) for c in calls] == [(1, T0), (2, T0 + 15 * MIN)]
        restored.raise_event(iid, "Ack", {"actor": "carol"})
        assert restored.status(iid)["output"] == {"acknowledged": True, "attempts": 2, "by": {"actor": "carol"}}
    finally:
        restored.close()


# --------------------------------------------------------- loopback HTTP API


def test_client_binding_json_points_at_the_loopback_api(host):
    binding = json.loads(host.client_binding_json())
    assert binding["taskHubName"] == "TestHubName"
    assert binding["rpcBaseUrl"] == host.url + "/durabletask/"
    assert binding["managementUrls"]["id"] == "INSTANCEID"
    assert "{eventName}" in binding["managementUrls"]["sendEventPostUri"]
    assert binding["baseUrl"] == host.url + "/runtime/webhooks/durabletask"


def test_http_api_status_codes(host):
    assert _get(host.rpc_base_url + "instances/unknown") == (404, b"")
    iid = host.start_new("call_escalation", "call-H", {"incident": "H"})
    code, body = _get(host.rpc_base_url + f"instances/{iid}?showHistory=true")
    assert code == 202
    payload = json.loads(body)
    assert payload["runtimeStatus"] == "Running"
    assert payload["customStatus"] == {"stage": "waiting", "attempt": 1}
    assert payload["historyEvents"][0]["EventType"] == "ExecutionStarted"

    request = urllib.request.Request(host.rpc_base_url + f"instances/{iid}", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 412  # only terminal instances purge

    # the webhook with a raw JSON body delivers the object (no double encoding)
    raise_url = (
        json.loads(host.client_binding_json())["managementUrls"]["sendEventPostUri"]
        .replace("INSTANCEID", iid)
        .replace("{eventName}", "Ack")
    )
    request = urllib.request.Request(
        raise_url, data=b'{"actor": "dave"}', method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202
    host.run_until_idle()  # HTTP API calls only enqueue
    assert host.status(iid)["output"]["by"] == {"actor": "dave"}
    code, body = _get(host.rpc_base_url + f"instances/{iid}")
    assert code == 200 and json.loads(body)["runtimeStatus"] == "Completed"

    with urllib.request.urlopen(
        urllib.request.Request(host.rpc_base_url + f"instances/{iid}", method="DELETE"), timeout=10
    ) as resp:
        assert json.loads(resp.read()) == {"instancesDeleted": 1}
    assert host.status(iid) is None


# ------------------------------------------------ fan-out (issue 15)


def test_a_fan_out_runs_its_activities_at_the_same_time(host):
    import threading

    # Three activities meet at a barrier: run one after another, the first would wait alone and break it.
    sample.FAN_BARRIERS["together"] = threading.Barrier(3, timeout=10)
    iid = host.start_new("fan_out_retrying", "fan-together", {"keys": ["t1", "t2", "t3"], "barrier": "together"})
    status = host.status(iid)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [{"ok": "t1"}, {"ok": "t2"}, {"ok": "t3"}]
    # Results are recorded in the order the orchestrator scheduled them, whatever finished first.
    assert [c["input"]["key"] for c in host.activity_calls("fan_flaky", iid)] == ["t1", "t2", "t3"]


def test_a_fan_out_of_retried_activities_replays_like_the_sdk(host):
    # a: fine; b: fails twice then succeeds; c: fails for good (3 attempts).
    sample.FAN_FAILURES.update({"fa": 0, "fb": 2, "fc": 10})
    iid = host.start_new("fan_out_retrying", "fan-retry", {"keys": ["fa", "fb", "fc"]})
    assert host.status(iid)["runtimeStatus"] == "Running"
    # b and c failed once: one retry timer each, 10 s out.
    assert [t["fire_at"] for t in host.pending_timers(iid)] == [T0 + timedelta(seconds=10)] * 2
    host.advance(5 * MIN)
    status = host.status(iid)
    assert status["runtimeStatus"] == "Completed", status
    out = status["output"]
    assert out[0] == {"ok": "fa"} and out[1] == {"ok": "fb"}
    assert "fan_flaky" in out[2]["failed"]
    calls = host.activity_calls("fan_flaky", iid)
    attempts = Counter(c["input"]["key"] for c in calls)
    assert attempts == {"fa": 1, "fb": 3, "fc": 3}
    # Each retry waits its own interval after its own failure.
    assert sorted(c["time"] for c in calls if c["input"]["key"] == "fb") == [
        T0,
        T0 + timedelta(seconds=10),
        T0 + timedelta(seconds=20),
    ]


def test_a_fan_out_whose_first_final_failure_comes_while_others_still_retry(host):
    # fx fails for good first (1 attempt: raised after one interval, +10 s); fy is still retrying then
    # (fails twice, succeeds at +20 s): the WhenAll fails at once, and fy is awaited on its own after.
    sample.FAN_FAILURES.update({"fx": 10, "fy": 2})
    iid = host.start_new("fan_out_retrying", "fan-early-fail", {"keys": ["fx", "fy"], "attempts": {"fx": 1}})
    host.advance(timedelta(seconds=10))
    assert host.status(iid)["runtimeStatus"] == "Running"  # fx's failure is known, fy not done yet
    host.advance(5 * MIN)
    status = host.status(iid)
    assert status["runtimeStatus"] == "Completed", status
    assert "fan_flaky" in status["output"][0]["failed"]
    assert status["output"][1] == {"ok": "fy"}
    assert Counter(c["input"]["key"] for c in host.activity_calls("fan_flaky", iid)) == {"fx": 1, "fy": 3}
