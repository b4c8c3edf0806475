"""The one "read, change, write under ETag, retry on conflict" loop (no locks: instances scale out).

Every optimistic update in the app — incidents, containment and notification rows, write-back state,
the blast-radius breaker, poll watermarks — goes through ``update_under_etag``. The caller supplies how
to read (value and ETag), how to write under an ETag (raising ``ConcurrencyError`` when the row
changed meanwhile) and a ``change`` that is a pure function of the value it is given: after a lost race
it is called again on a fresh read, so it must decide from that value alone, never from state it kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from shared.errors import ConcurrencyError

T = TypeVar("T")

# Enough for a hot row under a storm (every replica updating one incident), few enough that a livelock
# surfaces as an error rather than a hung request.
DEFAULT_TRIES = 25


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A value as read, with the ETag to write it back under (None: it does not exist yet; create it)."""

    value: T
    etag: str | None


@dataclass(frozen=True)
class Updated(Generic[T]):
    """The outcome of one ``update_under_etag``."""

    before: T
    """The value the winning ``change`` saw."""
    after: T
    """What was written, or ``before`` when ``change`` had nothing to do."""
    written: bool
    etag: str | None
    """The ETag after the write (or of ``before`` when nothing was written), where the writer returns one."""


def update_under_etag(
    read: Callable[[], Versioned[T] | None],
    write: Callable[[T, str | None], str | None],
    change: Callable[[T], T | None],
    *,
    what: str,
    tries: int = DEFAULT_TRIES,
    first: Versioned[T] | None = None,
) -> Updated[T] | None:
    """Apply ``change`` to the current value and write it if nobody wrote in between; re-read and re-apply
    after each lost race. ``change`` returns the new value, or None when there is nothing to do.

    Returns None when ``read`` finds nothing (a caller that needs the row raises from ``read`` instead).
    ``first``: a value the caller has just read, which saves the first round trip.
    Raises ``ConcurrencyError`` naming ``what`` after ``tries`` lost races.
    """
    for _ in range(tries):
        current: Versioned[T] | None
        if first is not None and first.etag is not None:
            current, first = first, None
        else:
            current = read()
        if current is None:
            return None
        new = change(current.value)
        if new is None:
            return Updated(current.value, current.value, False, current.etag)
        try:
            etag = write(new, current.etag)
        except ConcurrencyError:
            continue
        return Updated(current.value, new, True, etag)
    raise ConcurrencyError(f"{what} is changing too fast to update")
