"""Alert storm (issue 14): 1,000 alerts from 8 callers — 950 P3/P4 noise on 300 hosts, 50 P1 on 50 VMs — through
the real handlers, Azurite and the local durable host (breaker 10 per hour).

Figures: alerts/s and p50/p99 of the ingest answer (wall clock, 8 threads); incidents against distinct entities
(they must be equal: grouping is race-free); emails per recipient in total and in the busiest (simulated) minute;
calls per number in the first (simulated) hour and the most calls one number gets in one minute; the most calls
in progress to one number at once and per caller number (issue 14: one, and at most ACS's two); time from a P1's
arrival to the first call announcing it; ingest round trips to the evidence store per new incident against the
minimum the design needs.

The storm is posted with the durable host paused (``auto_run=False``), then the host runs and the clock is moved
one simulated minute at a time for an hour; each email and call the fake receives is counted in the minute it was
sent. Nobody answers the phone: at the end of each simulated minute ACS reports every call still ringing as ended
(``CallDisconnected`` to its callback), so a call lasts under a minute. The local host does not charge queue
latency, so "P1 → first call" is the simulated minute of the first call announcing that P1 (0 = the storm's
minute). ``STORM_ALERTS`` scales the storm down (same proportions).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUB = "11111111-2222-3333-4444-555555555555"  # partner contoso (enforce)
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SENDER = "soc-responder@soc.example"
CALLERS = 8


def _alerts(total: int, vms: list[str]) -> list[dict]:
    rnd = random.Random(14)
    p1 = max(1, total // 20)
    noise_hosts = [f"ws-{i:03d}" for i in range(max(1, total * 300 // 1000))]
    observed = datetime.now(UTC).isoformat()
    out = []
    for _ in range(total - p1):
        host = rnd.choice(noise_hosts)
        out.append(
            {
                "source": "bench",
                "id": f"noise-{uuid.uuid4().hex}",
                "title": f"Phishing link clicked on {host}",
                "score": rnd.choice([2, 3, 4, 5]),
                "observedAt": observed,
                "tenantId": TENANT,
                "entities": [{"kind": "host", "name": host}],
            }
        )
    for vm in vms[:p1]:
        out.append(
            {
                "source": "bench",
                "id": f"p1-{uuid.uuid4().hex}",
                "title": "Ransomware behaviour detected",
                "score": 10,
                "observedAt": observed,
                "subscriptionId": SUB,
                "entities": [{"kind": "host", "name": vm.rsplit("/", 1)[-1], "azureResourceId": vm}],
            }
        )
    rnd.shuffle(out)
    return out


def _seed_vms(fake, n: int) -> list[str]:
    rg = f"/subscriptions/{SUB}/resourceGroups/rg-storm"
    vms = []
    for i in range(n):
        nic = f"{rg}/providers/Microsoft.Network/networkInterfaces/nic-storm-{i}"
        vm = f"{rg}/providers/Microsoft.Compute/virtualMachines/vm-storm-{i:02d}"
        fake.add_nic(nic, "eastus", vm_id=vm)
        fake.add_vm(vm, "eastus", [nic])
        vms.append(vm)
    return vms


def _storm(rt, alerts: list[dict]) -> tuple[float, list[float], Counter]:
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    queue = list(alerts)

    def caller() -> None:
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            t = time.perf_counter()
            resp = rt.http("POST", "/api/alerts", body=body)
            took = time.perf_counter() - t
            with lock:
                latencies.append(took)
                statuses[resp.status_code] += 1

    threads = [threading.Thread(target=caller) for _ in range(CALLERS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, latencies, statuses


def _sent(fake, seen: int) -> tuple[list, int]:
    log = fake.requests()
    return log[seen:], len(log)


def _round_trips(ctx) -> tuple[int, dict[str, int]]:
    """Evidence-store requests of one new incident's ingest (counted on the table clients)."""
    from shared.adapters import table_store
    from shared.intake import generic

    counts: Counter = Counter()
    real = table_store.TableEvidenceStore._t
    methods = ("create_entity", "get_entity", "query_entities", "submit_transaction", "update_entity", "upsert_entity")

    class Counting:
        def __init__(self, client, table):
            self._client, self._table = client, table

        def __getattr__(self, name):
            attr = getattr(self._client, name)
            if name not in methods:
                return attr

            def counted(*a, **k):
                counts[f"{self._table}.{name}"] += 1
                return attr(*a, **k)

            return counted

    def one(tag: str):
        return generic.parse(
            {
                "source": "bench",
                "id": uuid.uuid4().hex,
                "title": "Round trips",
                "score": 5,
                "observedAt": datetime.now(UTC).isoformat(),
                "tenantId": TENANT,
                "entities": [{"kind": "host", "name": f"{tag}-{uuid.uuid4().hex[:8]}"}],
            },
            datetime.now(UTC),
        )

    ctx.ingest.ingest(one("warm"))  # tables created, the partner's maintenance windows cached (as in a storm)
    table_store.TableEvidenceStore._t = lambda self, name: Counting(real(self, name), name)  # type: ignore[method-assign]
    try:
        alert = generic.parse(
            {
                "source": "bench",
                "id": uuid.uuid4().hex,
                "title": "Round trips",
                "score": 5,
                "observedAt": datetime.now(UTC).isoformat(),
                "tenantId": TENANT,
                "entities": [{"kind": "host", "name": f"rt-{uuid.uuid4().hex[:8]}"}],
            },
            datetime.now(UTC),
        )
        outcome = ctx.ingest.ingest(alert)
        assert outcome.outcome == "created"
    finally:
        table_store.TableEvidenceStore._t = real  # type: ignore[method-assign]
    return sum(counts.values()), dict(counts)


