"""LocalFunctionsRuntime: the sample app's real handlers, in-process."""

from __future__ import annotations

import json
import pathlib
import sys
from datetime import UTC, datetime, timedelta

import azure.durable_functions as df
import azure.functions as func
import pytest

_ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # so `devtools` imports however pytest is started
    sys.path.insert(0, str(_ROOT))

from devtools.functions_runtime import LocalFunctionsRuntime  # noqa: E402
from devtools.worker.index import function_index  # noqa: E402

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


from tests.devtools import sample_app as sample  # noqa: E402  (one shared sample app)


@pytest.fixture
def runtime():
    with LocalFunctionsRuntime(sample.app, now=T0) as rt:
        yield rt


def _json(response: func.HttpResponse):
    return json.loads(response.get_body())


# ---------------------------------------------------------------- indexing


def test_get_functions_called_once_per_app_object():
    app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="ping", methods=["GET"])
    def ping(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("pong")

    calls = []
    original = app.get_functions

    def counting():
        calls.append(1)
        return original()

    app.get_functions = counting
    with LocalFunctionsRuntime(app) as first, LocalFunctionsRuntime(app) as second:
        assert first.http("GET", "/api/ping").get_body() == b"pong"
        assert second.http("GET", "/api/ping").get_body() == b"pong"
    assert len(calls) == 1
    # ...because a second call on the same app object raises:
    with pytest.raises(ValueError, match="unique function name"):
        original()


def test_index_by_name_trigger_and_route(runtime):
    index = runtime.functions
    assert index is function_index(sample.app)
    assert index.get("echo").trigger_type == "httpTrigger"
    assert index.orchestrator("call_escalation").trigger_name == "context"
    assert index.activity("place_call").is_async
    assert index.get("poll_timer").trigger_type == "timerTrigger"
    assert index.get("http_start").client_bindings == [("client", None, None)]
    routes = {route: (methods, name) for methods, route, name in runtime.routes()}
    assert routes["incidents/{id}/ack"] == ("POST", "ack_incident")
    assert routes["echo/{id}/items/{item:int}"] == ("GET,PUT", "echo")


# -------------------------------------------------------------------- HTTP


def test_http_builds_a_real_request(runtime):
    response = runtime.http(
        "PUT", "/api/echo/abc%20d/items/42?q=1", body={"a": 1}, headers={"X-Test": "yes"}, params={"p": "2"}
    )
    assert response.status_code == 200
    seen = _json(response)
    assert seen["method"] == "PUT"
    assert seen["route_params"] == {"id": "abc d", "item": "42"}
    assert seen["params"] == {"q": "1", "p": "2"}
    assert seen["content_type"] == "application/json"  # dict bodies are JSON
    assert seen["x_test"] == "yes"  # headers are case-insensitive
    assert json.loads(seen["body"]) == {"a": 1}
    assert seen["url"].startswith("http://localhost:7071/api/echo/abc%20d/items/42?")


def test_http_str_and_bytes_bodies(runtime):
    assert _json(runtime.http("PUT", "/api/echo/x/items/1", body="héllo"))["body"] == "héllo"
    assert _json(runtime.http("PUT", "/api/echo/x/items/1", body=b"raw"))["body"] == "raw"


def test_literal_segment_beats_parameter_and_methods_select(runtime):
    posted = runtime.http("POST", "/api/incidents/sentinel", body={"n": 1})
    assert posted.status_code == 202
    assert _json(posted) == {"route": "incidents/sentinel", "body": {"n": 1}}
    # GET is not allowed on the literal route, so the parameter route serves it
    got = runtime.http("GET", "/api/incidents/sentinel")
    assert _json(got) == {"route": "incidents/{id}", "id": "sentinel"}
    assert _json(runtime.http("get", "/api/Incidents/INC-7"))["id"] == "INC-7"


def test_404_and_405(runtime):
    assert runtime.http("GET", "/api/nothing/here").status_code == 404
    assert runtime.http("GET", "/echo/a/items/1").status_code == 404  # no /api prefix
    assert runtime.http("GET", "/api/echo/a/items/NaN").status_code == 404  # {item:int}
    assert runtime.http("DELETE", "/api/echo/a/items/1").status_code == 405
    assert runtime.http("DELETE", "/api/incidents/INC-1").status_code == 405


def test_unhandled_exception_is_a_500_or_raises(runtime):
    response = runtime.http("GET", "/api/boom")
    assert response.status_code == 500
    assert b"handler exploded" in response.get_body()
    assert isinstance(runtime.errors[-1], RuntimeError)
    with (
        LocalFunctionsRuntime(sample.app, raise_errors=True) as strict,
        pytest.raises(RuntimeError, match="handler exploded"),
    ):
        strict.http("GET", "/api/boom")


# ------------------------------------------------------------------- timer


def test_timer_function_gets_a_timer_request(runtime):
    before = len(sample.TIMER_RUNS)
    runtime.timer("poll_timer", past_due=True)
    runtime.timer("poll_timer")
    assert sample.TIMER_RUNS[before:] == [True, False]
    with pytest.raises(KeyError):
        runtime.timer("echo")


# ------------------------------------------------- durable client bindings


def test_http_starter_uses_the_real_client(runtime):
    response = runtime.http("POST", "/api/orchestrators/greeting_sequence/greet-1", body=["ann", "bob"])
    assert response.status_code == 202
    payload = _json(response)
    assert payload["id"] == "greet-1"
    # create_check_status_response rewrites the origin to the request's
    assert response.headers["Location"] == payload["statusQueryGetUri"]
    assert payload["statusQueryGetUri"].startswith(
        "http://localhost:7071/runtime/webhooks/durabletask/instances/greet-1?"
    )

    # auto_run: the orchestration ran before http() returned
    status = runtime.durable.status("greet-1")
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["shouted"] == ["HELLO ANN!", "HELLO BOB!"]

    # get_status through the real client
    seen = _json(runtime.http("GET", "/api/status/greet-1"))
    assert seen["runtimeStatus"] == "Completed"
    assert seen["customStatus"] == {"greeted": 2}
    # The Python client double-encodes the input: the extension shows JSON text
    assert json.loads(seen["input"]) == ["ann", "bob"]

    # the statusQueryGetUri webhook is served too
    polled = runtime.http("GET", payload["statusQueryGetUri"])
    assert polled.status_code == 200
    assert _json(polled)["output"]["greetings"] == ["Hello ann!", "Hello bob!"]
    assert _json(runtime.http("GET", "/api/status/nope"))["error"] == "not found"


def test_starter_generates_an_instance_id(runtime):
    response = runtime.http("POST", "/api/orchestrators/greeting_sequence", body=["x"])
    instance_id = _json(response)["id"]
    assert len(instance_id) == 32
    assert runtime.durable.status(instance_id)["runtimeStatus"] == "Completed"


def test_duplicate_start_is_rejected_while_running(runtime):
    first = runtime.http(
        "POST", "/api/orchestrators/call_escalation/call-DUP", body={"incident": "DUP", "max_calls": 1}
    )
    assert first.status_code == 202
    assert runtime.durable.status("call-DUP")["runtimeStatus"] == "Running"

    again = runtime.http(
        "POST", "/api/orchestrators/call_escalation/call-DUP", body={"incident": "DUP", "max_calls": 1}
    )
    assert again.status_code == 409
    assert "An Orchestration instance with the status Running already exists." in _json(again)["error"]

    # once terminal the id can be reused (the old instance is replaced)
    assert runtime.http("POST", "/api/instances/call-DUP/terminate").status_code == 202
    assert runtime.durable.status("call-DUP")["runtimeStatus"] == "Terminated"
    assert runtime.durable.status("call-DUP")["output"] == "operator said stop"
    replaced = runtime.http(
        "POST", "/api/orchestrators/call_escalation/call-DUP", body={"incident": "DUP2", "max_calls": 1}
    )
    assert replaced.status_code == 202
    assert runtime.durable.status("call-DUP")["input"]["incident"] == "DUP2"


def test_unknown_orchestrator_makes_the_client_raise(runtime):
    response = runtime.http("POST", "/api/orchestrators/no_such_orchestrator/x1")
    assert "The function 'no_such_orchestrator' doesn't exist" in _json(response)["error"]


def test_ack_event_through_client_and_gone_instance(runtime):
    runtime.http("POST", "/api/orchestrators/call_escalation/call-INC-9", body={"incident": "INC-9"})
    runtime.durable.advance(timedelta(minutes=3))
    ack = runtime.http("POST", "/api/incidents/INC-9/ack", body={"actor": "ann@contoso.com"})
    assert ack.status_code == 202
    status = runtime.durable.status("call-INC-9")
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"acknowledged": True, "attempts": 1, "by": {"actor": "ann@contoso.com"}}
    # the event reached the orchestrator as a JSON *string* (client double encoding)
    raised = [e for e in runtime.durable.history("call-INC-9") if e["EventType"] == 15]
    assert json.loads(raised[0]["Input"]) == json.dumps({"actor": "ann@contoso.com"})
    # raising to a completed instance: 410 -> the client raises "is gone"
    late = runtime.http("POST", "/api/incidents/INC-9/ack", body={"actor": "late"})
    assert late.status_code == 410
    assert "is gone" in _json(late)["error"]


