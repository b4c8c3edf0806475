"""Issue 14 in Teams: a storming partner's channel gets its first P1 card at once, then one summary card per
interval instead of one card per incident; each channel keeps a pace, P1 first (real azure-keyvault-secrets
and requests against the HTTPS fake, the mail_pacer and teams_delivery timers through the app harness, on
the durable host's simulated clock)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from shared.models import Priority
from shared.notify.actions import ActionLine, ActionState
from shared.notify.storm import Decision, StormRules, StormState
from shared.notify.storm_mail import SummaryLine
from shared.notify.teams_cards import CardKind
from shared.notify.teams_storm import card_decision
from shared.notify.teams_storm_card import StormCard, build_storm_card
from tests.fixtures.app import APP_SETTINGS
from tests.notify.conftest import StormHarness
from tests.notify.test_teams_cards import HOSTILE, _texts, _urls, _walk
from tests.notify.test_teams_delivery import PARTNER_SECRET, SOC_SECRET, _registry

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "adaptive-card-1.5.0.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft6Validator(SCHEMA, format_checker=jsonschema.Draft6Validator.FORMAT_CHECKER)
CONSOLE = "https://soc-responder.example"
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
RULES = StormRules(3, timedelta(minutes=5), timedelta(minutes=5))


def _validate(card: dict) -> None:
    errors = sorted(VALIDATOR.iter_errors(card), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message[:300]}" for e in errors[:5])


# -- the policy (pure) -----------------------------------------------------------------------------------


def _state(count: int, storming: bool = True, start: datetime = T0, **kw) -> StormState:
    return StormState(
        window_start=start.isoformat(), count=count, storming_since=start.isoformat() if storming else None, **kw
    )


def test_card_decision_follows_the_email_storm_and_lets_one_p1_card_through_per_window():
    quiet = _state(2, storming=False)
    for kind in CardKind:
        assert card_decision(quiet, T0, RULES, kind, Priority.P1) == (Decision.SEND, None)
    assert card_decision(None, T0, RULES, CardKind.NEW, Priority.P2) == (Decision.SEND, None)
    storm = _state(5)
    decision, after = card_decision(storm, T0 + timedelta(minutes=1), RULES, CardKind.NEW, Priority.P1)
    assert decision == Decision.SEND and after is not None and after.p1_card_window == storm.window_start
    # The window's P1 card went: the next P1, and every other card, is folded.
    assert card_decision(after, T0, RULES, CardKind.NEW, Priority.P1) == (Decision.FOLD, None)
    for kind in (CardKind.HELD, CardKind.FAILED, CardKind.ACKNOWLEDGED):
        assert card_decision(storm, T0, RULES, kind, Priority.P1) == (Decision.FOLD, None)
    assert card_decision(storm, T0, RULES, CardKind.NEW, Priority.P2) == (Decision.FOLD, None)
    # A window that crossed the threshold carries the storm into the next one; after that it is over.
    assert card_decision(storm, T0 + timedelta(minutes=7), RULES, CardKind.NEW, Priority.P2)[0] == Decision.FOLD
    assert card_decision(storm, T0 + timedelta(minutes=11), RULES, CardKind.NEW, Priority.P2)[0] == Decision.SEND
    # A new window: its first P1 card goes at once again.
    later = _state(5, start=T0 + timedelta(minutes=5), p1_card_window=storm.window_start)
    assert card_decision(later, T0 + timedelta(minutes=6), RULES, CardKind.NEW, Priority.P1)[0] == Decision.SEND
    # STORM_THRESHOLD 0: never a storm.
    never = StormRules(0, timedelta(minutes=5), timedelta(minutes=5))
    assert card_decision(storm, T0, never, CardKind.NEW, Priority.P2)[0] == Decision.SEND


def test_the_channel_pace_is_a_setting_validated_at_load():
    from shared.errors import ConfigurationError
    from shared.settings import Settings

    assert Settings.from_env({}).teams_posts_per_minute == 10
    assert Settings.from_env({"TEAMS_POSTS_PER_MINUTE": "4"}).teams_posts_per_minute == 4
    for bad in ("0", "ten"):
        with pytest.raises(ConfigurationError, match="TEAMS_POSTS_PER_MINUTE"):
            Settings.from_env({"TEAMS_POSTS_PER_MINUTE": bad})


# -- the summary card (pure) -----------------------------------------------------------------------------


def _lines(title: str = "Phishing link clicked", host: str = "ws-1") -> list[SummaryLine]:
    return [
        SummaryLine("inc-p1-000001", "P1", f"{title} (P1)", "new", ["R-ransom"], [host]),
        SummaryLine("inc-p1-000002", "P1", f"{title} (P1 b)", "held", ["R-ransom"], [host]),
        SummaryLine("inc-p2-000003", "P2", f"{title} (P2)", "new", ["R-phish"], ["ws-2"]),
        SummaryLine("inc-p2-000003", "P2", f"{title} (P2)", "acknowledged", ["R-phish"], ["ws-2"]),
    ]


def _containment(target: str = "vm-web-01", detail: str = "HTTP 403") -> dict[str, list[ActionLine]]:
    return {
        "inc-p1-000001": [ActionLine("isolate-vm", target, ActionState.DONE, "quarantine NSG")],
        "inc-p1-000002": [ActionLine("disable-account", target, ActionState.FAILED, detail)],
    }


def test_the_summary_card_is_schema_valid_counts_lists_every_p1_and_only_opens_pages():
    card = build_storm_card(
        StormCard("Contoso Ltd", "contoso", 3, _lines(), T0.isoformat(), 5, _containment(), CONSOLE)
    )
    _validate(card)
    texts = " | ".join(_texts(card))
    assert card["body"][0]["items"][0]["text"] == "P1 storm — summary 3: 3 incident(s) for Contoso Ltd"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["P1"] == "2" and facts["P2"] == "1" and facts["Cards gathered"] == "4"
    assert "R-ransom" in texts and "ws-1" in texts  # top rules, top hosts
    assert "inc-p1-000001: " in texts and "inc-p1-000002: " in texts and "inc-p2-000003: " not in texts
    assert "DONE: " in texts and "FAILED: " in texts and "HTTP 403" in texts  # each P1's containment, as text
    assert [a["type"] for a in card["actions"]] == ["Action.OpenUrl"] * 4
    assert _urls(card) == [
        f"{CONSOLE}/api/console?partner=contoso",
        f"{CONSOLE}/api/console?partner=contoso&priority=P1",
        f"{CONSOLE}/api/console/incidents/inc-p1-000001",
        f"{CONSOLE}/api/console/incidents/inc-p1-000002",
    ]
    blob = json.dumps(card)
    assert "Action.Submit" not in blob and "Action.Execute" not in blob and '"Input.' not in blob
    assert len(blob.encode()) < 28_000  # a Teams webhook message is at most about 28 KB


def test_a_summary_of_a_hundred_p1s_stays_within_a_teams_message():
    lines = [SummaryLine(f"inc-{n:06d}", "P1", "x" * 300, "new", ["R"] * 8, ["h"] * 5) for n in range(100)]
    containment = {
        line.incident_id: [ActionLine("isolate-vm", "y" * 200, ActionState.FAILED, "z" * 300)] * 5 for line in lines
    }
    card = build_storm_card(StormCard("Contoso Ltd", "contoso", 1, lines, None, 5, containment, CONSOLE))
    _validate(card)
    assert len(json.dumps(card).encode()) < 28_000
    more = [t for t in _texts(card) if t.startswith("and ") and t.endswith(" more P1 (see the console)")]
    assert more and int(more[0].split()[1]) >= 80  # the rest are in the console (and on their timelines)


@pytest.mark.parametrize("hostile", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_in_the_summary_card_stays_inert(hostile):
    card = build_storm_card(
        StormCard(
            "Contoso Ltd",
            "contoso",
            1,
            [SummaryLine("inc-p1-000001", "P1", hostile, hostile, [hostile], [hostile])],
            None,
            5,
            {"inc-p1-000001": [ActionLine(hostile, hostile, ActionState.FAILED, hostile)]},
            CONSOLE,
        )
    )
    _validate(card)
    assert all(u.startswith(CONSOLE + "/api/") for u in _urls(card))
    for text in _texts(card):
        assert not re.search(r"\]\s*\(", text) and "[" not in text, text
        assert not re.search(r"(?i)\b(javascript|https?|data)\s*:", text), text
        assert "<" not in text and ">" not in text, text
        assert not re.search(r"(?i)\bwww\.", text), text
        assert "\u202e" not in text and "\x00" not in text and "\x07" not in text
        assert len(text) <= 500
    blocks = [b["text"] for b in _walk(card) if b.get("type") == "TextBlock"]
    assert all("evil" not in b and "xxxxxxxx" not in b for b in blocks)


# -- through the app: a partner crossing the storm threshold ------------------------------------------------


class Storm(StormHarness):
    TIMERS = ("mail_pacer", "teams_delivery")
    registry: str

    def posts(self, channel: str) -> list:
        return self.app.fake.teams_posts(channel)


@pytest.fixture
def storm(app, tmp_path) -> Storm:
    app.fake.add_mailbox(APP_SETTINGS["MAIL_SENDER"])
    app.fake.set_secret(PARTNER_SECRET, app.fake.teams_webhook("contoso"))
    app.fake.set_secret(SOC_SECRET, app.fake.teams_webhook("soc"))
    harness = Storm(app)
    harness.registry = _registry(tmp_path)
    harness.on_durable_clock()
    return harness


def _headline(post) -> str:
    return post.card["body"][0]["items"][0]["text"]


def test_a_storming_partner_gets_its_first_p1_card_then_one_summary_card_per_interval(storm):
    storm.configure(
        PARTNERS_FILE=storm.registry, STORM_THRESHOLD="3", STORM_WINDOW_MINUTES="5", STORM_SUMMARY_MINUTES="5"
    )
    quiet = storm.ingest(8, "p2-quiet")  # below the threshold: its cards go as before
    assert [_headline(p) for p in storm.posts("contoso")] == ["P2 High — new incident"]
    noise = [storm.ingest(5, f"p3-{n}") for n in range(2)]  # P3: email only; the 4th email of the window
    assert noise and len(storm.posts("contoso")) == 1
    folded = [storm.ingest(8, "p2-a")]  # the 4th email: a storm; its card is folded on both channels
    first_p1 = storm.ingest(10, "p1-first")  # the window's first P1: its email and card go at once
    folded += [storm.ingest(10, "p1-second"), storm.ingest(8, "p2-b")]
    for channel in ("contoso", "soc"):
        assert [_headline(p) for p in storm.posts(channel)] == ["P2 High — new incident", "P1 Critical — new incident"]
    assert [e["data"]["target"] for e in storm.events(first_p1, "notification.teams.sent")].count("partner") == 1
    for iid in folded:  # each folded card is on its incident's timeline, naming the summary
        events = storm.events(iid, "notification.teams.folded")
        assert sorted(e["data"]["target"] for e in events) == ["partner", "soc"]
        assert {e["data"]["summary"] for e in events} == {"~storm-contoso/summary-00001"}
        assert not storm.events(iid, "notification.teams.sent")
    assert not storm.events(quiet, "notification.teams.folded")
    teams = storm.app.context.notifications.teams
    for iid in folded:  # a later post of the incident's cards (say its held card) never posts a folded one
        assert {r["status"] for r in teams.deliver_incident(iid)} == {"folded"}
    assert len(storm.posts("contoso")) == 2

    for _ in range(4):  # the summary is due one interval after the storm began: nothing before
        storm.minute()
        assert len(storm.posts("contoso")) == 2 and len(storm.posts("soc")) == 2
    storm.minute()
    for channel in ("contoso", "soc"):  # ONE summary card per channel, with the email summary
        posts = storm.posts(channel)
        assert len(posts) == 3
        summary = posts[-1].card
        _validate(summary)
        assert _headline(posts[-1]) == "P1 storm — summary 1: 3 incident(s) for Contoso Ltd"
        texts = " | ".join(_texts(summary))
        assert f"{folded[1]}: " in texts  # the folded P1, with its containment result
        assert _urls(summary)[0].endswith("/api/console?partner=contoso")
        assert len(summary["actions"]) <= 4
    assert any(m.subject.startswith("[P1 storm] Summary 1") for m in storm.app.fake.sent_mail())
    for iid in folded:  # the summary card's post is on every incident it carries, per channel
        sent = storm.events(iid, "notification.teams.sent")
        assert sorted(e["data"]["target"] for e in sent) == ["partner", "soc"]
        assert {e["data"]["summary"] for e in sent} == {"~storm-contoso/summary-00001"}
        assert {e["data"]["event"] for e in sent} == {"storm-summary"}
    for _ in range(6):  # nothing pending: no empty summary card
        storm.minute()
    assert len(storm.posts("contoso")) == 3 and len(storm.posts("soc")) == 3


def test_a_failed_summary_card_is_retried_and_evidenced_on_every_incident(storm):
    storm.configure(PARTNERS_FILE=storm.registry, STORM_THRESHOLD="1", STORM_SUMMARY_MINUTES="1")
    storm.ingest(5, "p3-0")
    folded = [storm.ingest(8, "p2-a"), storm.ingest(8, "p2-b")]
    storm.app.fake.inject("POST", "/powerautomate/", 503, times=2, api="teams")
    storm.minute()  # the summary is claimed; both channels refuse its first post
    for iid in folded:
        failed = storm.events(iid, "notification.teams.failed")
        assert sorted(e["data"]["target"] for e in failed) == ["partner", "soc"]
        assert {e["data"]["summary"] for e in failed} == {"~storm-contoso/summary-00001"}
    for _ in range(3):
        storm.minute()
    assert len(storm.posts("contoso")) == 1 and len(storm.posts("soc")) == 1
    for iid in folded:
        sent = storm.events(iid, "notification.teams.sent")
        assert sorted(e["data"]["try"] for e in sent) == [2, 2]


def test_a_channel_keeps_its_pace_and_waiting_cards_go_p1_first(storm):
    storm.configure(PARTNERS_FILE=storm.registry, STORM_THRESHOLD="0", TEAMS_POSTS_PER_MINUTE="2")
    storm.ingest(8, "p2-a")
    storm.ingest(8, "p2-b")
    waiting_p2 = storm.ingest(8, "p2-c")  # the channel's minute is full: it waits (queued, not failed)
    waiting_p1 = storm.ingest(10, "p1-d")
    assert len(storm.posts("contoso")) == 2 and len(storm.posts("soc")) == 2
    for iid in (waiting_p2, waiting_p1):
        assert not storm.events(iid, "notification.teams.failed")
    storm.app.runtime.timer("teams_delivery")  # the same minute: still full
    assert len(storm.posts("contoso")) == 2
    storm.minute()
    for channel in ("contoso", "soc"):
        titles = [p.card["fallbackText"] for p in storm.posts(channel)]
        assert len(titles) == 4
        assert "p1-d" in titles[2] and "p2-c" in titles[3]  # the waiting P1 before the older P2
