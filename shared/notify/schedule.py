"""The phone escalation schedule (docs/spec/notification.md). Pure: a function of start time, attempt number and time zone.

Attempts 1–4 are at start +0, +15, +30 and +45 minutes. From attempt 5 on
there is one call at the top of every following hour: attempt 5 is the first
top of the hour at or after start +60 minutes (so no call ever follows the
previous one by less than 15 minutes), each later attempt the next top of the
hour after that.

"Top of the hour" is read on the callee's clock (the partner's time zone),
because that is the hour a person expects the phone to ring on. For the zones
most partners use (whole-hour offsets) that is also the top of the UTC hour,
and a daylight-saving change moves nothing: calls stay exactly 60 minutes
apart. Zones with a 30- or 45-minute offset (India, Nepal, Newfoundland …)
get calls at their own :00, and a 30-minute DST shift (Lord Howe Island) gives
one gap of 30 or 90 minutes — still one call per local hour, none skipped,
none doubled. Every instant returned is aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

FIRST_HOUR_OFFSETS = (timedelta(0), timedelta(minutes=15), timedelta(minutes=30), timedelta(minutes=45))
FIRST_HOURLY_AFTER = timedelta(hours=1)
# Every UTC offset in use is a whole number of quarter hours, so every local
# top of the hour falls on a UTC quarter hour.
_QUARTER = timedelta(minutes=15)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("escalation times must be timezone-aware")
    return moment.astimezone(UTC)


def _ceil_quarter(moment: datetime) -> datetime:
    """``moment`` (UTC) rounded up to the next UTC quarter hour (unchanged if already on one)."""
    floored = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
    return floored if floored == moment else floored + _QUARTER


def next_top_of_hour(moment: datetime, tz: str = "UTC", inclusive: bool = True) -> datetime:
    """The first instant at or after (``inclusive``) or strictly after ``moment`` at which
    the clock in ``tz`` shows minute 0, second 0 — as aware UTC."""
    zone = ZoneInfo(tz)
    at = _utc(moment)
    candidate = _ceil_quarter(at)
    if not inclusive and candidate == at:
        candidate += _QUARTER
    # At most 4 quarter hours per local hour, plus one DST shift: 12 steps always suffice.
    for _ in range(12):
        if candidate.astimezone(zone).minute == 0:
            return candidate
        candidate += _QUARTER
    raise ValueError(f"no top of the hour found in {tz} after {moment.isoformat()}")  # pragma: no cover


def call_time(start: datetime, attempt: int, tz: str = "UTC") -> datetime:
    """When call ``attempt`` (1-based) of an escalation that started at ``start`` is due (aware UTC)."""
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    begin = _utc(start)
    if attempt <= len(FIRST_HOUR_OFFSETS):
        return begin + FIRST_HOUR_OFFSETS[attempt - 1]
    due = next_top_of_hour(begin + FIRST_HOURLY_AFTER, tz, inclusive=True)
    for _ in range(attempt - len(FIRST_HOUR_OFFSETS) - 1):
        due = next_top_of_hour(due, tz, inclusive=False)
    return due


def call_times(start: datetime, count: int, tz: str = "UTC") -> list[datetime]:
    """The first ``count`` call times (computed incrementally: O(count))."""
    begin = _utc(start)
    times = [begin + offset for offset in FIRST_HOUR_OFFSETS[:count]]
    if count > len(FIRST_HOUR_OFFSETS):
        due = next_top_of_hour(begin + FIRST_HOURLY_AFTER, tz, inclusive=True)
        times.append(due)
        while len(times) < count:
            due = next_top_of_hour(due, tz, inclusive=False)
            times.append(due)
    return times


def next_attempt(start: datetime, after_attempt: int, now: datetime, tz: str = "UTC") -> tuple[int, list[int]]:
    """The attempt to wait for after ``after_attempt`` was placed at ``now``, and the attempts skipped.

    Normally ``after_attempt + 1`` with nothing skipped. When the host was
    down (timers fire late), slots already in the past are skipped rather
    than placed back to back: the callee gets one call now, then the schedule
    resumes at its next future slot.
    """
    moment = _utc(now)
    candidate = after_attempt + 1
    skipped: list[int] = []
    due = call_time(start, candidate, tz)
    while due <= moment:
        skipped.append(candidate)
        candidate += 1
        due = (
            call_time(start, candidate, tz)
            if candidate <= len(FIRST_HOUR_OFFSETS) + 1
            else next_top_of_hour(due, tz, inclusive=False)
        )
    return candidate, skipped