def test_runtime_restart_resumes_durable_state():
    with LocalFunctionsRuntime(sample.app, now=T0) as before:
        before.http("POST", "/api/orchestrators/call_escalation/call-RST", body={"incident": "RST", "max_calls": 3})
        before.durable.advance(timedelta(minutes=10))
        state = before.durable.export_state()
    json.dumps(state)  # a plain JSON document

    with LocalFunctionsRuntime(sample.app, durable_state=state) as after:
        assert after.durable.now == T0 + timedelta(minutes=10)
        after.durable.advance(timedelta(minutes=5))  # the T0+15 timer fires
        calls = after.durable.activity_calls("place_call", "call-RST")
        assert [(c["input"]["attempt"], c["time"]) for c in calls] == [(1, T0), (2, T0 + timedelta(minutes=15))]
        after.http("POST", "/api/incidents/RST/ack", body={"actor": "bob"})
        assert after.durable.status("call-RST")["output"]["attempts"] == 2


def test_host_json_route_prefix_and_hub(tmp_path):
    host_json = tmp_path / "host.json"
    host_json.write_text(
        json.dumps(
            {"version": "2.0", "extensions": {"http": {"routePrefix": "v1"}, "durableTask": {"hubName": "SocHub"}}}
        )
    )
    with LocalFunctionsRuntime(sample.app, host_json=host_json) as rt:
        assert rt.http("GET", "/api/incidents/1").status_code == 404
        assert _json(rt.http("GET", "/v1/incidents/1"))["id"] == "1"
        assert json.loads(rt.durable.client_binding_json())["taskHubName"] == "SocHub"


def test_host_json_caps_how_many_activities_of_a_fan_out_run_at_once(tmp_path):
    import threading

    host_json = tmp_path / "host.json"
    host_json.write_text(
        json.dumps({"version": "2.0", "extensions": {"durableTask": {"maxConcurrentActivityFunctions": 2}}})
    )
    with LocalFunctionsRuntime(sample.app, host_json=host_json) as rt:
        assert rt.durable.max_concurrent_activities == 2
        # Two at a time: a barrier of two is met by each pair, so four activities all succeed.
        sample.FAN_BARRIERS["pairs"] = threading.Barrier(2, timeout=10)
        iid = rt.durable.start_new(
            "fan_out_retrying", "fan-pairs", {"keys": ["p1", "p2", "p3", "p4"], "barrier": "pairs"}
        )
        assert rt.durable.status(iid)["output"] == [{"ok": k} for k in ("p1", "p2", "p3", "p4")]
