"""P4 incidents go out as one daily digest per partner, at the partner's local digest hour, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tests.notify.conftest import CONTOSO_EMAILS

NEW_YORK = ZoneInfo("America/New_York")


def local_today(hour: int, minute: int = 30) -> datetime:
    """Today (New York) at hour:minute, as UTC."""
    today = datetime.now(NEW_YORK).date()
    return datetime(today.year, today.month, today.day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


def test_p4_waits_for_the_digest_hour_and_goes_out_once(notify_app):
    app = notify_app
    first = app.ingest(2, alert_id="p4-a", title="Expected admin login flagged")
    second = app.ingest(1, alert_id="p4-b", title="Informational: <b>port scan</b> from scanner")
    assert app.fake.sent_mail() == []
    assert "notification.queued" in app.timeline(first)
    notifier = app.context.notifications

    assert notifier.send_p4_digests(local_today(7))["sent"] == 0  # before 08:00 in New York
    assert app.fake.sent_mail() == []
    report = notifier.send_p4_digests(local_today(8))
    assert report["sent"] == 1 and report["incidents"] == 2
    [mail] = app.fake.sent_mail()
    assert mail.to == CONTOSO_EMAILS and mail.importance == "low"
    assert "2 low-priority incident(s)" in mail.subject
    assert first in mail.body_content and second in mail.body_content
    assert "&lt;b&gt;port scan&lt;/b&gt;" in mail.body_content
    for iid in (first, second):  # issue 16: each incident's console page (CONSOLE_BASE_URL: CALLBACK_BASE_URL)
        assert f'href="https://soc-responder.example/api/console/incidents/{iid}"' in mail.body_content
    # later runs the same day, and the timer itself, send nothing more
    assert notifier.send_p4_digests(local_today(9))["sent"] == 0
    app.runtime.timer("p4_daily_digest")
    assert len(app.fake.sent_mail()) == 1
    for iid in (first, second):
        doc = app.incident(iid)
        assert doc["sla"]["firstResponseAt"] is not None
        assert [e["eventType"] for e in doc["timeline"]].count("notification.email.sent") == 1
        queue = next(r for r in doc["notifications"] if r.get("channel") == "digest")
        assert queue["status"] == "sent"


def test_next_days_digest_only_has_new_incidents(notify_app):
    app = notify_app
    notifier = app.context.notifications
    app.ingest(2, alert_id="day1")
    assert notifier.send_p4_digests(local_today(8))["sent"] == 1
    later = app.ingest(2, alert_id="day2")
    assert notifier.send_p4_digests(local_today(8) + timedelta(days=1))["incidents"] == 1
    assert later in app.fake.sent_mail()[-1].body_content and len(app.fake.sent_mail()) == 2


def test_digest_off_emails_p4_at_once(notify_app):
    app = notify_app
    app.configure(P4_DIGEST_HOUR="off")
    app.ingest(2)
    [mail] = app.fake.sent_mail()
    assert mail.subject.startswith("[P4 Minor] New security incident")
