"""Issue 16: the Teams cards — valid Adaptive Cards 1.5 (Microsoft's schema), links only, hostile text inert."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from shared.models import Entity
from shared.notify.actions import ActionLine, ActionState
from shared.notify.teams_cards import CardContext, CardKind, build_card, inert

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "adaptive-card-1.5.0.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft6Validator(SCHEMA, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER)
CONSOLE = "https://soc-responder.example"

HOSTILE = [
    "[click me](javascript:alert(1))",
    "**urgent** [reset](https://evil.example/login) <img src=x onerror=alert(1)>",
    "<at>General</at> <script>alert(1)</script>",
    "see www.evil.example or https://evil.example/a?b=c or data:text/html;base64,PHNjcmlwdD4=",
    "![pixel](https://evil.example/p.png) ` code ` # heading",
    "\u202eevil\u202c bidi \x00\x07 control",
    "x" * 5000,
]


def _validate(card: dict) -> None:
    errors = sorted(VALIDATOR.iter_errors(card), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message[:300]}" for e in errors[:5])


def _texts(node) -> list[str]:
    """Every text a card shows (TextBlock/TextRun text, facts, fallback, button titles)."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "title", "value", "fallbackText") and isinstance(value, str):
                out.append(value)
            else:
                out += _texts(value)
    elif isinstance(node, list):
        for item in node:
            out += _texts(item)
    return out


def _urls(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["url"]] if node.get("type") == "Action.OpenUrl" else []
        return found + [u for v in node.values() for u in _urls(v)]
    if isinstance(node, list):
        return [u for v in node for u in _urls(v)]
    return []


def _actions() -> list[ActionLine]:
    return [
        ActionLine("isolate-vm", "vm-web-01", ActionState.DONE, "NIC vm-web-01-nic → quarantine NSG"),
        ActionLine("disable-account", "eve@contoso.example", ActionState.HELD, "blast-radius breaker"),
        ActionLine("revoke-sessions", "eve@contoso.example", ActionState.FAILED, "HTTP 403"),
    ]


@pytest.mark.parametrize("kind", list(CardKind))
@pytest.mark.parametrize("priority", ["P1", "P2"])
def test_every_card_validates_against_the_adaptive_cards_1_5_schema(make_incident, kind, priority):
    incident = make_incident(priority=priority)
    card = build_card(
        CardContext(incident, kind, _actions(), CONSOLE, "America/New_York", actor="dana", reason="HTTP 403")
    )
    _validate(card)
    assert card["version"] == "1.5" and card["type"] == "AdaptiveCard"
    # Buttons open pages; a card never acts (no submit/execute, no inputs).
    assert [a["type"] for a in card["actions"]] == ["Action.OpenUrl", "Action.OpenUrl"]
    assert _urls(card) == [
        f"{CONSOLE}/api/console/incidents/{incident.id}",
        f"{CONSOLE}/api/incidents/{incident.id}/review?format=html",
    ]
    blob = json.dumps(card)
    assert "Action.Submit" not in blob and "Action.Execute" not in blob and '"Input.' not in blob


def test_the_schema_really_refuses_a_bad_card(make_incident):
    """The validation can fail: an unknown property, a wrong enum, a missing url are all refused."""
    card = build_card(CardContext(make_incident(), CardKind.NEW, [], CONSOLE))
    for broken in (
        {**card, "msteams": {"width": "Full"}},
        {**card, "body": [{"type": "TextBlock", "text": "x", "weight": "Heavy"}]},
        {**card, "actions": [{"type": "Action.OpenUrl", "title": "x"}]},
    ):
        assert list(VALIDATOR.iter_errors(broken)), broken


def test_card_says_title_priority_partner_entities_and_what_was_done(make_incident):
    incident = make_incident(priority="P1")
    card = build_card(CardContext(incident, CardKind.FAILED, _actions(), CONSOLE, reason="vm-web-01: HTTP 403"))
    texts = " | ".join(_texts(card))
    assert "P1 Critical — containment FAILED: act by hand" in texts
    assert incident.title in texts and incident.id in texts
    assert "vm-web-01" in texts and "eve@contoso.example" in texts
    assert "FAILED: " in texts and "HELD FOR APPROVAL: " in texts and "DONE: " in texts
    assert "Why: " in texts and "HTTP 403" in texts
    assert card["body"][0]["style"] == "attention"


def test_a_raised_incident_and_an_acknowledgement_say_so(make_incident):
    raised = build_card(CardContext(make_incident(priority="P1"), CardKind.NEW, [], CONSOLE, raised_from="P3"))
    assert raised["body"][0]["items"][0]["text"] == "P1 Critical — raised from P3"
    ack = build_card(CardContext(make_incident(priority="P2"), CardKind.ACKNOWLEDGED, [], CONSOLE, actor="dana"))
    assert "Acknowledged by " in _texts(ack) and "dana" in _texts(ack)
    _validate(raised)
    _validate(ack)


def test_without_a_safe_console_url_the_card_has_no_buttons(make_incident):
    for base in (None, "http://plain.example", "javascript:alert(1)"):
        card = build_card(CardContext(make_incident(), CardKind.NEW, [], base))
        assert "actions" not in card
        _validate(card)


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_titles_and_entity_names_stay_inert(make_incident, hostile):
    incident = make_incident(
        title=hostile,
        entities=[Entity(kind="host", name=hostile), Entity(kind="url", url=hostile)],
    )
    lines = [ActionLine("isolate-vm", hostile, ActionState.FAILED, hostile)]
    card = build_card(CardContext(incident, CardKind.FAILED, lines, CONSOLE, actor=hostile, reason=hostile))
    _validate(card)
    # The only links are the app's own buttons.
    assert all(u.startswith(CONSOLE + "/api/") for u in _urls(card))
    for text in _texts(card):
        assert not re.search(r"\]\s*\(", text) and "[" not in text, text  # no Markdown link
        assert not re.search(r"(?i)\b(javascript|https?|data)\s*:", text), text  # no scheme to auto-link
        assert "<" not in text and ">" not in text, text  # no tag (<at>, <script>, HTML)
        assert not re.search(r"(?i)\bwww\.", text), text
        assert "\u202e" not in text and "\x00" not in text and "\x07" not in text
        assert len(text) <= 500
    # Untrusted text is carried by TextRuns (no Markdown at all), never by a TextBlock.
    blocks = [b["text"] for b in _walk(card) if b.get("type") == "TextBlock"]
    assert all("evil" not in b and "xxxxxxxx" not in b for b in blocks)


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_inert_keeps_ordinary_text_readable():
    assert inert("Ransomware note dropped on file-server-01 (10.0.0.7)") == (
        "Ransomware note dropped on file-server-01 (10.0.0.7)"
    )
    assert inert("[x](javascript:alert(1))") == "［x］(javascript［:］alert(1))"
    assert inert("https://evil.example/x") == "https［:］//evil.example/x"
