"""Issue 12: links an alert sender wrote become clickable in the SOC's email only for Microsoft portal hosts."""

from __future__ import annotations

import pytest

from shared.links import defang, portal_link
from shared.notify.templates import MessageContext, NotifyEvent, render
from tests.notify.test_templates import parse


@pytest.mark.parametrize(
    "url, ok",
    [
        ("https://portal.azure.com/#blade/alert?id=1", True),
        ("https://security.microsoft.com/alerts/da1", True),
        ("https://eu.security.microsoft.com/x", True),
        ("https://security.microsoft.com.evil.example/x", False),
        ("https://evilportal.azure.com.example/", False),
        ("https://login-microsoftonline.example/reset", False),
        ("http://portal.azure.com/x", False),
        ("https://user@portal.azure.com/x", False),
        ("https://portal.azure.com:8443/x", False),
        ("javascript:alert(1)", False),
        (None, False),
    ],
)
def test_portal_link(url, ok):
    assert (portal_link(url) is not None) == ok


def test_a_phishing_link_in_a_p1_email_is_defanged_text_not_a_link(make_incident):
    evil = "https://login-microsoftonline.example/reset?u=ceo"
    mail = render(MessageContext(incident=make_incident(link=evil), event=NotifyEvent.NEW_INCIDENT))
    hrefs = [v or "" for k, v in parse(mail.html).attrs if k == "href"]
    assert not any("login-microsoftonline" in h for h in hrefs)
    assert "hxxps[://]login-microsoftonline[.]example" in mail.html
    assert "https://login-microsoftonline.example" not in mail.html + mail.text


def test_a_portal_link_stays_clickable(make_incident):
    link = "https://security.microsoft.com/alerts/da637"
    mail = render(MessageContext(incident=make_incident(link=link), event=NotifyEvent.NEW_INCIDENT))
    assert f'href="{link}"' in mail.html


def test_defang():
    assert defang("https://a.example/x.y") == "hxxps[://]a[.]example/x[.]y"
