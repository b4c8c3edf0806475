"""Retention (docs/spec/evidence.md): nothing deletes evidence younger than 3 years."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ConflictError
from shared.models import IncidentStatus
from shared.retention import RetentionViolation, check_purgeable, eligible_incidents, purge_incident, retention_cutoff
from tests.evidence.seed import make_incident, seed, timeline

UTC = UTC


def test_cutoff_is_three_calendar_years():
    assert retention_cutoff(datetime(2029, 6, 1, 12, tzinfo=UTC)) == datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert retention_cutoff(datetime(2028, 2, 29, tzinfo=UTC)) == datetime(2025, 2, 28, tzinfo=UTC)


@pytest.fixture
def closed(app):
    now = datetime.now(UTC)
    inc = make_incident(
        "ret", now - timedelta(days=40), status=IncidentStatus.CLOSED, resolved_at=now - timedelta(days=30)
    )
    seed(app.store, inc, timeline(inc, 5))
    app.store.put_record("ContainmentActions", inc.id, "a1", {"kind": "isolate-vm", "status": "released"})
    return inc


def _rows(app, incident_id):
    return (
        len(app.store.list_events(incident_id)),
        app.store.get_incident(incident_id) is not None,
        len(app.store.list_records("ContainmentActions", incident_id)),
    )


def test_purge_refuses_evidence_younger_than_three_years_and_deletes_nothing(app, closed):
    before = _rows(app, closed.id)
    for age in (timedelta(0), timedelta(days=365), timedelta(days=3 * 365 - 30)):
        with pytest.raises(RetentionViolation) as exc:
            purge_incident(app.store, closed.id, "ops@soc.example", clock=lambda age=age: datetime.now(UTC) + age)
        assert "3 years" in str(exc.value)
    assert _rows(app, closed.id) == before == (5, True, 1)
    assert app.get(f"/api/incidents/{closed.id}/verify").json() == {"valid": True}


def test_open_incidents_are_never_purged(app):
    inc = make_incident("open", datetime.now(UTC) - timedelta(days=10))
    seed(app.store, inc, timeline(inc, 2))
    with pytest.raises(RetentionViolation, match="still open"):
        check_purgeable(app.store, inc.id, datetime.now(UTC) + timedelta(days=4 * 366))


def test_the_store_itself_refuses_rows_written_after_the_cutoff(app, closed):
    # Even when called directly (bypassing shared.retention), the store checks its own write timestamps.
    with pytest.raises(ConflictError):
        app.store.delete_incident_evidence(closed.id, written_before=datetime.now(UTC) - timedelta(days=1))
    assert _rows(app, closed.id) == (5, True, 1)


def test_evidence_past_retention_can_be_purged_and_the_purge_is_recorded(app, closed):
    later = datetime.now(UTC) + timedelta(days=3 * 366 + 1)
    assert eligible_incidents(app.store, clock=lambda: later).eligible == [closed.id]
    assert eligible_incidents(app.store).eligible == []
    result = purge_incident(app.store, closed.id, "ops@soc.example", clock=lambda: later)
    assert result.rows_deleted == 5 + 1 + 1 + 1  # events, chain head, containment record, incident row
    assert _rows(app, closed.id) == (0, False, 0)
    log = app.store.get_record("IngestState", "retention-purges", closed.id)
    assert log[0]["actor"] == "ops@soc.example" and log[0]["rowsDeleted"] == 8
