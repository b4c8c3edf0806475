"""The one optimistic-update loop: re-read and re-apply after a lost race, stop when nothing changes."""

from __future__ import annotations

import pytest

from shared.errors import ConcurrencyError
from shared.etag import Versioned, update_under_etag


class Row:
    """An in-memory row with an ETag that a 'concurrent writer' can bump between our read and write."""

    def __init__(self, value: int | None, races: int = 0):
        self.value, self.version, self.races, self.writes = value, 1, races, 0

    def read(self) -> Versioned[int] | None:
        return None if self.value is None else Versioned(self.value, str(self.version))

    def write(self, value: int, etag: str | None) -> str:
        if self.races:
            self.races -= 1
            self.value, self.version = self.value + 100, self.version + 1  # someone else wrote first
        if etag != str(self.version):
            raise ConcurrencyError("stale")
        self.value, self.version, self.writes = value, self.version + 1, self.writes + 1
        return str(self.version)


def test_lost_races_reapply_the_change_to_the_fresh_value():
    row = Row(1, races=2)
    got = update_under_etag(row.read, row.write, lambda v: v + 1, what="row")
    assert got is not None and got.written
    assert (got.before, got.after, row.value) == (201, 202, 202)
    assert row.writes == 1 and got.etag == str(row.version)


def test_nothing_to_do_writes_nothing():
    row = Row(5)
    got = update_under_etag(row.read, row.write, lambda v: None, what="row")
    assert got is not None and not got.written and got.after == 5 and row.writes == 0


def test_missing_row_returns_none_without_calling_change():
    row = Row(None)
    calls = []
    assert update_under_etag(row.read, row.write, lambda v: calls.append(v), what="row") is None
    assert calls == []


def test_first_read_is_reused_once():
    row = Row(3)
    reads = []

    def read():
        reads.append(1)
        return row.read()

    got = update_under_etag(read, row.write, lambda v: v * 2, what="row", first=Versioned(3, "1"))
    assert got is not None and got.after == 6 and reads == []


def test_endless_contention_is_an_error_naming_the_row():
    row = Row(1, races=10**6)
    with pytest.raises(ConcurrencyError, match="incident X is changing too fast"):
        update_under_etag(row.read, row.write, lambda v: v + 1, what="incident X", tries=5)
