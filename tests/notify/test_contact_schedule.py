"""Issue 14: one call schedule per contact number (pure), the number's key, and the caller-number pool setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.notify.contact_schedule import (
    CAP_CALLS,
    contact_key,
    next_call_due,
    pager_instance_id,
    slot_after_call,
)

START = datetime(2026, 5, 4, 10, 7, 30, tzinfo=UTC)


def _run(arrivals: list[timedelta], until: timedelta) -> list[datetime]:
    """Calls of one number when new incidents arrive at ``arrivals`` (each call ends at once)."""
    calls: list[datetime] = []
    slot, announced_up_to = 1, START - timedelta(seconds=1)
    now = START
    while now < START + until:
        fresh = any(announced_up_to < START + a <= now for a in arrivals)
        due = next_call_due(START, slot, calls, fresh, now, "UTC")
        if due <= now:
            calls.append(now)
            announced_up_to = now
            slot = slot_after_call(START, slot, now, "UTC")
        now += timedelta(seconds=30)
    return calls


def test_one_incident_gets_the_spec_schedule():
    calls = _run([timedelta(0)], timedelta(hours=3))
    assert [c - START for c in calls[:4]] == [timedelta(minutes=m) for m in (0, 15, 30, 45)]
    assert calls[4] == datetime(2026, 5, 4, 12, 0, tzinfo=UTC) and calls[5] == calls[4] + timedelta(hours=1)


def test_a_new_incident_is_called_within_a_minute_but_never_more_than_four_calls_an_hour():
    # a new P1 every 4 minutes for three hours: each would like a call at once
    arrivals = [timedelta(minutes=4 * i) for i in range(45)]
    calls = _run(arrivals, timedelta(hours=3))
    for i, call in enumerate(calls):
        window = [c for c in calls[i:] if c < call + timedelta(hours=1)]
        assert len(window) <= CAP_CALLS
    assert len([c for c in calls if c < START + timedelta(hours=1)]) == 4
    # the second P1 (minute 4) does not wait for the +15 slot: it is called at once
    assert calls[1] - START == timedelta(minutes=4)


def test_a_new_incident_next_to_a_slot_waits_for_it():
    calls = _run([timedelta(0), timedelta(minutes=14, seconds=30)], timedelta(minutes=20))
    assert [c - START for c in calls] == [timedelta(0), timedelta(minutes=15)]


def test_the_contact_key_hides_the_number_and_ignores_its_spelling():
    key = contact_key("+15555550100")
    assert key == contact_key(" +1 (555) 555-0100 ") and len(key) == 20
    assert "5555550100" not in pager_instance_id(key) and key != contact_key("+15555550101")


def test_the_caller_number_pool_setting():
    from shared.errors import ConfigurationError
    from shared.settings import Settings

    s = Settings.from_env({"ACS_CALLER_ID": "+15555550000", "ACS_CALLER_IDS": "+15555550001, +15555550000,"})
    assert s.acs_caller_ids == ("+15555550000", "+15555550001")
    assert Settings.from_env({"ACS_CALLER_IDS": "+15555550002"}).acs_caller_ids == ("+15555550002",)
    with pytest.raises(ConfigurationError, match="ACS_CALLER_IDS"):
        Settings.from_env({"ACS_CALLER_IDS": "+1555, 0800-CALL-ME"})
