"""Issue 14: when a contact's number is rung — one schedule per number, whatever the number of incidents. Pure.

A storm of 50 P1s for one partner used to ring its emergency number 50 times at once (one escalation per
incident). Now each number has one call schedule (docs/spec/notification.md: +0, +15, +30, +45 minutes, then the top of every
hour, on the contact's clock) that starts when the first incident is paged to it; every call announces all the
incidents then waiting for that number.

The one exception, and how it keeps the figures: a **new** incident (never yet announced to this number) does
not wait for a slot more than ``PROMPT_WITHIN`` away: the next call is placed as soon as the line is free. That
call *is* the next slot's call, placed early (the following call keeps its own slot), so the first hour still
has at most four; and ``CAP_CALLS`` calls in any ``CAP_WINDOW`` is a hard ceiling for every number (an early call
that would break it waits until the oldest call of the window is an hour old). So: a new P1 reaches a person
within a minute of paging when the number is free and has had fewer than four calls in the last hour, and no
number is rung more than four times an hour, one call at a time.

The contact key is a hash of the normalised number: durable instance ids, row keys and logs never carry the
number in clear (the number itself is read from the partner registry when a call is placed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta

from shared.notify.schedule import call_time, next_attempt

PROMPT_WITHIN = timedelta(minutes=1)
"""A new incident waits for the next slot only when that slot is at most this far away."""
CAP_CALLS, CAP_WINDOW = 4, timedelta(hours=1)
"""No number gets more than ``CAP_CALLS`` calls within any ``CAP_WINDOW``."""
MAX_CALL = timedelta(minutes=5)
"""The longest a call holds a number's line without ACS saying it ended (then it is hung up and the line freed):
ringing ~1 min, three spoken prompts of ~1 min each."""
CALLER_LEASE = timedelta(minutes=10)
"""A caller number's call slot is free again after this long even if nobody released it (lost events)."""


def normalise_number(number: str) -> str:
    """The number as dialled: ``+`` and digits only (spaces, dots, dashes and brackets dropped)."""
    text = number.strip()
    digits = "".join(c for c in text if c.isdigit())
    return ("+" if text.startswith("+") else "") + digits


def contact_key(number: str) -> str:
    """The number's pseudonymous key (ids, rows, logs): 20 hex digits of SHA-256 of the normalised number."""
    return hashlib.sha256(f"soc-responder/contact/{normalise_number(number)}".encode()).hexdigest()[:20]


def pager_instance_id(key: str) -> str:
    """Durable instance id of the number's pager (one per contact number)."""
    return f"pager-{key}"


def recent_calls(calls: Sequence[datetime], now: datetime) -> list[datetime]:
    """The calls that still count against the cap at ``now`` (the last ``CAP_WINDOW``), oldest first."""
    return sorted(c for c in calls if c > now - CAP_WINDOW)


def next_call_due(
    episode_start: datetime, slot: int, calls: Sequence[datetime], fresh: bool, now: datetime, tz: str = "UTC"
) -> datetime:
    """When the number's next call (its schedule's slot ``slot``) is due.

    ``calls``: when this number was called recently (any episode); ``fresh``: an incident waiting for this number
    was never announced to it yet.
    """
    due = call_time(episode_start, slot, tz)
    if fresh and due > now + PROMPT_WITHIN:
        due = now
    window = sorted(calls)[-CAP_CALLS:]
    if len(window) >= CAP_CALLS:
        due = max(due, window[0] + CAP_WINDOW)
    return due


def slot_after_call(episode_start: datetime, slot: int, placed_at: datetime, tz: str = "UTC") -> int:
    """The slot to wait for once the call of ``slot`` was placed at ``placed_at`` (early or late): the next one
    still in the future — slots missed while the host was down are skipped, not caught up back to back."""
    return next_attempt(episode_start, slot, placed_at, tz)[0]
