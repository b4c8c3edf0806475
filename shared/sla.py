"""SLA clocks (docs/spec/triage.md): pure functions of priority, receipt time and time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.models import Priority, SlaClocks

TRIAGE_TARGET = timedelta(minutes=15)
FIRST_RESPONSE_TARGET = timedelta(minutes=30)
RESPONSE_SLA = {Priority.P1: timedelta(minutes=30), Priority.P2: timedelta(hours=2), Priority.P3: timedelta(hours=24)}
# "Next business day" ends at close of business in the partner's time zone.
BUSINESS_DAY_END = time(17, 0)


def next_business_day_end(moment: datetime, tz: str) -> datetime:
    """Close of business on the first business day (Mon–Fri) after ``moment``'s local date."""
    local = moment.astimezone(ZoneInfo(tz))
    day = local.date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, BUSINESS_DAY_END, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def add_business_days(moment: datetime, days: int, tz: str) -> datetime:
    """``moment`` plus ``days`` business days (Mon–Fri), same local wall time."""
    local = moment.astimezone(ZoneInfo(tz))
    day, added = local.date(), 0
    while added < days:
        day += timedelta(days=1)
        if day.weekday() < 5:
            added += 1
    return datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def response_due(priority: Priority, received_at: datetime, tz: str) -> datetime:
    """When the per-priority response SLA expires."""
    if priority == Priority.P4:
        return next_business_day_end(received_at, tz)
    return received_at + RESPONSE_SLA[priority]


def start_clocks(priority: Priority, received_at: datetime, triaged_at: datetime, tz: str) -> SlaClocks:
    """The clocks stamped on a new incident."""
    return SlaClocks(
        received_at=received_at,
        triaged_at=triaged_at,
        triage_due=received_at + TRIAGE_TARGET,
        first_response_due=received_at + FIRST_RESPONSE_TARGET,
        response_sla_due=response_due(priority, received_at, tz),
    )


def reprioritise(clocks: SlaClocks, priority: Priority, tz: str) -> SlaClocks:
    """Clocks after a priority change: the response SLA is recomputed from receipt."""
    return clocks.model_copy(update={"response_sla_due": response_due(priority, clocks.received_at, tz)})
