"""Email templates: every event and priority renders, attacker-controlled text is inert, actions are listed."""

from __future__ import annotations

import html.parser
import re

import pytest

from shared.notify.templates import (
    ActionState,
    MessageContext,
    NotifyEvent,
    action_lines,
    render,
    render_digest,
    safe_link,
    spoken_summary,
)

EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>"><a href="javascript:evil()">click</a>\u202e'
BASE = "https://soc-responder.example"


class _Tags(html.parser.HTMLParser):
    """Collects every tag and attribute a mail client would see."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.extend(attrs)


def parse(markup: str) -> _Tags:
    p = _Tags()
    p.feed(markup)
    return p


ROWS = [
    {
        "actionId": "isolate-vm-1",
        "kind": "isolate-vm",
        "targetDisplay": "vm-web-01",
        "status": "contained",
        "result": "vm-web-01 isolated: quarantine NSG attached to 2 of 2 NIC(s)",
    },
    {
        "actionId": "disable-user-1",
        "kind": "disable-user",
        "targetDisplay": "eve@contoso.example",
        "status": "failed",
        "result": "eve@contoso.example: FAILED, escalated to people: 403 Insufficient privileges",
    },
    {
        "actionId": "disable-user-2",
        "kind": "disable-user",
        "targetDisplay": "breakglass-01@contoso.example",
        "status": "skipped",
        "result": "not touched (protected identity)",
    },
    {
        "actionId": "isolate-vm-2",
        "kind": "isolate-vm",
        "targetDisplay": "dc-01",
        "status": "held",
        "result": "dc-01: held for approval (soc-isolation=approval)",
    },
]


def test_action_lines_map_statuses_and_merge_failures():
    lines = action_lines(
        ROWS,
        [{"actionId": "isolate-vm-2", "reason": "ARM 500 three times"}, {"reason": "containment run failed: boom"}],
    )
    assert [(a.kind, a.target, a.state) for a in lines] == [
        ("isolate-vm", "vm-web-01", ActionState.DONE),
        ("disable-user", "eve@contoso.example", ActionState.FAILED),
        ("disable-user", "breakglass-01@contoso.example", ActionState.SKIPPED),
        ("isolate-vm", "dc-01", ActionState.FAILED),
        ("action", "", ActionState.FAILED),
    ]
    assert lines[3].detail == "ARM 500 three times"


@pytest.mark.parametrize(
    "status, state",
    [
        ("dry-run", ActionState.PLANNED),
        ("already-contained", ActionState.ALREADY),
        ("approved", ActionState.PENDING),
        ("in-progress", ActionState.PENDING),
        ("rejected", ActionState.REJECTED),
        ("partner-action", ActionState.PARTNER),
        ("released", ActionState.RELEASED),
        ("withdrawn", ActionState.WITHDRAWN),
    ],
)
def test_containment_statuses(status, state):
    assert (
        action_lines(
            [{"kind": "isolate-vm", "target": "t", "status": status, "result": "vm: containment in progress"}]
        )[0].state
        == state
    )


@pytest.mark.parametrize("event", [e for e in NotifyEvent if e != NotifyEvent.DIGEST])
@pytest.mark.parametrize("priority", ["P1", "P2", "P3", "P4"])
def test_every_event_and_priority_renders_inert(make_incident, event, priority):
    inc = make_incident(title=EVIL, priority=priority, link="javascript:alert(1)")
    mail = render(
        MessageContext(
            incident=inc,
            event=event,
            base_url=BASE,
            actions=action_lines(ROWS),
            previous_priority="P2",
            actor=EVIL,
            reason=EVIL,
            breaches=[EVIL],
            escalation={"attempts": 12, "reason": EVIL},
        )
    )
    tags = parse(mail.html)
    assert "script" not in tags.tags and "img" not in tags.tags
    assert all(not (name.startswith("on")) for name, _ in tags.attrs)
    hrefs = [v for k, v in tags.attrs if k == "href"]
    assert hrefs and all(h.startswith(BASE + "/api/incidents/") for h in hrefs)  # the javascript: link is dropped
    assert "&lt;script&gt;" in mail.html
    assert "\u202e" not in mail.html and "\u202e" not in mail.text and "\u202e" not in mail.subject
    assert "\n" not in mail.subject and len(mail.subject) <= 200
    assert mail.subject.startswith(f"[{priority} ")
    for text in (mail.html, mail.text):
        assert "INC-20260504-abc" in text
        assert "vm-web-01" in text and "eve@contoso.example" in text  # the actions and their results
        assert "What you should do next".lower() in text.lower()


def test_new_p1_mail_says_what_happened_actions_links_next_steps_and_flows(make_incident):
    inc = make_incident()
    mail = render(
        MessageContext(incident=inc, event=NotifyEvent.NEW_INCIDENT, base_url=BASE, actions=action_lines(ROWS[:1]))
    )
    assert mail.importance == "high"
    assert mail.subject == "[P1 Critical] New security incident: INC-20260504-abc Crypto-miner on vm-web-01"
    assert f"{BASE}/api/incidents/INC-20260504-abc/verify" in mail.text
    assert "quarantine NSG attached to 2 of 2 NIC(s)" in mail.text
    assert "may survive the NSG change" in mail.text and "restart is opt-in" in mail.text
    assert "press 1" in mail.text.lower()


def test_no_nsg_note_without_vm_isolation(make_incident):
    mail = render(
        MessageContext(
            incident=make_incident(), event=NotifyEvent.NEW_INCIDENT, base_url=BASE, actions=action_lines(ROWS[1:3])
        )
    )
    assert "NSG" not in mail.text


def test_failed_containment_mail_leads_with_the_failure(make_incident):
    mail = render(
        MessageContext(
            incident=make_incident(), event=NotifyEvent.CONTAINMENT_FAILED, base_url=BASE, actions=action_lines(ROWS)
        )
    )
    assert "Containment FAILED" in mail.subject
    assert "1 containment action(s) failed" in mail.text
    assert "eve@contoso.example: FAILED" in mail.text or "FAILED" in mail.text
    assert mail.text.index("Contain the resources marked failed yourself") < mail.text.index("Acknowledge now")


def test_lowered_priority_mail_says_containment_stays(make_incident):
    inc = make_incident(priority="P3")
    mail = render(
        MessageContext(
            incident=inc,
            event=NotifyEvent.PRIORITY_CHANGED,
            previous_priority="P1",
            actor="ana@soc.example",
            reason="false positive on the miner rule",
            actions=action_lines(ROWS[:1]),
        )
    )
    assert "Priority changed P1 → P3" in mail.subject
    assert "lowered from P1 to P3 by ana@soc.example: false positive on the miner rule" in mail.text
    assert "never releases contained resources" in mail.text


def test_no_evidence_links_without_a_base_url_or_with_a_bad_one(make_incident):
    for base in (None, "javascript:alert(1)", "http://evil.example", "https://user:pw@host.example"):
        mail = render(MessageContext(incident=make_incident(), event=NotifyEvent.NEW_INCIDENT, base_url=base))
        assert "/api/incidents/" not in mail.html


def test_alert_https_link_is_kept_and_escaped(make_incident):
    link = "https://portal.azure.com/#blade/alert?id=1&x=2"
    mail = render(MessageContext(incident=make_incident(link=link), event=NotifyEvent.NEW_INCIDENT))
    assert 'href="https://portal.azure.com/#blade/alert?id=1&amp;x=2"' in mail.html


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://a.example/x", True),
        ("http://127.0.0.1:7071/api", True),
        ("http://a.example", False),
        ("javascript:x", False),
        ('https://a.example/"onmouseover=x', False),
        ("https://a.example/\u202e", False),
        (None, False),
    ],
)
def test_safe_link(url, ok):
    assert (safe_link(url) is not None) == ok


def test_digest_lists_incidents_escaped(make_incident):
    mail = render_digest([make_incident(title=EVIL, priority="P4")], "Contoso <Ltd>", "2026-05-04", BASE)
    assert mail.importance == "low" and "[P4 Minor] Daily digest 2026-05-04" in mail.subject
    assert "script" not in parse(mail.html).tags and "Contoso &lt;Ltd&gt;" in mail.html


def test_digest_links_each_incident_to_its_console_page(make_incident):
    """issue 16: the P4 digest carries each incident's console link, as every other email does."""
    incident = make_incident(title=EVIL, priority="P4")
    mail = render_digest([incident], "Contoso", "2026-05-04", BASE, "https://console.soc.example/")
    link = f"https://console.soc.example/api/console/incidents/{incident.id}"
    assert f'href="{link}"' in mail.html and link in mail.text
    assert "Open in the console" in mail.html and "script" not in parse(mail.html).tags
    assert "/api/console/" not in render_digest([incident], "Contoso", "2026-05-04", BASE, None).html


def test_spoken_summary_is_plain_short_text(make_incident):
    text = spoken_summary(make_incident(title=EVIL + "x" * 400), 3)
    assert "Press 1 to acknowledge" in text and "call attempt 3" in text
    assert len(text) < 600 and not re.search(r"[\x00-\x1f\u202e]", text)
