"""Incident emails through Graph sendMail on the HTTPS fake (real msgraph-sdk client)."""

from __future__ import annotations

import html.parser

from tests.fixtures.app import sample
from tests.notify.conftest import CONTOSO_EMAILS, CONTOSO_EMERGENCY_EMAILS, MAIL_SENDER, SOC_EMAILS

EVIL = "<script>alert(document.cookie)</script><img src=x onerror=\"fetch('//evil')\">"


class _Tags(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs


def test_p1_email_lists_the_actions_and_is_inert_with_a_hostile_title(notify_app):
    app = notify_app
    incident_id = app.ingest(10, title=EVIL, alert_id="evil-1")
    [mail] = app.fake.sent_mail()
    assert mail.sender == MAIL_SENDER and mail.importance == "high" and mail.body_type == "html"
    assert mail.to == CONTOSO_EMAILS + CONTOSO_EMERGENCY_EMAILS
    body = mail.body_content
    parser = _Tags()
    parser.feed(body)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert not any(name.startswith("on") for name, _ in parser.attrs)
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in body
    assert mail.subject.startswith(f"[P1 Critical] New security incident: {incident_id} <script>")
    # what happened, every action with its result, evidence links, next steps
    actions = app.incident(incident_id)["actions"]
    assert actions, "the P1 runbook planned containment for the network device"
    for action in actions:
        assert (action.get("targetDisplay") or action["target"]) in body
    assert f"https://soc-responder.example/api/incidents/{incident_id}" in body
    assert "What you should do next" in body and "press 1" in body.lower()
    row = next(r for r in app.incident(incident_id)["notifications"] if r.get("channel") == "email")
    assert row["status"] == "sent" and row["recipients"] == mail.to and "<script>" in row["text"]
    doc = app.incident(incident_id)
    assert doc["sla"]["firstResponseAt"] is not None
    types = [e["eventType"] for e in doc["timeline"]]
    assert types.index("notification.email.sent") < types.index("sla.first-response")
    assert types.count("sla.first-response") == 1


def test_defender_vm_alert_email_lists_the_isolation_and_says_flows_may_survive(notify_app):
    app = notify_app
    incident_id, _ = app.defender_vm_incident()
    [mail] = app.fake.sent_mail()
    isolation = next(a for a in app.incident(incident_id)["actions"] if a["kind"] == "isolate-vm")
    assert "vm-web-01" in mail.body_content and isolation["status"] in mail.body_content
    assert "may survive the NSG change" in mail.body_content and "restart is opt-in" in mail.body_content


def test_a_replayed_notify_activity_never_sends_twice(notify_app):
    app = notify_app
    incident_id = app.ingest(10)
    assert len(app.fake.sent_mail()) == 1
    again = app.runtime.invoke("notify_incident", request={"incidentId": incident_id, "epoch": 1})
    assert again["email"]["duplicate"] is True and again["escalate"] is True
    assert len(app.fake.sent_mail()) == 1
    assert app.timeline(incident_id).count("notification.email.sent") == 1


def test_a_refused_email_is_evidenced_and_a_later_replay_sends_it_once(notify_app):
    app = notify_app
    app.fake.inject(
        "POST",
        r"/sendMail$",
        403,
        times=1,
        body={"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}},
    )
    incident_id = app.ingest(9)
    failed = [e for e in app.incident(incident_id)["timeline"] if e["eventType"] == "notification.email.failed"]
    assert len(failed) == 1 and failed[0]["data"]["error"]["status"] == 403
    assert failed[0]["data"]["error"]["code"] == "ErrorAccessDenied"
    assert app.incident(incident_id)["sla"]["firstResponseAt"] is not None  # the first call attempt responded
    for _ in range(2):
        app.runtime.invoke("notify_incident", request={"incidentId": incident_id, "epoch": 1})
    assert len(app.fake.sent_mail()) == 1
    assert app.timeline(incident_id).count("notification.email.sent") == 1


def test_email_disabled_is_evidenced_not_silent(notify_app):
    app = notify_app
    app.configure(MAIL_SENDER=None)
    incident_id = app.ingest(5)
    assert app.fake.sent_mail() == []
    skipped = [e for e in app.incident(incident_id)["timeline"] if e["eventType"] == "notification.email.skipped"]
    assert skipped and "MAIL_SENDER" in skipped[0]["data"]["reason"]


def test_p2_and_p3_email_the_soc_alert_contacts_only_and_do_not_phone(notify_app):
    app = notify_app
    p2 = app.ingest(8, alert_id="p2")
    p3 = app.ingest(5, alert_id="p3", title="Storage account allows public blob access")
    mails = {m.subject.split(":")[0]: m for m in app.fake.sent_mail()}
    assert mails["[P2 Major] New security incident"].to == CONTOSO_EMAILS
    assert mails["[P3 Minor] New security incident"].to == CONTOSO_EMAILS
    assert mails["[P3 Minor] New security incident"].importance == "normal"
    assert app.fake.calls() == []
    assert app.escalation(p2) is None and app.escalation(p3) is None


def test_unknown_partner_goes_to_the_soc(notify_app):
    app = notify_app
    incident_id = app.ingest(10, tenant=None, alert_id="nopartner")
    [mail] = app.fake.sent_mail()
    assert mail.to == SOC_EMAILS
    assert "routed to the SOC" in mail.body_content
    assert [c.targets for c in app.fake.calls()] == [["+15555550199"]]
    assert app.escalation(incident_id)["runtimeStatus"] == "Running"


def test_failed_containment_email_goes_to_the_partner_and_the_soc(notify_app):
    app = notify_app
    # The VM the Defender alert names does not exist: isolating it fails for good.
    r = app.post("/api/alerts/defender", sample("defender-alert-arm.json"))
    incident_id = r.json()["incidentId"]
    [mail] = app.mails("Containment FAILED")
    assert set(SOC_EMAILS) <= set(mail.to) and set(CONTOSO_EMAILS) <= set(mail.to)
    failed = [a for a in app.incident(incident_id)["actions"] if a["status"] == "failed"]
    assert failed and all((a.get("targetDisplay") or a["target"]) in mail.body_content for a in failed)
    assert "Contain the resources marked failed yourself now" in mail.body_content


def test_an_email_that_fails_outside_graph_is_recorded_failed_not_left_sending(notify_app):
    """A credential failure (the token endpoint is down) must not leave the row "sending" forever."""
    from datetime import timedelta

    from shared.adapters.clients import reset_clients

    app = notify_app
    reset_clients()  # no cached token: the next Graph call must ask the identity endpoint
    app.fake.inject("GET", r"/msi/token", status=500, times=200)
    alert = sample("generic-alert.json")
    alert["score"] = 5
    incident_id = app.post("/api/alerts", alert).json()["incidentId"]
    app.durable.advance(timedelta(minutes=5))
    doc = app.get(f"/api/incidents/{incident_id}").json()
    emails = [n for n in doc["notifications"] if n.get("channel") == "email"]
    assert emails and {n["status"] for n in emails} == {"failed"}
    assert "notification.email.failed" in [e["eventType"] for e in doc["timeline"]]
