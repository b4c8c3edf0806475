"""Alert storm (issue 14): 1,000 alerts from 8 callers — 950 P3/P4 noise on 300 hosts, 50 P1 on 50 VMs — through
the real handlers, Azurite and the local durable host (breaker 10 per hour).

Figures: alerts/s and p50/p99 of the ingest answer (wall clock, 8 threads); incidents against distinct entities
(they must be equal: grouping is race-free); emails per recipient in total and in the busiest (simulated) minute;
calls per number in the first (simulated) hour and the most calls one number gets in one minute; the most calls
in progress to one number at once and per caller number (issue 14: one, and at most ACS's two); time from a P1's
arrival to the first call announcing it; emails per partner and per mailbox minute (storm summaries, mail pacer);
Teams cards per channel; ingest round trips to the evidence store for a new incident (against the minimum the
design needs), a join and a redelivery, before → after issue 14's round-trip work.

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


# Measured on the code before issue 14's round-trip work (same scenario, same counting): new incident, join,
# redelivery. Printed beside today's figures so a regression shows in one run.
ROUND_TRIPS_BEFORE = {"new incident": 7, "join": 8, "redelivery": 5}


def _round_trips() -> dict[str, list[str]]:
    """Evidence-store requests of one ingest on each path (a raw-request hook on the real table client,
    ``devtools/table_requests.py``): a new incident, an alert joining it, a redelivery of the first."""
    from devtools.table_requests import counted_context
    from shared.intake import generic

    ctx, sent = counted_context()

    def alert(host: str, observed: datetime):
        return {
            "source": "bench",
            "id": uuid.uuid4().hex,
            "title": "Round trips",
            "score": 5,
            "observedAt": observed.isoformat(),
            "tenantId": TENANT,
            "entities": [{"kind": "host", "name": host}],
        }

    def ingest(body: dict, expected: str) -> list[str]:
        outcome = ctx.ingest.ingest(generic.parse(body, datetime.now(UTC)))
        assert outcome.outcome == expected, outcome.outcome
        return sent.take()

    now = datetime.now(UTC)
    ingest(alert(f"warm-{uuid.uuid4().hex[:8]}", now), "created")  # tables ensured, maintenance windows read
    host = f"rt-{uuid.uuid4().hex[:8]}"
    first = alert(host, now)
    return {
        "new incident": ingest(first, "created"),
        "join": ingest(alert(host, now + timedelta(seconds=5)), "grouped"),
        "redelivery": ingest(first, "duplicate"),
    }


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
    from devtools.table_requests import TableRequests
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
                trips = _round_trips()
                fake.clear_log()
                elapsed, latencies, statuses = _storm(rt, alerts)
                mails_by_minute: dict[str, Counter] = defaultdict(Counter)
                calls_by_minute: dict[str, Counter] = defaultdict(Counter)
                seen = mails_seen = calls_seen = 0
                mail_tally = MailTally(runtime.context(), rt)  # issue 14 item 3
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
                    mail_tally.observe(minute, fake, rt)  # issue 14 item 3: mailbox and partner figures
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
                mail_tally.account(store, incidents)  # issue 14 item 3: nothing lost
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
    for path, sent in trips.items():
        minimum = " (the design's minimum: 4)" if path == "new incident" else ""
        print(
            f"   ingest round trips, {path}: {ROUND_TRIPS_BEFORE[path]} → {len(sent)}{minimum}: "
            f"{json.dumps(TableRequests.summary(sent))}"
        )
    mail_tally.report()  # issue 14 item 3
    multi_partner_storm()  # issue 14 item 3: the mailbox limit with many partners at once
    teams_channels_storm()  # issue 14 in Teams: cards per channel in the same storm


# -- issue 14 item 3: storm summaries and the mail pacer ---------------------------------------------------------


class MailTally:
    """Emails per partner (any of its addresses) and per sending mailbox, per simulated minute.

    The notification clock is put on the durable host's simulated clock, so storm windows, summary intervals
    and the mailbox's per-minute budget run in the minutes counted here; each simulated minute the
    ``mail_pacer`` timer runs (when the app has it), as the Functions host would run it once a minute.
    """

    def __init__(self, ctx, rt):
        self.ctx, self.rt = ctx, rt
        self.seen = 0
        self.first_p1: int | None = None
        self.by_mailbox: Counter = Counter()
        self.by_partner: dict[str, Counter] = defaultdict(Counter)
        self.addresses = {a: p.id for p in ctx.partners.partners for a in p.socAlertEmails}
        self.addresses.update({c.email: p.id for p in ctx.partners.partners for c in p.emergencyContacts if c.email})
        self.pacer = "mail_pacer" in {f.name for f in rt.functions.by_trigger("timerTrigger")}
        notifications = ctx.notifications
        if hasattr(notifications, "context"):
            notifications.context.clock = lambda: rt.durable.now

    def observe(self, minute: int, fake, rt) -> None:
        if self.pacer and minute > 0:
            rt.timer("mail_pacer")
        mail = fake.sent_mail()
        for m in mail[self.seen :]:
            self.by_mailbox[minute] += 1
            if self.first_p1 is None and (m.subject or "").startswith("[P1"):
                self.first_p1 = minute
            for partner in {self.addresses[a] for a in m.to if a in self.addresses}:
                self.by_partner[partner][minute] += 1
        self.seen = len(mail)

    def account(self, store, incidents) -> None:
        """Storm incidents whose timeline shows no email sent (on its own or in a summary) nor a P4 digest hold."""
        told = {"notification.email.sent", "notification.queued"}
        self.unaccounted = [
            i.id
            for i in incidents
            if not i.title.startswith("Round trips") and not told & {e.event_type for e in store.list_events(i.id)}
        ]
        self.storm_incidents = sum(not i.title.startswith("Round trips") for i in incidents)

    def report(self, compact: bool = False) -> None:
        if compact:
            totals = [sum(c.values()) for c in self.by_partner.values()]
            peaks = [max(c.values()) for c in self.by_partner.values()]
            print(
                f"   {len(self.by_partner)} partners: at most {max(totals, default=0)} emails each in total, "
                f"at most {max(peaks, default=0)} in one minute; incidents told "
                f"{self.storm_incidents - len(self.unaccounted)} of {self.storm_incidents}"
            )
            print(
                f"   mailbox {SENDER}: {sum(self.by_mailbox.values())} emails, per minute "
                f"{[self.by_mailbox[m] for m in range(max(self.by_mailbox, default=0) + 1)]} (limit 30)"
            )
            return
        print(
            f"   incidents told (an email of their own, a storm summary or a P4 digest hold on their timeline): "
            f"{self.storm_incidents - len(self.unaccounted)} of {self.storm_incidents}"
        )
        for partner, by_minute in sorted(self.by_partner.items()):
            print(
                f"   emails to partner {partner} (any of its addresses): {sum(by_minute.values())} total, "
                f"busiest minute {max(by_minute.values())} (targets 60 and 10)"
            )
        busiest = max(self.by_mailbox.values(), default=0)
        print(
            f"   mailbox {SENDER}: {sum(self.by_mailbox.values())} emails, at most {busiest} in one minute "
            f"(limit 30){'' if self.pacer else '; no storm summaries or mail pacer'}"
        )
        print(f"   first P1 email: simulated minute {self.first_p1} of the storm")


def multi_partner_storm(partners: int = 8, per_partner: int = 30) -> None:
    """A phishing campaign hitting many partners at once: each partner's storm is summarised, and the one
    sending mailbox stays within 30 emails a minute (P1 first) while nothing is lost."""
    import tempfile

    from devtools.local_azure import local_azure
    from shared.adapters.clients import reset_clients

    scale = int(os.environ.get("STORM_ALERTS", "1000")) / 1000
    per_partner = max(10, int(per_partner * scale))
    registry = json.loads((ROOT / "config/partners.json").read_text())
    template = registry["partners"][0]
    tenants = [f"00000000-0000-0000-0000-{n:012d}" for n in range(partners)]
    registry["partners"] = [
        {
            **template,
            "id": f"partner-{n}",
            "name": f"Partner {n}",
            "tenantIds": [tenant],
            "subscriptionIds": [f"00000000-1111-0000-0000-{n:012d}"],
            "socAlertEmails": [f"soc@partner-{n}.example"],
            "emergencyContacts": [
                {"name": "On call", "phone": f"+1555555{n:04d}", "email": f"oncall@partner-{n}.example"}
            ],
        }
        for n, tenant in enumerate(tenants)
    ]
    rnd = random.Random(141)
    observed = datetime.now(UTC).isoformat()
    alerts = [
        {
            "source": "bench",
            "id": f"mp-{uuid.uuid4().hex}",
            "title": f"Phishing link clicked on ws-{n}-{i:03d}",
            "score": 10 if i == 0 else rnd.choice([5, 6]),  # one P1 per partner, the rest P3
            "observedAt": observed,
            "tenantId": tenant,
            "entities": [{"kind": "host", "name": f"ws-{n}-{i:03d}"}],
        }
        for n, tenant in enumerate(tenants)
        for i in range(per_partner)
    ]
    rnd.shuffle(alerts)
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "partners.json"
        path.write_text(json.dumps(registry))
        try:
            with local_azure(
                {
                    "PARTNERS_FILE": str(path),
                    "MAIL_SENDER": SENDER,
                    "CALLBACK_BASE_URL": "https://soc-responder.example",
                    "OPERATOR_AUTH": "function-key",
                }
            ) as (_azurite, fake):
                fake.add_mailbox(SENDER)
                from devtools.functions_runtime import LocalFunctionsRuntime
                from function_app import build_app
                from shared import runtime

                with LocalFunctionsRuntime(
                    build_app(), now=datetime.now(UTC), auto_run=False, host_json=str(ROOT / "host.json")
                ) as rt:
                    tally = MailTally(runtime.context(), rt)
                    _storm(rt, alerts)
                    for minute in range(16):
                        if minute == 0:
                            rt.durable.run_until_idle()
                        else:
                            rt.durable.advance(timedelta(minutes=1))
                        tally.observe(minute, fake, rt)
                    store = runtime.context().store
                    tally.account(store, list(store.iter_incidents()))
        finally:
            os.environ.clear()
            os.environ.update(saved)
            reset_clients()
    print(f"   many partners at once: {len(alerts)} alerts, {partners} partners ({per_partner} each, one P1 each)")
    tally.report(compact=True)


# -- issue 14 in Teams: the same storm with Teams channels for contoso and the SOC --------------------------------


def teams_channels_storm(minutes: int = 31) -> None:
    """The main storm again, with contoso's and the SOC's Teams channels (webhook URLs in the fake's Key Vault):
    cards per channel in total and in the busiest simulated minute, the ``teams_delivery`` and ``mail_pacer``
    timers run each minute as the host would; every P1/P2 incident's card is told (posted, or folded and then
    carried by a posted summary card)."""
    import tempfile

    from devtools.local_azure import local_azure
    from shared.adapters.clients import reset_clients

    total = int(os.environ.get("STORM_ALERTS", "1000"))
    registry = json.loads((ROOT / "config/partners.json").read_text())
    for p in registry["partners"]:
        p["teamsWebhookSecret"] = f"teams-{p['id']}"
    registry["soc"]["teamsWebhookSecret"] = "teams-soc"
    saved = dict(os.environ)
    by_minute: dict[str, Counter] = defaultdict(Counter)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "partners.json"
        path.write_text(json.dumps(registry))
        try:
            with local_azure(
                {
                    "RESPONSE_MODE": "enforce",
                    "BLAST_RADIUS_MAX": "10",
                    "BLAST_RADIUS_WINDOW_MINUTES": "60",
                    "CONTAINMENT_RETRY_BACKOFF_SECONDS": "0",
                    "GROUPING_WINDOW_MINUTES": "60",
                    "PARTNERS_FILE": str(path),
                    "MAIL_SENDER": SENDER,
                    "ACS_CALLER_ID": "+15555550000",
                    "CALLBACK_BASE_URL": "https://soc-responder.example",
                    "OPERATOR_AUTH": "function-key",
                }
            ) as (_azurite, fake):
                fake.add_mailbox(SENDER)
                for p in [*registry["partners"], {"id": "soc"}]:
                    fake.set_secret(f"teams-{p['id']}", fake.teams_webhook(p["id"]))
                from devtools.functions_runtime import LocalFunctionsRuntime
                from function_app import build_app
                from shared import runtime

                alerts = _alerts(total, _seed_vms(fake, max(1, total // 20)))
                with LocalFunctionsRuntime(
                    build_app(), now=datetime.now(UTC), auto_run=False, host_json=str(ROOT / "host.json")
                ) as rt:
                    tally = MailTally(runtime.context(), rt)  # the notification clock on the simulated one
                    _storm(rt, alerts)
                    seen = 0
                    for minute in range(minutes):
                        if minute == 0:
                            rt.durable.run_until_idle()
                        else:
                            rt.durable.advance(timedelta(minutes=1))
                        tally.observe(minute, fake, rt)
                        if minute > 0:
                            rt.timer("teams_delivery")
                        posts = fake.teams_posts()
                        for post in posts[seen:]:
                            by_minute[post.channel][minute] += 1
                        seen = len(posts)
                    store = runtime.context().store
                    untold = told = 0
                    for incident in store.iter_incidents():
                        if incident.priority.value not in ("P1", "P2"):
                            continue
                        kinds = {e.event_type for e in store.list_events(incident.id)}
                        sent = "notification.teams.sent" in kinds
                        told += sent
                        untold += not sent
        finally:
            os.environ.clear()
            os.environ.update(saved)
            reset_clients()
    for channel, counts in sorted(by_minute.items()):
        print(
            f"   Teams channel {channel}: {sum(counts.values())} cards in {minutes} simulated minutes, "
            f"busiest minute {max(counts.values())}"
        )
    print(f"   P1/P2 incidents with a Teams card posted (their own or a summary): {told} of {told + untold}")


if __name__ == "__main__":
    main()