def _ring_and_end(rt, fake, minute, seen, first_call, live, peak, caller_peak) -> int:
    """Count the calls placed this minute (per number, per caller number, the incidents each announced), then
    end every one of them as ACS would when nobody answers (``CallDisconnected`` to the call's callback)."""
    from urllib.parse import parse_qs, urlsplit

    from shared import runtime

    store = runtime.context().store
    calls = fake.calls()
    callers: Counter = Counter()
    for call in calls[seen:]:
        number = str(call.targets[0])
        live[number] += 1
        peak[number] = max(peak[number], live[number])
        callers[str(call.source_caller_id)] += 1
        query = parse_qs(urlsplit(call.callback_uri).query)
        if "contact" in query:
            got = store.get_record("Notifications", f"~contact-{query['contact'][0]}", query["callId"][0])
            announced = (got[0].get("announced") if got else None) or []
        else:
            announced = query.get("incidentId", [])
        for incident_id in announced:
            first_call.setdefault(incident_id, minute)
    for number, n in callers.items():
        caller_peak[number] = max(caller_peak[number], n)
    for call in calls[seen:]:
        target = urlsplit(call.callback_uri)
        rt.http(
            "POST", f"{target.path}?{target.query}", body=fake.call_event(call.call_connection_id, "CallDisconnected")
        )
        live[str(call.targets[0])] -= 1
    return len(calls)


