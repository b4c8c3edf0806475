"""GET /api/reports/sla against Azurite."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from shared.evidence import EventDraft
from shared.models import Phase, Priority
from tests.evidence.seed import make_incident, seed, timeline

UTC = UTC
T = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def _seed(app):
    on_time = make_incident("ok", T, priority=Priority.P1, first_response_at=T + timedelta(minutes=8))
    late = make_incident(
        "late",
        T + timedelta(days=1),
        priority=Priority.P2,
        triage_delay=timedelta(minutes=18),
        first_response_at=T + timedelta(days=1, minutes=50),
    )
    from_timeline = make_incident("tl", T + timedelta(days=2), partner_id=None, priority=Priority.P3)
    outside = make_incident("out", T - timedelta(days=3), priority=Priority.P1)
    for inc in (on_time, late, outside):
        seed(app.store, inc, timeline(inc, 2))
    # No firstResponseAt stamped: the report finds the first notification sent in the timeline.
    seed(
        app.store,
        from_timeline,
        timeline(from_timeline, 2)
        + [
            EventDraft(
                event_type="notification.planned",
                phase=Phase.NOTIFY,
                summary="plan",
                occurred_at=from_timeline.created_at + timedelta(minutes=1),
            ),
            EventDraft(
                event_type="email.sent",
                phase=Phase.NOTIFY,
                summary="sent",
                occurred_at=from_timeline.created_at + timedelta(minutes=12),
            ),
        ],
    )
    return on_time, late, from_timeline


def test_report_per_partner_with_breaches(app):
    on_time, late, from_timeline = _seed(app)
    r = app.get("/api/reports/sla", {"from": "2026-06-01", "to": "2026-06-30"})
    assert r.status == 200, r.text
    report = r.json()
    assert [i["incidentId"] for i in report["incidents"]] == [on_time.id, late.id, from_timeline.id]
    assert report["targets"]["triageSeconds"] == 900 and report["targets"]["firstResponseSeconds"] == 1800
    tl = report["incidents"][2]
    assert tl["firstResponseSource"] == "timeline" and tl["firstResponse"]["seconds"] == 720
    assert {(b["incidentId"], b["clock"]) for b in report["breaches"]} == {
        (late.id, "triage"),
        (late.id, "first-response"),
    }
    assert [p["partnerName"] for p in report["partners"]] == ["SOC on-call", "Contoso Ltd"]
    contoso = report["partners"][1]
    assert contoso["incidents"] == 2 and contoso["triage"]["breached"] == 1 and contoso["responseSla"]["P2"]["met"] == 1


def test_partner_filter_and_csv(app):
    on_time, late, from_timeline = _seed(app)
    only = app.get("/api/reports/sla", {"from": "2026-06-01", "to": "2026-06-30", "partner": "_soc"}).json()
    assert [i["incidentId"] for i in only["incidents"]] == [from_timeline.id]
    r = app.get("/api/reports/sla", {"from": "2026-06-01", "to": "2026-06-30", "format": "csv"})
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    assert [row["incidentId"] for row in rows] == [on_time.id, late.id, from_timeline.id]
    assert rows[1]["triage"] == "breached" and "missed by" in rows[1]["breaches"]


def test_bad_parameters(app):
    assert app.get("/api/reports/sla", {"from": "June"}).json()["details"][0]["field"] == "from"
    assert app.get("/api/reports/sla", {"from": "2026-06-02", "to": "2026-06-01"}).status == 400
    assert app.get("/api/reports/sla", {"format": "xlsx"}).status == 400
