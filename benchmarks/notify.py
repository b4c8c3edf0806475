"""Notify: time from ingest of a P1 alert to the first email request and the first call request on the fake.

200 distinct P1 generic alerts (partner contoso: one email to 3 recipients,
a call to each of its 2 emergency contacts) go through the real HTTP handler;
the durable host then runs the runbook (plan, containment, notify, start of
the escalation) and the escalation's first attempt. The fake records when the
sendMail and createCall requests arrived. The ratio compares the notify part
(after ingest answered) with the bare minimum: one sendMail plus one
createCall made directly with the same SDK clients.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
N = 200
BUDGET_SECONDS = 40.0  # the measured loop stops early on a slow machine (the whole run must stay under 60 s)
SENDER = "soc-responder@soc.example"


def _alert(i: int) -> dict:
    return {
        "source": "bench",
        "id": f"notify-{i}-{uuid.uuid4().hex[:8]}",
        "title": f"Ransomware behaviour {i}",
        "score": 10,
        "observedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "entities": [{"kind": "networkDevice", "name": f"fgt-bench-{i}"}],
    }


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _ms(values: list[float]) -> str:
    return f"p50 {_pct(values, 50) * 1000:.1f} ms, p99 {_pct(values, 99) * 1000:.1f} ms"


def _baseline(n: int) -> list[float]:
    """One sendMail and one createCall, made directly with the adapters' SDK clients."""
    from shared.adapters.acs_calls import AcsCaller
    from shared.adapters.graph_mail import GraphMailer
    from shared.notify.ports import OutgoingMail
    from shared.settings import Settings

    settings = Settings.from_env()
    mailer, caller = GraphMailer(settings), AcsCaller(settings)
    mail = OutgoingMail(to=["soc-alerts@contoso.example"], subject="baseline", html="<p>x</p>" * 400)
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        mailer.send(mail)
        caller.place_call("+15555550100", f"https://soc-responder.example/api/callbacks/acs?b={i}", f"b-{i}")
        times.append(time.perf_counter() - t0)
    return times


def _announced(callback_uri: str) -> list[str]:
    """The incidents a call announced (issue 14: a contact's call lists them in its row)."""
    from shared import runtime

    query = parse_qs(urlsplit(callback_uri).query)
    if "contact" not in query:
        return query.get("incidentId", [])
    got = runtime.context().store.get_record("Notifications", f"~contact-{query['contact'][0]}", query["callId"][0])
    return (got[0].get("announced") if got else None) or []


_DONE: set[str] = set()


def _acknowledge_on_the_phone(rt, fake) -> None:
    """Each P1 is measured on its own (issue 14: a number gets one call at a time, at most four an hour): the
    callee answers and presses 1, the call ends, and an hour passes before the next alert (not timed)."""
    from datetime import timedelta

    for call in fake.calls():
        if call.call_connection_id in _DONE:
            continue
        _DONE.add(call.call_connection_id)
        target = urlsplit(call.callback_uri)
        path = f"{target.path}?{target.query}"
        for kind, data in (
            ("CallConnected", {}),
            ("RecognizeCompleted", {"recognitionType": "dtmf", "dtmfResult": {"tones": ["one"]}}),
            ("CallDisconnected", {}),
        ):
            rt.http("POST", path, body=fake.call_event(call.call_connection_id, kind, **data))
    rt.durable.run_until_idle()
    rt.durable.advance(timedelta(minutes=61))


def main() -> None:
    from devtools.local_azure import local_azure
    from shared.adapters.clients import reset_clients

    saved = dict(os.environ)
    try:
        with local_azure(
            {
                "RESPONSE_MODE": "dry-run",
                "MAIL_SENDER": SENDER,
                "ACS_CALLER_ID": "+15555550000",
                "CALLBACK_BASE_URL": "https://soc-responder.example",
            }
        ) as (_azurite, fake):
            fake.add_mailbox(SENDER)
            from devtools.functions_runtime import LocalFunctionsRuntime
            from function_app import build_app

            with LocalFunctionsRuntime(
                build_app(), now=datetime.now(UTC), auto_run=False, host_json=str(ROOT / "host.json")
            ) as rt:
                for i in range(10):  # warm-up: tables, clients, imports
                    rt.http("POST", "/api/alerts", body=_alert(-i - 1))
                    rt.durable.run_until_idle()
                fake.clear_log()
                sent: dict[str, float] = {}
                answered: dict[str, float] = {}
                started = time.perf_counter()
                settling = 0.0
                for i in range(N):
                    if time.perf_counter() - started - settling > BUDGET_SECONDS:
                        break
                    t0 = time.time()
                    resp = rt.http("POST", "/api/alerts", body=_alert(i))
                    answered_at = time.time()
                    assert resp.status_code == 202, resp.get_body()
                    rt.durable.run_until_idle()
                    incident_id = json.loads(resp.get_body())["incidentId"]
                    sent[incident_id] = t0
                    answered[incident_id] = answered_at - t0
                    t_settle = time.perf_counter()
                    _acknowledge_on_the_phone(rt, fake)
                    settling += time.perf_counter() - t_settle
                wall = time.perf_counter() - started - settling
                first_mail: dict[str, float] = {}
                first_call: dict[str, float] = {}
                for r in fake.requests("POST", "/sendMail"):
                    message = (r.json or {}).get("message") or (r.json or {}).get("Message") or {}
                    subject = message.get("subject") or ""
                    iid = next((w for w in subject.split() if w.startswith("INC-")), None)
                    if iid in sent:
                        first_mail.setdefault(iid, r.timestamp - sent[iid])
                for r in fake.requests("POST", "/calling/callConnections", api="acs"):
                    if r.path != "/calling/callConnections":
                        continue
                    for iid in _announced((r.json or {}).get("callbackUri", "")):
                        if iid in sent:
                            first_call.setdefault(iid, r.timestamp - sent[iid])
                n = len(sent)
                assert len(first_mail) == n and len(first_call) == n, (n, len(first_mail), len(first_call))
                calls = len(
                    [
                        c
                        for c in fake.calls()
                        if parse_qs(urlsplit(c.callback_uri).query).get("incidentId", [""])[0] in sent
                    ]
                )
            baseline = _baseline(30)
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_clients()

    ingest = list(answered.values())
    to_mail, to_call = list(first_mail.values()), list(first_call.values())
    notify_part = [first_call[i] - answered[i] for i in sent]
    print(
        f"   {n} P1 alerts (of {N}; {BUDGET_SECONDS:.0f} s budget) through POST /api/alerts, runbook and "
        "escalation on the durable host, Graph/ACS fake"
    )
    print(f"   ingest answered (202):      {_ms(ingest)}")
    print(f"   ingest → first email:       {_ms(to_mail)}")
    print(f"   ingest → first call:        {_ms(to_call)}")
    print(f"   {n / wall:.1f} P1 incidents/s end to end; {calls} calls placed ({calls / n:.1f} per incident)")
    print(f"   bare minimum (1 sendMail + 1 createCall, direct): mean {statistics.mean(baseline) * 1000:.1f} ms")
    print(
        f"   ratio notify part (after 202 → first call) / bare minimum: "
        f"{statistics.median(notify_part) / statistics.median(baseline):.2f}x (median)"
    )


if __name__ == "__main__":
    main()