def main() -> None:
    from devtools.local_azure import local_azure
    from shared.adapters.clients import reset_clients

    total = int(os.environ.get("STORM_ALERTS", "1000"))
    saved = dict(os.environ)
    try:
        with local_azure(
            {
                "RESPONSE_MODE": "enforce",
                "BLAST_RADIUS_MAX": "10",
                "BLAST_RADIUS_WINDOW_MINUTES": "60",
                "CONTAINMENT_RETRY_BACKOFF_SECONDS": "0",
                "GROUPING_WINDOW_MINUTES": "60",
                "MAIL_SENDER": SENDER,
                "ACS_CALLER_ID": "+15555550000",
                "CALLBACK_BASE_URL": "https://soc-responder.example",
                "OPERATOR_AUTH": "function-key",
            }
        ) as (_azurite, fake):
            fake.add_mailbox(SENDER)
            from devtools.functions_runtime import LocalFunctionsRuntime
            from function_app import build_app
            from shared import runtime

            vms = _seed_vms(fake, max(1, total // 20))
            alerts = _alerts(total, vms)
            with LocalFunctionsRuntime(
                build_app(), now=datetime.now(UTC), auto_run=False, host_json=str(ROOT / "host.json")
            ) as rt:
                trips, trip_detail = _round_trips(runtime.context())
                fake.clear_log()
                elapsed, latencies, statuses = _storm(rt, alerts)
                mails_by_minute: dict[str, Counter] = defaultdict(Counter)
                calls_by_minute: dict[str, Counter] = defaultdict(Counter)
                seen = mails_seen = calls_seen = 0
                p1_first_call_minute = None
                first_call: dict[str, int] = {}  # incident -> simulated minute of the first call announcing it
                live: Counter = Counter()  # calls in progress per number
                peak: Counter = Counter()  # the most calls in progress to one number at once
                caller_peak: Counter = Counter()  # ... and from one caller number
                for minute in range(61):
                    if minute == 0:
                        rt.durable.run_until_idle()
                    else:
                        rt.durable.advance(timedelta(minutes=1))
                    new, seen = _sent(fake, seen)
                    mail = fake.sent_mail()
                    for m in mail[mails_seen:]:
                        for rcpt in dict.fromkeys(m.to):
                            mails_by_minute[str(rcpt)][minute] += 1
                    mails_seen = len(mail)
                    for r in new:
                        if r.api == "acs" and r.method == "POST" and r.path == "/calling/callConnections":
                            for target in (r.body or {}).get("targets", []):
                                number = (target.get("phoneNumber") or {}).get("value") or target.get("rawId")
                                calls_by_minute[str(number)][minute] += 1
                                if p1_first_call_minute is None:
                                    p1_first_call_minute = minute
                    calls_seen = _ring_and_end(rt, fake, minute, calls_seen, first_call, live, peak, caller_peak)
                store = runtime.context().store
                incidents = list(store.iter_incidents())
        entities = {a["entities"][0].get("azureResourceId") or a["entities"][0]["name"] for a in alerts}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_clients()

    lat = sorted(latencies)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    storm_incidents = [i for i in incidents if not i.title.startswith("Round trips")]
    print(f"   storm: {total} alerts from {CALLERS} callers ({total - total // 20} P3/P4 noise, {total // 20} P1)")
    print(
        f"   ingest: {total / elapsed:.0f} alerts/s, p50 {statistics.median(lat) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms; answers {dict(statuses)}"
    )
    print(f"   incidents {len(storm_incidents)} vs distinct entities {len(entities)}")
    for rcpt, by_minute in sorted(mails_by_minute.items(), key=lambda kv: -sum(kv[1].values()))[:6]:
        print(f"   emails to {rcpt}: {sum(by_minute.values())} total, busiest minute {max(by_minute.values())}")
    for number, by_minute in sorted(calls_by_minute.items(), key=lambda kv: -sum(kv[1].values()))[:6]:
        print(
            f"   calls to …{number[-4:]}: {sum(by_minute.values())} in the first hour, "
            f"at most {max(by_minute.values())} in one minute"
        )
    print(f"   first call: simulated minute {p1_first_call_minute} of the storm (queue latency not charged)")
    print(
        "   calls in progress at once: at most "
        + ", ".join(f"{n} to …{number[-4:]}" for number, n in sorted(peak.items()))
        + "; per caller number at most "
        + ", ".join(f"{n} from …{number[-4:]}" for number, n in sorted(caller_peak.items()))
    )
    p1s = [i.id for i in storm_incidents if i.priority.value == "P1"]
    waits = sorted(first_call.get(i, 61) for i in p1s)
    if waits:
        print(
            f"   P1 arrival → first call announcing it: median {statistics.median(waits):g} min, "
            f"max {waits[-1]} min (simulated minutes; 61 = not called in the hour) over {len(p1s)} P1s; "
            f"first call announced {sum(1 for w in waits if w == 0)}"
        )
    print("   (before issue 14: 200 calls per number in the first hour, 50 in one minute, 50 at once)")
    print(f"   ingest round trips per new incident: {trips} ({json.dumps(trip_detail)}); minimum 4")


if __name__ == "__main__":
    main()
