"""A small v2-model Durable Functions app used to test devtools.

It is deliberately shaped like soc-responder: a ``DFApp`` with one
``Blueprint``, HTTP routes with route parameters (a literal route that must
beat a parameter route), an async HTTP starter with a durable client binding,
orchestrators with activities, a retry-options activity, a call-escalation
style timer vs external-event race (``task_any`` like the human-interaction
sample), ``set_custom_status``, a sub-orchestration, ``continue_as_new`` and a
timer trigger.

Module-level state (``FLAKY_FAILURES``, ``TIMER_RUNS``, ``CALLS``) lets the
tests observe side effects; tests key it by unique values so the module can
be shared by both test files.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
bp = df.Blueprint()

#: key -> number of failures still to raise for the ``flaky`` activity
FLAKY_FAILURES: dict[str, int] = {}
#: past_due flags seen by the timer trigger
TIMER_RUNS: list[bool] = []
#: inputs seen by ``place_call`` (an async activity)
CALLS: list[dict] = []


def _json(data, status=200):
    return func.HttpResponse(json.dumps(data), status_code=status, mimetype="application/json")


# --------------------------------------------------------------------- HTTP


@bp.route(route="echo/{id}/items/{item:int}", methods=["GET", "PUT"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    """Sync HTTP function: reflects the request it was given."""
    return _json(
        {
            "method": req.method,
            "url": req.url,
            "route_params": dict(req.route_params),
            "params": dict(req.params),
            "content_type": req.headers.get("content-type"),
            "x_test": req.headers.get("x-test"),
            "body": req.get_body().decode("utf-8"),
        }
    )


@bp.route(route="incidents/{id}", methods=["GET"])
def get_incident(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"route": "incidents/{id}", "id": req.route_params["id"]})


@bp.route(route="incidents/sentinel", methods=["POST"])
def ingest_sentinel(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"route": "incidents/sentinel", "body": req.get_json()}, 202)


@bp.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("handler exploded")


@bp.route(route="orchestrators/{name}/{instance_id?}", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client) -> func.HttpResponse:
    """HTTP starter: the real DurableOrchestrationClient over the host API."""
    instance_id = req.route_params.get("instance_id") or None
    body = req.get_body()
    payload = json.loads(body) if body else None
    try:
        instance_id = await client.start_new(req.route_params["name"], instance_id, payload)
    except Exception as exc:  # surfaced by the client (409, 400, ...)
        return _json({"error": str(exc)}, 409)
    return client.create_check_status_response(req, instance_id)


@bp.route(route="status/{instance_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def http_status(req: func.HttpRequest, client) -> func.HttpResponse:
    status = await client.get_status(req.route_params["instance_id"])
    if not status:
        return _json({"error": "not found"}, 404)
    return _json(status.to_json())


@bp.route(route="incidents/{id}/ack", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def ack_incident(req: func.HttpRequest, client) -> func.HttpResponse:
    body = req.get_json()
    instance_id = f"call-{req.route_params['id']}"
    try:
        await client.raise_event(instance_id, "Ack", body)
    except Exception as exc:
        return _json({"error": str(exc)}, 410)
    return _json({"acknowledged": instance_id}, 202)


@bp.route(route="instances/{instance_id}/terminate", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def terminate(req: func.HttpRequest, client) -> func.HttpResponse:
    await client.terminate(req.route_params["instance_id"], "operator said stop")
    return _json({"terminated": True}, 202)


# -------------------------------------------------------------- orchestrators


@bp.orchestration_trigger(context_name="context")
def greeting_sequence(context: df.DurableOrchestrationContext):
    names = context.get_input() or []
    greetings = []
    for name in names:
        greetings.append((yield context.call_activity("say_hello", name)))
    # fan-out / fan-in over the same activity with dict inputs and outputs
    shouted = yield context.task_all([context.call_activity("shout", {"text": g}) for g in greetings])
    context.set_custom_status({"greeted": len(greetings)})
    return {"greetings": greetings, "shouted": [s["text"] for s in shouted]}


@bp.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext):
    options = df.RetryOptions(first_retry_interval_in_milliseconds=30_000, max_number_of_attempts=3)
    result = yield context.call_activity_with_retry("flaky", options, context.get_input())
    return result


@bp.orchestration_trigger(context_name="context")
def call_escalation(context: df.DurableOrchestrationContext):
    """Call, then wait 15 minutes for an ack; retry up to ``max_calls``."""
    params = context.get_input()
    max_calls = params.get("max_calls", 3)
    for attempt in range(1, max_calls + 1):
        yield context.call_activity(
            "place_call",
            {"incident": params["incident"], "attempt": attempt, "at": context.current_utc_datetime.isoformat()},
        )
        context.set_custom_status({"stage": "waiting", "attempt": attempt})
        deadline = context.current_utc_datetime + timedelta(minutes=15)
        timeout = context.create_timer(deadline)
        ack = context.wait_for_external_event("Ack")
        winner = yield context.task_any([ack, timeout])
        if winner == ack:
            timeout.cancel()
            data = ack.result
            # The Python client double-encodes event data (see devtools docs)
            if isinstance(data, str):
                data = json.loads(data)
            context.set_custom_status({"stage": "acknowledged", "attempt": attempt})
            return {"acknowledged": True, "attempts": attempt, "by": data}
    context.set_custom_status({"stage": "exhausted", "attempt": max_calls})
    return {"acknowledged": False, "attempts": max_calls}


@bp.orchestration_trigger(context_name="context")
def parent_orchestrator(context: df.DurableOrchestrationContext):
    child = yield context.call_sub_orchestrator(
        "greeting_sequence", context.get_input(), f"{context.instance_id}-child"
    )
    try:
        yield context.call_sub_orchestrator("failing_orchestrator", None)
    except Exception as exc:  # child failure surfaces in the parent
        failure = str(exc)
    return {"child": child, "child_failure": failure}


@bp.orchestration_trigger(context_name="context")
def failing_orchestrator(context: df.DurableOrchestrationContext):
    yield context.call_activity("say_hello", "doomed")
    raise ValueError("orchestrator blew up")


@bp.orchestration_trigger(context_name="context")
def calls_missing_activity(context: df.DurableOrchestrationContext):
    return (yield context.call_activity("no_such_activity", 1))


@bp.orchestration_trigger(context_name="context")
def catches_activity_error(context: df.DurableOrchestrationContext):
    try:
        yield context.call_activity("flaky", {"key": context.get_input(), "message": "kaput"})
    except Exception as exc:
        return {"caught": str(exc)}
    return {"caught": None}


@bp.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    count = context.get_input() or 0
    if count < 3:
        yield context.create_timer(context.current_utc_datetime + timedelta(minutes=1))
        context.continue_as_new(count + 1)
        return None
    return {"final": count}


# ------------------------------------------------------------------- activities


@bp.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}!"


@bp.activity_trigger(input_name="payload")
def shout(payload: dict) -> dict:
    return {"text": payload["text"].upper(), "type": type(payload).__name__}


@bp.activity_trigger(input_name="payload")
def flaky(payload: dict) -> dict:
    key = payload["key"]
    remaining = FLAKY_FAILURES.get(key, 0)
    if remaining > 0:
        FLAKY_FAILURES[key] = remaining - 1
        raise RuntimeError(payload.get("message", f"transient failure ({key})"))
    return {"ok": key}


@bp.activity_trigger(input_name="call")
async def place_call(call: dict) -> dict:
    CALLS.append(call)
    logging.getLogger(__name__).info("calling for %s (attempt %s)", call["incident"], call["attempt"])
    return {"placed": call["attempt"]}


# ------------------------------------------------------------------------ timer


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
def poll_timer(timer: func.TimerRequest) -> None:
    TIMER_RUNS.append(timer.past_due)


# ------------------------------------------------- fan-out with retries (issue 15)
#: key -> failures still to raise for ``fan_flaky``; a barrier makes concurrency observable
FAN_FAILURES: dict[str, int] = {}
FAN_BARRIERS: dict[str, object] = {}


@bp.orchestration_trigger(context_name="context")
def fan_out_retrying(context: df.DurableOrchestrationContext):
    """task_all over retried activities; a final failure fails the WhenAll, then each task is collected alone."""
    request = context.get_input()
    attempts = request.get("attempts") or {}

    def options(key: str) -> df.RetryOptions:
        return df.RetryOptions(first_retry_interval_in_milliseconds=10_000, max_number_of_attempts=attempts.get(key, 3))

    tasks = [
        context.call_activity_with_retry("fan_flaky", options(k), {"key": k, "barrier": request.get("barrier")})
        for k in request["keys"]
    ]
    try:
        yield context.task_all(tasks)
    except Exception:
        pass  # collected one by one below
    out = []
    for task in tasks:
        try:
            out.append((yield task))
        except Exception as exc:
            out.append({"failed": str(exc).splitlines()[0][:80]})
    return out


@bp.activity_trigger(input_name="payload")
def fan_flaky(payload: dict) -> dict:
    import threading

    barrier = FAN_BARRIERS.get(payload.get("barrier") or "")
    if isinstance(barrier, threading.Barrier):
        barrier.wait()  # breaks (BrokenBarrierError) unless every sibling runs at the same time
    key = payload["key"]
    remaining = FAN_FAILURES.get(key, 0)
    if remaining > 0:
        FAN_FAILURES[key] = remaining - 1
        raise RuntimeError(f"transient failure ({key})")
    return {"ok": key}


app.register_functions(bp)
