"""GET/POST /api/incidents/{id}/review and the daily review_overdue_watch timer (Azurite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.models import IncidentStatus
from tests.evidence.seed import make_incident, seed, timeline

UTC = UTC
SUBMISSION = {
    "actor": "ana.lyst@soc.example",
    "rootCause": "A phished session token was replayed.",
    "impact": "One mailbox read for 20 minutes.",
    "actionItems": [
        {"description": "Enforce token protection", "owner": "it@contoso.example", "due": "2026-12-01"},
        "Brief the helpdesk",
    ],
    "customerNotification": "Contoso informed by phone at 10:40 UTC.",
    "eradication": "Session revoked, password reset.",
    "recovery": "Account re-enabled after MFA reset.",
}


@pytest.fixture
def incident(app):
    inc = make_incident("review", datetime.now(UTC) - timedelta(hours=3), title="Token replay <b>alice</b>")
    seed(app.store, inc, timeline(inc, 6))
    return inc


def _review(app, incident_id, fmt=None):
    return app.get(f"/api/incidents/{incident_id}/review", {"format": fmt} if fmt else None)


def test_markdown_is_the_default(app, incident):
    r = _review(app, incident.id)
    assert r.status == 200 and r.headers["Content-Type"] == "text/markdown; charset=utf-8"
    assert r.text.startswith("# Post-incident review: Token replay \\<b\\>alice\\</b\\>")
    for section in (
        "## Summary",
        "## Severity and its changes",
        "## Root cause",
        "## Impact",
        "## Containment actions",
        "## Eradication",
        "## Recovery",
        "## Notification record",
        "## Customer notification",
        "## Action items",
        "## Timeline",
    ):
        assert section in r.text
    assert incident.id in r.text and "Not recorded yet (required)." in r.text


def test_html_and_json(app, incident):
    page = _review(app, incident.id, "html")
    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "<b>alice</b>" not in page.text and "&lt;b&gt;alice&lt;/b&gt;" in page.text
    doc = _review(app, incident.id, "json").json()
    assert doc["incidentId"] == incident.id and doc["dueBasis"] == "detection" and doc["complete"] is False
    assert doc["missing"] == ["root cause", "action items"] and len(doc["timeline"]) == 6
    assert doc["chain"] == {"valid": True, "events": 6, "brokenAt": None}
    assert _review(app, incident.id, "pdf").status == 400


def test_submission_is_an_evidence_event_and_completes_the_review(app, incident):
    r = app.post(f"/api/incidents/{incident.id}/review", SUBMISSION)
    assert r.status == 200, r.text
    body = r.json()
    assert (
        body["complete"] is True
        and body["recorded"]["seq"] == 7
        and body["recorded"]["eventType"] == "review.submitted"
    )
    ev = app.store.list_events(incident.id)[-1]
    assert (ev.event_type, ev.phase.value, ev.criterion, ev.actor, ev.actor_type.value) == (
        "review.submitted",
        "Review",
        "CC7.5",
        "ana.lyst@soc.example",
        "analyst",
    )
    assert ev.data["fields"]["rootCause"] == SUBMISSION["rootCause"]
    md = _review(app, incident.id).text
    assert "A phished session token was replayed." in md and "Enforce token protection" in md
    assert "Brief the helpdesk" in md and "Contoso informed by phone" in md
    # A later submission overrides only the fields it names.
    app.post(f"/api/incidents/{incident.id}/review", {"actor": "bo@soc.example", "impact": "No data left the tenant."})
    doc = _review(app, incident.id, "json").json()
    assert doc["impact"] == "No data left the tenant." and doc["rootCause"] == SUBMISSION["rootCause"]
    assert [c["actor"] for c in doc["contributions"]] == ["ana.lyst@soc.example", "bo@soc.example"]
    assert app.get(f"/api/incidents/{incident.id}/verify").json() == {"valid": True}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"rootCause": "x"}, "actor"),
        ({"actor": "a@b.example", "rootcause": "x"}, "rootcause"),
        ({"actor": "a@b.example", "actionItems": [{}]}, "actionItems.0.description"),
    ],
)
def test_bad_submission_is_400_naming_the_field_and_records_nothing(app, incident, body, field):
    r = app.post(f"/api/incidents/{incident.id}/review", body)
    assert r.status == 400 and field in [d["field"] for d in r.json()["details"]]
    assert len(app.store.list_events(incident.id)) == 6


def test_unknown_incident_and_wrong_content_type(app):
    assert _review(app, "INC-20260101-000000000000").status == 404
    assert app.post("/api/incidents/INC-20260101-000000000000/review", SUBMISSION).status == 404
    r = app.request(
        "POST",
        "/api/incidents/INC-x/review",
        body="rootCause=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status == 415


def test_overdue_reviews_are_flagged_once_by_the_daily_timer(app):
    now = datetime.now(UTC)
    overdue = make_incident("late", now - timedelta(days=12))
    resolved_late = make_incident(
        "res-late", now - timedelta(days=20), status=IncidentStatus.RESOLVED, resolved_at=now - timedelta(days=10)
    )
    done = make_incident("done", now - timedelta(days=12))
    fresh = make_incident("fresh", now - timedelta(hours=5))
    recent_resolution = make_incident(
        "res-new", now - timedelta(days=30), status=IncidentStatus.RESOLVED, resolved_at=now - timedelta(hours=2)
    )
    for inc in (overdue, resolved_late, done, fresh, recent_resolution):
        seed(app.store, inc, timeline(inc, 3))
    assert app.post(f"/api/incidents/{done.id}/review", SUBMISSION).status == 200

    app.runtime.timer("review_overdue_watch")
    app.runtime.timer("review_overdue_watch")

    def flags(inc):
        return [e for e in app.store.list_events(inc.id) if e.event_type == "review.overdue"]

    assert len(flags(overdue)) == 1 and len(flags(resolved_late)) == 1
    assert flags(done) == [] and flags(fresh) == [] and flags(recent_resolution) == []
    flag = flags(overdue)[0]
    assert flag.phase.value == "Review" and flag.data["missing"] == ["root cause", "action items"]
    assert flags(resolved_late)[0].data["dueBasis"] == "resolution"
    doc = _review(app, overdue.id, "json").json()
    assert doc["overdue"] is True and doc["overdueFlaggedAt"] == flag.occurred_at
