"""`make demo`, last section: an alert storm (issue 14) on the same local stand-ins, in simulated time.

A phishing campaign hits the demo's storm partner (Fabrikam, only in the demo's copy of the registry, so its
storm window, pager and call budget start clean): 40 deliveries within a minute — a few P1s on VMs, the rest
P3 on workstations, some workstations hit twice, some alerts redelivered. The durable host is paused while they
arrive (as a burst outruns the host), then runs; the notification clock is put on the durable clock (as
benchmarks/storm.py ``MailTally`` and tests/notify/conftest.py ``StormHarness`` do) and simulated minutes pass,
the ``mail_pacer`` timer running each minute as the Functions host would. Nobody answers the phone: at the end
of each minute every call still ringing is ended as ACS would (``CallDisconnected``). Everything printed is a
count, so the section reads the same on every run.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

PARTNER: dict[str, Any] = {
    "id": "fabrikam",
    "name": "Fabrikam Inc",
    "tenantIds": ["9b1f0c3e-7a2d-4e5f-8c6b-0d1e2f3a4b5c"],
    "subscriptionIds": ["22222222-3333-4444-5555-666666666666"],
    "socAlertEmails": ["soc-alerts@fabrikam.example"],
    "emergencyContacts": [
        {"name": "Alex Kim", "phone": "+15555550200", "email": "alex.kim@fabrikam.example"},
        {"name": "Riya Shah", "phone": "+15555550201", "email": "riya.shah@fabrikam.example"},
    ],
    "timezone": "Europe/London",
}
TENANT = PARTNER["tenantIds"][0]
RG = f"/subscriptions/{PARTNER['subscriptionIds'][0]}/resourceGroups/rg-fabrikam"
VMS = 4  # P1: ransomware behaviour on VMs
WORKSTATIONS = 28  # P3: a phishing link clicked
TWICE = 4  # workstations whose user clicked twice (a second alert joins the open incident)
REDELIVERED = 4  # alerts delivered again (a caller's retry)
MINUTES = 6  # the first storm summary goes out STORM_SUMMARY_MINUTES (5) after the storm began


def storm_alerts(observed: str) -> list[dict[str, Any]]:
    """The 40 deliveries, in a fixed order: P1s spread through the burst, retries near the end."""

    def alert(alert_id: str, title: str, score: int, entity: dict[str, str], **where: str) -> dict[str, Any]:
        return {
            "source": "demo-storm",
            "id": alert_id,
            "title": title,
            "score": score,
            "observedAt": observed,
            **where,
            "entities": [entity],
        }

    p3 = [
        alert(
            f"phish-{n:02d}",
            f"Phishing link clicked on fab-ws-{n:02d}",
            5,
            {"kind": "host", "name": f"fab-ws-{n:02d}"},
            tenantId=TENANT,
        )
        for n in range(WORKSTATIONS)
    ]
    p3 += [
        alert(
            f"phish-{n:02d}-again",
            f"Phishing link clicked again on fab-ws-{n:02d}",
            5,
            {"kind": "host", "name": f"fab-ws-{n:02d}"},
            tenantId=TENANT,
        )
        for n in range(TWICE)
    ]
    p1 = [
        alert(
            f"ransom-{n}",
            f"Ransomware behaviour detected on vm-fab-{n:02d}",
            10,
            {
                "kind": "host",
                "name": f"vm-fab-{n:02d}",
                "azureResourceId": f"{RG}/providers/Microsoft.Compute/virtualMachines/vm-fab-{n:02d}",
            },
            subscriptionId=PARTNER["subscriptionIds"][0],
        )
        for n in range(VMS)
    ]
    burst: list[dict[str, Any]] = []
    for i, body in enumerate(p3):
        burst.append(body)
        if i % 8 == 3 and p1:
            burst.append(p1.pop(0))
    burst += p1
    burst += [burst[k * 7] for k in range(REDELIVERED)]
    return burst


def seed_vms(fake) -> None:
    for n in range(VMS):
        nic = f"{RG}/providers/Microsoft.Network/networkInterfaces/vm-fab-{n:02d}-nic"
        vm = f"{RG}/providers/Microsoft.Compute/virtualMachines/vm-fab-{n:02d}"
        fake.add_nic(nic, "westeurope", vm_id=vm)
        fake.add_vm(vm, "westeurope", [nic])


def run(rt, ctx, fake) -> dict[str, Any]:
    """The storm through the handlers, then ``MINUTES`` simulated minutes; the figures the report prints."""
    seed_vms(fake)
    addresses = {*PARTNER["socAlertEmails"], *(c["email"] for c in PARTNER["emergencyContacts"])}
    numbers = [c["phone"] for c in PARTNER["emergencyContacts"]]
    notify = ctx.notifications.context
    saved_clock, saved_auto_run = notify.clock, rt.auto_run
    mails_seen, calls_seen = len(fake.sent_mail()), len(fake.calls())
    outcomes: Counter = Counter()
    accepted = 0
    emails: list[tuple[int, str]] = []  # (simulated minute, subject) of each email to the partner
    calls: Counter = Counter()
    first_announced: dict[str, int] = {}
    try:
        notify.clock = lambda: rt.durable.now  # storm windows and the mailbox minute in simulated time
        rt.auto_run = False  # the burst arrives faster than the host runs it
        alerts = storm_alerts(rt.durable.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        incident_ids: set[str] = set()
        for body in alerts:
            resp = rt.http("POST", "/api/alerts", body=body)
            answer = json.loads(resp.get_body()) if resp.status_code == 202 else {}
            accepted += resp.status_code == 202
            outcomes[answer.get("outcome") or f"HTTP {resp.status_code}"] += 1
            if answer.get("incidentId"):
                incident_ids.add(answer["incidentId"])
        for minute in range(MINUTES + 1):
            if minute == 0:
                rt.durable.run_until_idle()
            else:
                rt.durable.advance(timedelta(minutes=1))
                rt.timer("mail_pacer")
            mail = fake.sent_mail()
            emails += [(minute, m.subject or "") for m in mail[mails_seen:] if addresses & set(m.to)]
            mails_seen = len(mail)
            calls_seen = _ring_and_end(rt, ctx, fake, calls_seen, numbers, calls, first_announced)
    finally:
        notify.clock, rt.auto_run = saved_clock, saved_auto_run
    told = Counter(_how_told(ctx.store.list_events(iid)) for iid in incident_ids)
    priorities = Counter(_priority(ctx.store, iid) for iid in incident_ids)
    by_minute = Counter(minute for minute, _ in emails)
    summaries = sum(1 for _, subject in emails if " storm] Summary " in subject)
    hosts = {b["entities"][0]["name"] for b in alerts}
    return {
        "alerts": len(alerts),
        "accepted": accepted,
        "outcomes": dict(outcomes),
        "incidents": len(incident_ids),
        "priorities": dict(sorted(priorities.items())),
        "hosts": len(hosts),
        "emails": len(emails),
        "summaries": summaries,
        "singles": len(emails) - summaries,
        "busiestMinute": max(by_minute.values(), default=0),
        "calls": {n: calls[n] for n in numbers},
        "firstCallAnnounced": dict(first_announced),
        "told": dict(told),
        "minutes": MINUTES,
    }


def _ring_and_end(rt, ctx, fake, seen: int, numbers: list[str], calls: Counter, first: dict[str, int]) -> int:
    """Count this minute's calls to the partner's numbers and what the first call to each announced, then
    end every call as ACS does when nobody answers."""
    placed = fake.calls()
    for call in placed[seen:]:
        number = str(call.targets[0])
        if number not in numbers:
            continue
        calls[number] += 1
        query = parse_qs(urlsplit(call.callback_uri).query)
        if number not in first and "contact" in query:
            got = ctx.store.get_record("Notifications", f"~contact-{query['contact'][0]}", query["callId"][0])
            first[number] = len((got[0].get("announced") if got else None) or [])
    for call in placed[seen:]:
        target = urlsplit(call.callback_uri)
        rt.http(
            "POST", f"{target.path}?{target.query}", body=fake.call_event(call.call_connection_id, "CallDisconnected")
        )
    return len(placed)


def _priority(store, incident_id: str) -> str:
    got = store.get_incident(incident_id)
    return got[0].priority.value if got else "?"


def _how_told(events) -> str:
    """``own email``, ``storm summary`` or ``not told`` (no email sent on the incident's timeline)."""
    sent = [e for e in events if e.event_type == "notification.email.sent"]
    if not sent:
        return "not told"
    return "own email" if any((e.data or {}).get("event") != "storm-summary" for e in sent) else "storm summary"


def render(s: dict[str, Any]) -> str:
    """The report's "Alert storm" section."""
    outcomes = ", ".join(f"{n} {k}" for k, n in sorted(s["outcomes"].items()))
    priorities = ", ".join(f"{n} {p}" for p, n in s["priorities"].items())
    told = s["told"]
    lines = [
        "",
        f"Alert storm (issue 14): a phishing campaign at {PARTNER['name']}, {s['alerts']} deliveries within a minute,",
        f"then {s['minutes']} simulated minutes (mail_pacer each minute; nobody answers the phone):",
        f"  alerts accepted: {s['accepted']} of {s['alerts']} ({outcomes})",
        f"  incidents opened: {s['incidents']} ({priorities}) for {s['hosts']} distinct hosts",
        (
            f"  emails to {PARTNER['name']}: {s['emails']} ({s['singles']} single, {s['summaries']} storm summary),"
            f" busiest minute {s['busiestMinute']}"
        ),
    ]
    for number, n in s["calls"].items():
        lines.append(
            f"  calls to …{number[-4:]}: {n}, the first announcing {s['firstCallAnnounced'].get(number, 0)} incident(s)"
        )
    lines += [
        (
            f"  incidents told: {s['incidents'] - told.get('not told', 0)} of {s['incidents']}"
            f" ({told.get('own email', 0)} by their own email, {told.get('storm summary', 0)} in a storm summary)"
        ),
        "",
    ]
    return "\n".join(lines)
