"""Fixtures for notification and escalation tests.

``app`` is the functional harness (tests/fixtures/app.py); ``notify_app``
adds the MAIL_SENDER mailbox to the fake and puts the durable clock on a known
minute, so call times are exact. ``make_incident`` builds incidents for pure tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.fixtures.app import APP_SETTINGS

CONTOSO_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CONTOSO_PHONES = ["+15555550100", "+15555550101"]
CONTOSO_EMAILS = ["soc-alerts@contoso.example"]
CONTOSO_EMERGENCY_EMAILS = ["dana.reyes@contoso.example", "sam.okafor@contoso.example"]
SOC_EMAILS = ["soc-oncall@soc.example", "duty-manager@soc.example"]
MAIL_SENDER = APP_SETTINGS["MAIL_SENDER"]
CALLER_ID = APP_SETTINGS["ACS_CALLER_ID"]
CALLBACK_BASE = APP_SETTINGS["CALLBACK_BASE_URL"]
UTC = UTC


def pager_id(phone: str) -> str:
    """The durable instance id of a number's pager (issue 14)."""
    from shared.notify.contact_schedule import contact_key, pager_instance_id

    return pager_instance_id(contact_key(phone))


def generic_alert(
    score: int,
    title: str = "Ransomware note dropped on file server",
    alert_id: str = "fgt-1",
    tenant: str | None = CONTOSO_TENANT,
    **extra: Any,
) -> dict:
    """A generic alert (samples/generic-alert.json shape) with an explicit score."""
    body = {
        "source": "fortigate",
        "id": alert_id,
        "title": title,
        "score": score,
        "observedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "entities": [{"kind": "networkDevice", "name": f"fgt-edge-{alert_id}"}],
        **extra,
    }
    if tenant:
        body["tenantId"] = tenant
    return body


