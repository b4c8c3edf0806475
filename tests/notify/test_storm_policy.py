"""Issue 14: the storm policy, the mailbox budget and the storm summary template (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ConfigurationError
from shared.models import Priority
from shared.notify.actions import ActionLine, ActionState
from shared.notify.pacer import MailBudget, p1_reserve, take_send, throttle
from shared.notify.storm import Decision, StormRules, StormState, admit, summary_due
from shared.notify.storm_mail import StormSummary, SummaryLine, render_storm_summary
from shared.settings import Settings

T0 = datetime(2026, 12, 2, 7, 0, 0, tzinfo=UTC)
RULES = StormRules(threshold=3, window=timedelta(minutes=5), summary_every=timedelta(minutes=5))


def _run(priorities: list[Priority], start: StormState | None = None, at: datetime = T0, step=timedelta(seconds=1)):
    state = start or StormState(channel="storm", partner_key="contoso")
    out = []
    for n, p in enumerate(priorities):
        state, decision = admit(state, at + n * step, p, RULES)
        out.append(decision)
    return state, out


def test_below_the_threshold_every_email_goes_on_its_own():
    state, decisions = _run([Priority.P3] * 3)
    assert decisions == [Decision.SEND] * 3 and state.storming_since is None


def test_crossing_the_threshold_folds_the_rest_and_schedules_the_first_summary():
    state, decisions = _run([Priority.P3] * 6)
    assert decisions == [Decision.SEND] * 3 + [Decision.FOLD] * 3
    assert state.storming_since is not None
    assert state.next_summary_at == "2026-12-02T07:05:03.000Z"  # one interval after the storm began (4th email)


def test_the_first_p1_of_a_window_is_never_held_back_later_ones_are_folded():
    _, decisions = _run([Priority.P3] * 4 + [Priority.P1, Priority.P2, Priority.P1])
    assert decisions[4] == Decision.SEND and decisions[5:] == [Decision.FOLD, Decision.FOLD]
    # a P1 sent before the storm counts as the window's P1 email
    _, decisions = _run([Priority.P1] + [Priority.P3] * 3 + [Priority.P1])
    assert decisions == [Decision.SEND] * 3 + [Decision.FOLD, Decision.FOLD]


def test_a_storm_goes_on_in_the_next_window_and_ends_after_a_quiet_one():
    state, _ = _run([Priority.P3] * 5)  # a storm in the first window
    state, decisions = _run([Priority.P3] * 2, state, at=T0 + timedelta(minutes=6))
    assert decisions == [Decision.FOLD] * 2 and state.storming_since is not None  # carried over
    state, decisions = _run([Priority.P3], state, at=T0 + timedelta(minutes=12))
    assert decisions == [Decision.SEND] and state.storming_since is None  # the window before was quiet
    state, decisions = _run([Priority.P3] * 5, StormState(), at=T0)
    state, decisions = _run([Priority.P3], state, at=T0 + timedelta(minutes=11))  # a whole empty window between
    assert decisions == [Decision.SEND]


def test_threshold_zero_is_never_a_storm():
    state = StormState()
    rules = StormRules(0, timedelta(minutes=5), timedelta(minutes=5))
    for n in range(50):
        state, decision = admit(state, T0 + timedelta(seconds=n), Priority.P3, rules)
        assert decision == Decision.SEND


def test_summary_due():
    assert summary_due(None, T0)
    state = StormState(next_summary_at="2026-12-02T07:05:00Z")
    assert not summary_due(state, T0) and summary_due(state, T0 + timedelta(minutes=5))


def test_the_mailbox_budget_keeps_a_reserve_for_p1_over_a_rolling_minute():
    assert p1_reserve(30) == 5 and p1_reserve(2) == 0
    budget = MailBudget()
    start = T0 + timedelta(seconds=50)  # late in a calendar minute: the next one must not open a fresh 30
    for n in range(25):
        after = take_send(budget, start + timedelta(milliseconds=n), 3, 30)
        assert after is not None
        budget = after
    assert take_send(budget, start, 3, 30) is None  # P3 may not use the P1 reserve
    for _ in range(5):
        after = take_send(budget, start, 1, 30)
        assert after is not None
        budget = after
    assert take_send(budget, start, 1, 30) is None  # 30 in the minute: not one more, whatever its priority
    assert take_send(budget, start + timedelta(seconds=15), 1, 30) is None  # a new calendar minute, same 60 s
    later = take_send(budget, start + timedelta(seconds=61), 3, 30)
    assert later is not None and len(later.recent) == 1  # the sends of a minute ago have left the window
    throttled = throttle(MailBudget(), start)
    assert throttled is not None
    assert take_send(throttled, start + timedelta(seconds=59), 1, 30) is None
    assert take_send(throttled, start + timedelta(seconds=60), 1, 30) is not None
    assert throttle(throttled, start) is None  # held that long already: nothing to write


def test_a_new_email_never_overtakes_a_waiting_one_as_urgent():
    budget = MailBudget(waiting=[0, 0, 1, 0])  # a P3 waits
    assert take_send(budget, T0, 3, 30) is None and take_send(budget, T0, 4, 30) is None
    assert take_send(budget, T0, 2, 30) is not None and take_send(budget, T0, 1, 30) is not None
    sent = take_send(budget, T0, 3, 30, queued=True)  # the queue's own send leaves the queue
    assert sent is not None and sent.waiting == [0, 0, 0, 0] and len(sent.recent) == 1


def test_the_summary_escapes_what_alerts_wrote_and_lists_every_p1_with_its_containment():
    lines = [
        SummaryLine("INC-1", "P1", "<script>alert(1)</script> ransomware", "new-incident", ["r-ransom"], ["vm-01"]),
        SummaryLine("INC-2", "P3", "Phishing link clicked", "new-incident", ["r-phish"], ["ws-001"]),
        SummaryLine("INC-3", "P3", "Phishing link clicked", "new-incident", ["r-phish"], ["ws-002"]),
        SummaryLine("INC-2", "P3", "Phishing link clicked", "priority-changed", ["r-phish"], ["ws-001"]),
    ]
    mail = render_storm_summary(
        StormSummary(
            partner_name="Contoso Ltd",
            number=2,
            lines=lines,
            since="2026-12-02T07:00:00Z",
            threshold=8,
            window_minutes=5,
            every_minutes=5,
            containment={"INC-1": [ActionLine("isolate-vm", "vm-01", ActionState.DONE, "quarantine NSG")]},
            base_url="https://soc-responder.example",
            console_base_url="https://console.example",
        )
    )
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert mail.subject.startswith("[P1 storm] Summary 2: 3 incident(s) for Contoso Ltd, 1 P1")
    assert mail.importance == "high"
    text = mail.text
    assert "P1: 1" in text and "P3: 2" in text
    assert "r-phish: 2 incident(s)" in text and "vm-01: 1 incident(s)" in text
    assert "new-incident: 3" in text and "priority-changed: 1" in text
    assert "INC-1 | <script>alert(1)</script> ransomware | isolate-vm | vm-01 | done (quarantine NSG)" in text
    for iid in ("INC-1", "INC-2", "INC-3"):
        assert f"https://console.example/api/console/incidents/{iid}" in mail.html
    assert "https://soc-responder.example/api/incidents/INC-1/review" in mail.html


@pytest.mark.parametrize(
    "env, name",
    [
        ({"STORM_THRESHOLD": "-1"}, "STORM_THRESHOLD"),
        ({"STORM_WINDOW_MINUTES": "0"}, "STORM_WINDOW_MINUTES"),
        ({"STORM_SUMMARY_MINUTES": "five"}, "STORM_SUMMARY_MINUTES"),
        ({"MAIL_MAX_PER_MINUTE": "0"}, "MAIL_MAX_PER_MINUTE"),
    ],
)
def test_storm_settings_are_validated_at_load(env, name):
    with pytest.raises(ConfigurationError, match=name):
        Settings.from_env(env)


def test_storm_settings_defaults():
    s = Settings.from_env({})
    assert (s.storm_threshold, s.storm_window_minutes, s.storm_summary_minutes, s.mail_max_per_minute) == (8, 5, 5, 30)
