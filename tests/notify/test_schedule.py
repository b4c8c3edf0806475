"""The escalation schedule: exact times, hour boundaries, DST, odd offsets, catch-up after an outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.notify.schedule import call_time, call_times, next_attempt, next_top_of_hour

UTC = UTC


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_first_hour_every_quarter_then_top_of_every_hour():
    start = utc(2026, 5, 4, 10, 7, 30)
    assert call_times(start, 8) == [
        utc(2026, 5, 4, 10, 7, 30),
        utc(2026, 5, 4, 10, 22, 30),
        utc(2026, 5, 4, 10, 37, 30),
        utc(2026, 5, 4, 10, 52, 30),
        # first top of the hour at or after start + 60 min (11:07:30) is 12:00
        utc(2026, 5, 4, 12),
        utc(2026, 5, 4, 13),
        utc(2026, 5, 4, 14),
        utc(2026, 5, 4, 15),
    ]


def test_start_exactly_on_the_hour_calls_at_the_next_hour():
    start = utc(2026, 5, 4, 10)
    assert call_times(start, 6) == [
        utc(2026, 5, 4, 10),
        utc(2026, 5, 4, 10, 15),
        utc(2026, 5, 4, 10, 30),
        utc(2026, 5, 4, 10, 45),
        utc(2026, 5, 4, 11),
        utc(2026, 5, 4, 12),
    ]


@pytest.mark.parametrize(
    "start, fifth",
    [
        (utc(2026, 5, 4, 10, 59, 59), utc(2026, 5, 4, 12)),  # one second before the hour
        (utc(2026, 5, 4, 11, 0, 0, 1), utc(2026, 5, 4, 13)),  # one microsecond after it
        (utc(2026, 12, 31, 23, 30), utc(2027, 1, 1, 1)),  # across midnight and the year
        (utc(2028, 2, 28, 23, 0), utc(2028, 2, 29, 0)),  # leap day
    ],
)
def test_hour_boundaries(start, fifth):
    assert call_time(start, 5) == fifth
    assert call_time(start, 6) == fifth + timedelta(hours=1)


def test_call_time_and_call_times_agree():
    start = utc(2026, 3, 29, 0, 41, 12)
    times = call_times(start, 30, "Europe/London")
    assert [call_time(start, n, "Europe/London") for n in range(1, 31)] == times


@pytest.mark.parametrize(
    "tz, start",
    [
        ("America/New_York", utc(2026, 3, 8, 5, 20)),  # spring forward at 02:00 local (07:00 UTC)
        ("America/New_York", utc(2026, 11, 1, 4, 20)),  # fall back: 01:00–02:00 local happens twice
        ("Europe/Berlin", utc(2026, 3, 29, 0, 10)),
        ("Europe/Berlin", utc(2026, 10, 25, 0, 10)),
        ("Australia/Sydney", utc(2026, 4, 4, 14, 50)),
    ],
)
def test_dst_changes_move_nothing_in_whole_hour_zones(tz, start):
    times = call_times(start, 12, tz)
    hourly = times[4:]
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(hourly))
    assert all(t.minute == 0 and t.second == 0 for t in hourly)
    assert all(t.astimezone(ZoneInfo(tz)).minute == 0 for t in hourly)


def test_fall_back_rings_at_both_one_oclocks():
    # New York, 1 Nov 2026: 01:00 EDT (05:00 UTC) and 01:00 EST (06:00 UTC) are both tops of the hour.
    times = call_times(utc(2026, 11, 1, 3, 30), 7, "America/New_York")
    local = [t.astimezone(ZoneInfo("America/New_York")) for t in times[4:]]
    assert [(t.hour, t.utcoffset()) for t in local] == [
        (1, timedelta(hours=-4)),
        (1, timedelta(hours=-5)),
        (2, timedelta(hours=-5)),
    ]


def test_spring_forward_skips_the_missing_hour_without_a_gap():
    # 8 Mar 2026: local 02:00 does not exist; calls stay one hour apart (01:00 EST, 03:00 EDT).
    times = call_times(utc(2026, 3, 8, 4, 30), 7, "America/New_York")
    local = [t.astimezone(ZoneInfo("America/New_York")).hour for t in times[4:]]
    assert local == [1, 3, 4]
    assert times[5] - times[4] == timedelta(hours=1)


def test_half_hour_zone_calls_at_local_top_of_hour():
    times = call_times(utc(2026, 5, 4, 10, 0), 7, "Asia/Kolkata")  # UTC+05:30
    assert times[4:] == [utc(2026, 5, 4, 11, 30), utc(2026, 5, 4, 12, 30), utc(2026, 5, 4, 13, 30)]


def test_quarter_hour_zone():
    times = call_times(utc(2026, 5, 4, 10, 0), 6, "Asia/Kathmandu")  # UTC+05:45
    assert times[4:] == [utc(2026, 5, 4, 11, 15), utc(2026, 5, 4, 12, 15)]


def test_lord_howe_half_hour_dst_shift_gives_one_long_gap_and_no_double_call():
    # 5 Apr 2026 02:00 LHDT (+11) becomes 01:30 LHST (+10:30) at 15:00 UTC.
    times = call_times(utc(2026, 4, 4, 13, 50), 8, "Australia/Lord_Howe")
    assert times[4:] == [
        utc(2026, 4, 4, 15, 30),
        utc(2026, 4, 4, 16, 30),
        utc(2026, 4, 4, 17, 30),
        utc(2026, 4, 4, 18, 30),
    ]
    local = [t.astimezone(ZoneInfo("Australia/Lord_Howe")) for t in times[4:]]
    assert [t.hour for t in local] == [2, 3, 4, 5] and all(t.minute == 0 for t in local)


def test_next_top_of_hour_inclusive_and_exclusive():
    assert next_top_of_hour(utc(2026, 1, 1, 9)) == utc(2026, 1, 1, 9)
    assert next_top_of_hour(utc(2026, 1, 1, 9), inclusive=False) == utc(2026, 1, 1, 10)


def test_next_attempt_normally_the_following_one():
    start = utc(2026, 5, 4, 10)
    assert next_attempt(start, 2, utc(2026, 5, 4, 10, 15, 1)) == (3, [])


def test_next_attempt_skips_slots_missed_during_an_outage():
    start = utc(2026, 5, 4, 10)
    # The host was down from 10:20 to 13:05: attempt 3 (10:30) fires late and is placed at 13:05;
    # 10:45, 11:00, 12:00 and 13:00 are in the past: skipped, the next call is at 14:00.
    nxt, skipped = next_attempt(start, 3, utc(2026, 5, 4, 13, 5))
    assert skipped == [4, 5, 6, 7]
    assert nxt == 8 and call_time(start, nxt) == utc(2026, 5, 4, 14)


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        call_time(datetime(2026, 1, 1), 1)
    with pytest.raises(ValueError):
        call_time(utc(2026, 1, 1), 0)


ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Chatham",
]


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)),
    tz=st.sampled_from(ZONES),
)
def test_properties_over_any_start_and_zone(start, tz):
    times = call_times(start, 10, tz)
    gaps = [b - a for a, b in pairwise(times)]
    assert gaps[:3] == [timedelta(minutes=15)] * 3
    # never closer than the 15-minute cadence, never more than 75 minutes (+30 for a half-hour DST shift)
    assert all(timedelta(minutes=15) <= g <= timedelta(minutes=105) for g in gaps)
    assert times[4] >= start + timedelta(hours=1)
    for t in times[4:]:
        assert t.astimezone(ZoneInfo(tz)).minute == 0 and t.second == 0 and t.microsecond == 0
    if tz == "UTC":
        assert all(g == timedelta(hours=1) for g in gaps[4:])