class NotifyHarness:
    """The app harness plus notification helpers."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def ingest(self, score: int, **kwargs: Any) -> str:
        r = self.app.post("/api/alerts", generic_alert(score, **kwargs))
        assert r.status == 202, r.text
        return r.json()["incidentId"]

    def defender_vm_incident(self) -> tuple[str, str]:
        """samples/defender-alert-arm.json on a seeded VM (partner contoso, enforce): (incident id, NIC id)."""
        from tests.fixtures.app import sample

        sub = "11111111-2222-3333-4444-555555555555"
        vm = f"/subscriptions/{sub}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/vm-web-01"
        nic = f"/subscriptions/{sub}/resourceGroups/rg-prod/providers/Microsoft.Network/networkInterfaces/vm-web-01-nic"
        self.app.fake.add_nic(nic, "eastus", vm_id=vm)
        self.app.fake.add_vm(vm, "eastus", [nic])
        r = self.app.post("/api/alerts/defender", sample("defender-alert-arm.json"))
        assert r.status == 202 and r.json()["priority"] == "P1", r.text
        return r.json()["incidentId"], nic

    def incident(self, incident_id: str) -> dict:
        r = self.app.get(f"/api/incidents/{incident_id}")
        assert r.status == 200, r.text
        return r.json()

    def call_times(self, phone: str = CONTOSO_PHONES[0]) -> list[datetime]:
        """Simulated times at which ``phone`` (default: contoso's first emergency contact) was called (issue 14:
        each number's pager places its calls)."""
        return [
            c["time"]
            for c in self.app.durable.activity_calls("place_contact_call", pager_id(phone))
            if (c["result"] or {}).get("attempted")
        ]

    def pager(self, phone: str = CONTOSO_PHONES[0]) -> dict | None:
        return self.app.durable.status(pager_id(phone))

    def escalation(self, incident_id: str) -> dict | None:
        return self.app.durable.status(f"escalation-{incident_id}")

    def mails(self, contains: str | None = None) -> list:
        return [m for m in self.app.fake.sent_mail() if contains is None or contains in (m.subject or "")]

    def callback(self, call, event_type: str, *, url: str | None = None, **data: Any):
        """POST an ACS event for ``call`` (a fake CallRecord) to its callback URL (or ``url``)."""
        from urllib.parse import urlsplit

        target = urlsplit(url or call.callback_uri)
        path = target.path + (f"?{target.query}" if target.query else "")
        return self.app.post(path, self.app.fake.call_event(call.call_connection_id, event_type, **data))


class StormHarness:
    """Issue 14: a storm through the app on the durable clock — alerts in, simulated minutes with the host's
    minute timers, what each incident's timeline says."""

    TIMERS: tuple[str, ...] = ("mail_pacer",)

    def __init__(self, app, timers: tuple[str, ...] | None = None):
        self.app, self.seen = app, 0
        self.timers = timers or self.TIMERS

    def on_durable_clock(self) -> None:
        self.app.context.notifications.context.clock = lambda: self.app.durable.now

    def configure(self, **settings: str | None) -> None:
        self.app.configure(**settings)
        self.on_durable_clock()

    def ingest(self, score: int, alert_id: str, tenant: str | None = CONTOSO_TENANT) -> str:
        body = {
            "source": "bench",
            "id": alert_id,
            "title": f"Phishing link clicked on ws-{alert_id}",
            "score": score,
            "observedAt": "2026-12-02T07:00:00Z",
            "entities": [{"kind": "host", "name": f"ws-{alert_id}"}],
        }
        if tenant:
            body["tenantId"] = tenant
        r = self.app.post("/api/alerts", body)
        assert r.status == 202, r.text
        return r.json()["incidentId"]

    def minute(self) -> None:
        """One simulated minute: durable timers fire, then the host's minute timers run."""
        self.app.durable.advance(timedelta(minutes=1))
        for timer in self.timers:
            self.app.runtime.timer(timer)

    def new_mail(self) -> list:
        mail = self.app.fake.sent_mail()
        out, self.seen = mail[self.seen :], len(mail)
        return out

    def events(self, incident_id: str, event_type: str) -> list[dict]:
        doc = self.app.get(f"/api/incidents/{incident_id}").json()
        return [e for e in doc["timeline"] if e["eventType"] == event_type]


@pytest.fixture
def notify_app(app) -> NotifyHarness:  # ``app``: the harness fixture (tests/fixtures/app.py)
    app.fake.add_mailbox(MAIL_SENDER)
    # A known minute: escalations started now begin at HH:07:30, so call times are exact.
    now = app.durable.now
    start = now.replace(minute=7, second=30, microsecond=0)
    if start <= now:
        start += timedelta(hours=1)
    app.durable.advance_to(start)
    return NotifyHarness(app)


@pytest.fixture
def make_incident():
    """Build an Incident (pure tests): ``make_incident(title=..., priority="P1", ...)``."""
    from shared.ingest import open_incident
    from shared.models import Alert, Entity, Priority, RuleHit, TriageDecision

    def build(
        title: str = "Crypto-miner on vm-web-01",
        priority: str = "P1",
        partner=None,
        score: int | None = None,
        link: str | None = None,
        entities: list | None = None,
        received: datetime | None = None,
    ):
        received = received or datetime(2026, 5, 4, 10, 7, 30, tzinfo=UTC)
        p = Priority(priority)
        score = score or {"P1": 10, "P2": 8, "P3": 5, "P4": 2}[priority]
        alert = Alert(
            source="generic",
            source_id="a1",
            dedupe_keys=["generic:test:a1"],
            title=title,
            severity="High",
            observed_at=received,
            link=link,
            entities=entities
            or [Entity(kind="host", name="vm-web-01"), Entity(kind="account", upn="eve@contoso.example")],
        )
        decision = TriageDecision(
            score=score,
            priority=p,
            rules_version="t",
            rules_fired=[RuleHit(rule_id="explicit-score", description="d", effect="e", score_after=score)],
        )
        return open_incident(
            "INC-20260504-abc", alert, decision, partner, "UTC", received, received + timedelta(seconds=1)
        )

    return build
