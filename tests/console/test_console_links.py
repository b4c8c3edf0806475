"""Issue 16: every notification links to the incident's console page (a page: opening it never acts)."""

from __future__ import annotations

from tests.console.conftest import held_isolation
from tests.containment.conftest import account, ingest, p1_alert

BASE = "https://soc-responder.example"  # CALLBACK_BASE_URL of the harness: CONSOLE_BASE_URL's default


def test_p1_and_held_emails_link_to_the_console_page(console):
    app = console
    app.fake.add_mailbox("soc-responder@soc.example")
    iid, _ = held_isolation(app)
    p2 = ingest(app, p1_alert(account("kim@contoso.example"), score=7))
    mails = app.fake.sent_mail()
    subjects = [m.subject for m in mails]
    assert any(s.startswith("[P2") for s in subjects) and any("held for approval" in s for s in subjects), subjects
    for mail in mails:
        which = p2 if p2 in mail.subject else iid
        assert f'href="{BASE}/api/console/incidents/{which}"' in mail.body_content, mail.subject
    # opening the link acts on nothing (the page is a GET; the forms ask first)
    before = app.timeline(iid)
    from tests.console.conftest import as_role

    assert app.request("GET", f"/api/console/incidents/{iid}", headers=as_role("Approver")).status == 200
    assert app.timeline(iid) == before


def test_every_email_event_and_the_sentinel_comment_carry_the_link_and_calls_say_the_code(console):
    from shared.notify.templates import MessageContext, NotifyEvent, render, short_code, spoken_summary
    from shared.writeback.comment import CommentView, console_url, render_comment

    app = console
    app.configure(CONSOLE_BASE_URL="https://console.soc.example/")
    iid, _ = held_isolation(app)
    incident = app.store.get_incident(iid)[0]
    link = f"https://console.soc.example/api/console/incidents/{iid}"
    for event in NotifyEvent:
        if event == NotifyEvent.DIGEST:
            continue
        mail = render(MessageContext(incident, event, console_base_url=app.context.settings.console_base_url))
        assert link in mail.html and link in mail.text, event
    spoken = spoken_summary(incident, 1)
    assert short_code(iid) == iid[-6:].upper() and " ".join(short_code(iid)) in spoken
    comment = render_comment(
        CommentView(incident=incident, console_url=console_url("https://console.soc.example", iid))
    )
    assert f'href="{link}"' in comment
    # a base URL that is not a plain https URL never becomes a link
    assert console_url('https://x.example/"><script>', iid) is None and console_url("javascript:alert(1)", iid) is None
    # the queue's search finds the incident by the code the call spoke
    from tests.console.conftest import as_role

    found = app.request("GET", "/api/console", headers=as_role("Responder"), params={"q": short_code(iid).lower()})
    assert iid in found.text
