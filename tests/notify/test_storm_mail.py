"""Issue 14: storm summaries and the mail pacer through the real handlers, Graph SDK and the HTTPS fake.

The notification clock is put on the durable host's simulated clock, so storm windows, summary intervals
and the mailbox's per-minute budget move when the test moves the clock; the ``mail_pacer`` timer is run by
the app harness as the host would run it each minute.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.fixtures.app import APP_SETTINGS, ROOT
from tests.notify.conftest import CONTOSO_EMAILS, SOC_EMAILS, StormHarness

SENDER = APP_SETTINGS["MAIL_SENDER"]


@pytest.fixture
def storm(app) -> StormHarness:
    app.fake.add_mailbox(SENDER)
    harness = StormHarness(app)
    harness.on_durable_clock()
    return harness


def test_a_storm_folds_the_rest_into_one_summary_and_every_incident_is_evidenced(storm):
    storm.configure(STORM_THRESHOLD="3", STORM_WINDOW_MINUTES="5", STORM_SUMMARY_MINUTES="5")
    incidents = [storm.ingest(5, f"p3-{n}") for n in range(8)]
    first = storm.new_mail()
    assert len(first) == 3 and all(m.to == CONTOSO_EMAILS for m in first)  # below the threshold: as today
    folded = incidents[3:]
    for iid in folded:
        [event] = storm.events(iid, "notification.email.folded")
        assert event["data"]["summary"] == "~storm-contoso/summary-00001"
        assert storm.app.get(f"/api/incidents/{iid}").json()["sla"].get("firstResponseAt") is None

    for _ in range(4):  # the summary is due 5 minutes after the storm began
        storm.minute()
        assert storm.new_mail() == []
    storm.minute()
    [summary] = storm.new_mail()
    assert summary.subject.startswith("[P3 storm] Summary 1: 5 incident(s) for Contoso Ltd")
    assert summary.to == CONTOSO_EMAILS
    assert all(iid in summary.body_content for iid in folded)
    assert f"/api/console/incidents/{folded[0]}" in summary.body_content
    for iid in folded:  # the summary's send is on every incident it carries, with the first response
        [sent] = storm.events(iid, "notification.email.sent")
        assert sent["data"]["event"] == "storm-summary"
        assert sent["data"]["summary"] == "~storm-contoso/summary-00001"
        assert storm.events(iid, "sla.first-response")
    for iid in incidents[:3]:
        assert [e["data"]["event"] for e in storm.events(iid, "notification.email.sent")] == ["new-incident"]
    storm.minute()
    storm.minute()
    assert storm.new_mail() == []  # nothing pending: no empty summary


def test_the_first_p1_goes_at_once_in_a_storm_and_priority_changes_are_folded(storm):
    storm.configure(STORM_THRESHOLD="2")
    noise = [storm.ingest(5, f"n-{n}") for n in range(3)]
    storm.new_mail()
    p1 = storm.ingest(10, "p1-a")
    [p1_mail] = storm.new_mail()
    assert p1_mail.subject.startswith("[P1 Critical]")
    assert storm.app.get(f"/api/incidents/{p1}").json()["sla"]["firstResponseAt"] is not None
    second = storm.ingest(10, "p1-b")
    assert storm.new_mail() == [] and storm.events(second, "notification.email.folded")
    r = storm.app.post(
        f"/api/incidents/{noise[0]}/priority", {"actor": "analyst@soc.example", "priority": "P2", "reason": "VIP"}
    )
    assert r.status == 200 and r.json()["email"] == "folded"
    assert storm.new_mail() == []
    for _ in range(5):
        storm.minute()
    [summary] = storm.new_mail()
    assert summary.subject.startswith("[P1 storm] Summary 1:") and summary.importance == "high"
    assert second in summary.body_content and noise[0] in summary.body_content
    assert "Every P1 and its containment result" in summary.body_content
    assert "priority-changed: 1" in summary.body_content
    # the P1's emergency contacts were folded in too: the summary reaches everyone the emails would have
    assert set(CONTOSO_EMAILS) < set(summary.to) and "dana.reyes@contoso.example" in summary.to


def test_a_quiet_partner_is_unaffected_by_anothers_storm(storm):
    storm.configure(STORM_THRESHOLD="2")
    for n in range(4):
        storm.ingest(5, f"c-{n}")
    assert len(storm.new_mail()) == 2
    quiet = [storm.ingest(5, f"soc-{n}", tenant=None) for n in range(2)]  # no partner: the SOC's own contacts
    mail = storm.new_mail()
    assert len(mail) == 2 and all(m.to == SOC_EMAILS[:1] for m in mail)  # its P3 alert address
    for iid in quiet:
        assert storm.events(iid, "notification.email.folded") == []


def test_p1_goes_before_p3_when_the_mailbox_minute_is_full_and_nothing_is_lost(storm):
    storm.configure(STORM_THRESHOLD="0", MAIL_MAX_PER_MINUTE="2")  # no storm summaries: the pacer alone
    p3 = [storm.ingest(5, f"q-{n}") for n in range(4)]
    p1 = storm.ingest(10, "q-p1")
    assert len(storm.new_mail()) == 2  # the minute's budget
    for iid in p3[2:] + [p1]:
        [queued] = storm.events(iid, "notification.email.queued")
        assert queued["data"]["reason"] == "limit"
    storm.minute()
    first, second = storm.new_mail()
    assert first.subject.startswith("[P1 Critical]") and p1 in first.subject  # P1 first
    assert p3[2] in second.subject  # then the oldest P3
    storm.minute()
    [last] = storm.new_mail()
    assert p3[3] in last.subject
    for iid in p3 + [p1]:
        assert len(storm.events(iid, "notification.email.sent")) == 1
    storm.minute()
    assert storm.new_mail() == []


def test_graph_429_on_send_is_sent_in_a_later_minute_not_dropped(storm):
    storm.configure(STORM_THRESHOLD="0")
    storm.app.fake.inject(
        "POST",
        r"/sendMail$",
        429,
        headers={"Retry-After": "300"},  # longer than the SDK waits: the pacer takes it over
        body={"error": {"code": "ApplicationThrottled", "message": "Too many requests"}},
    )
    iid = storm.ingest(5, "t-1")
    assert storm.new_mail() == []
    [queued] = storm.events(iid, "notification.email.queued")
    assert queued["data"]["reason"] == "throttled"
    assert storm.events(iid, "notification.email.failed") == []
    other = storm.ingest(5, "t-2")  # the minute is throttled: it waits too, behind the first
    assert storm.new_mail() == [] and storm.events(other, "notification.email.queued")
    storm.app.fake.inject("POST", r"/sendMail$", 429, headers={"Retry-After": "300"})
    storm.minute()  # throttled again on the queue's first send: both keep their places
    assert storm.new_mail() == []
    assert len(storm.events(iid, "notification.email.queued")) == 2
    pacer = storm.app.context.notifications.email.pacer
    assert [q.record_id for q in pacer.waiting()] == ["email-e1-runbook"] * 2
    storm.minute()
    mail = storm.new_mail()
    assert [iid in m.subject for m in mail] == [True, False] and other in mail[1].subject
    assert len(storm.events(iid, "notification.email.sent")) == 1
    doc = storm.app.get(f"/api/incidents/{iid}").json()
    [row] = [n for n in doc["notifications"] if n.get("channel") == "email"]
    assert row["status"] == "sent"
    assert pacer.waiting() == []


@pytest.fixture
def many_partners(tmp_path, storm) -> list[str]:
    """Six partners (each its own tenant) in a registry of their own."""
    registry = json.loads((ROOT / "config/partners.json").read_text())
    template = registry["partners"][0]
    tenants = []
    registry["partners"] = []
    for n in range(6):
        tenant = f"00000000-0000-0000-0000-{n:012d}"
        tenants.append(tenant)
        registry["partners"].append(
            {
                **template,
                "id": f"partner-{n}",
                "name": f"Partner {n}",
                "tenantIds": [tenant],
                "subscriptionIds": [f"00000000-1111-0000-0000-{n:012d}"],
                "socAlertEmails": [f"soc@partner-{n}.example"],
            }
        )
    path = tmp_path / "partners.json"
    path.write_text(json.dumps(registry))
    storm.configure(PARTNERS_FILE=str(path))
    return tenants


def test_the_mailbox_never_sends_more_than_its_limit_with_many_partners(storm, many_partners):
    """Six partners, each below its storm threshold (7 emails): 42 emails at once, 30 a minute at most."""
    per_minute: Counter = Counter()
    for tenant_no, tenant in enumerate(many_partners):
        for n in range(7):
            storm.ingest(5, f"mp-{tenant_no}-{n}", tenant=tenant)
    per_minute[0] = len(storm.new_mail())
    for minute in range(1, 4):
        storm.minute()
        per_minute[minute] = len(storm.new_mail())
    assert per_minute[0] == 25  # 30 a minute, 5 of them kept for P1 emails
    assert max(per_minute.values()) <= 30 and sum(per_minute.values()) == 42
    assert all(m.to and m.to[0].startswith("soc@partner-") for m in storm.app.fake.sent_mail())


def test_a_replayed_notify_step_in_a_storm_folds_once(storm):
    storm.configure(STORM_THRESHOLD="1")
    storm.ingest(5, "r-0")
    iid = storm.ingest(5, "r-1")
    assert storm.events(iid, "notification.email.folded")
    again = storm.app.runtime.invoke("notify_incident", request={"incidentId": iid, "epoch": 1})
    assert again["email"]["duplicate"] is True and again["email"]["status"] == "folded"
    assert len(storm.events(iid, "notification.email.folded")) == 1
    for _ in range(5):
        storm.minute()
    [summary] = [m for m in storm.new_mail() if "storm" in m.subject]
    assert summary.body_content.count(f"/api/console/incidents/{iid}") == 1


def test_a_summary_refused_for_good_leaves_its_incidents_for_the_next_one(storm):
    storm.configure(STORM_THRESHOLD="1", STORM_SUMMARY_MINUTES="2")
    storm.ingest(5, "f-0")
    folded = [storm.ingest(5, f"f-{n}") for n in (1, 2)]
    storm.new_mail()
    storm.app.fake.inject(
        "POST", r"/sendMail$", 403, body={"error": {"code": "ErrorAccessDenied", "message": "Access is denied."}}
    )
    storm.minute()
    storm.minute()  # summary 1 is due and refused
    assert storm.new_mail() == []
    for iid in folded:
        [failed] = storm.events(iid, "notification.email.failed")
        assert failed["data"]["summary"] == "~storm-contoso/summary-00001"
    storm.minute()
    storm.minute()  # summary 2 carries them
    [summary] = storm.new_mail()
    assert summary.subject.startswith("[P3 storm] Summary 2: 2 incident(s)")
    for iid in folded:
        [sent] = storm.events(iid, "notification.email.sent")
        assert sent["data"]["summary"] == "~storm-contoso/summary-00002"
