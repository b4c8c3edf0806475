"""SLA report clocks, summaries and breaches (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.evidence import GENESIS_HASH, EventDraft, chain
from shared.models import Phase, Priority
from shared.reports import build_report, first_response_from_timeline, incident_sla, report_csv_rows
from tests.evidence.seed import PARTNERS, make_incident

UTC = UTC
T = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # a Monday


def test_met_breached_and_pending_clocks():
    fast = make_incident("fast", T, priority=Priority.P1, first_response_at=T + timedelta(minutes=10))
    slow = make_incident(
        "slow", T, priority=Priority.P2, triage_delay=timedelta(minutes=20), first_response_at=T + timedelta(minutes=45)
    )
    silent = make_incident("silent", T, priority=Priority.P3)
    now = T + timedelta(hours=1)
    a, b, c = (incident_sla(i, now) for i in (fast, slow, silent))
    assert (a.triage.state, a.first_response.state, a.response_sla.state) == ("met", "met", "met")
    assert a.first_response.seconds == 600
    assert (b.triage.state, b.first_response.state, b.response_sla.state) == ("breached", "breached", "met")
    assert b.triage.seconds == 1200
    # No response yet: the 30-minute target has passed, the P3 24-hour SLA has not.
    assert (c.first_response.state, c.response_sla.state, c.first_response_source) == ("breached", "pending", "none")


def test_report_lists_every_breach_and_summarises_per_partner_and_priority():
    rows = [
        incident_sla(
            make_incident("c1", T, priority=Priority.P1, first_response_at=T + timedelta(minutes=5)),
            T + timedelta(days=2),
        ),
        incident_sla(
            make_incident(
                "c2", T, priority=Priority.P1, first_response_at=T + timedelta(minutes=40), breaches=["first response"]
            ),
            T + timedelta(days=2),
        ),
        incident_sla(
            make_incident("s1", T, partner_id=None, priority=Priority.P4, first_response_at=T + timedelta(minutes=3)),
            T + timedelta(days=2),
        ),
    ]
    report = build_report(rows, T - timedelta(days=1), T + timedelta(days=1), None, PARTNERS, T + timedelta(days=2))
    assert [p.partner_name for p in report.partners] == ["SOC on-call", "Contoso Ltd"]
    contoso = report.partners[1]
    assert contoso.incidents == 2 and contoso.first_response.met == 1 and contoso.first_response.breached == 1
    assert contoso.response_sla["P1"].breached == 1 and contoso.first_response.median_seconds == 1350
    kinds = sorted((b.incident_id.split("-")[0], b.clock) for b in report.breaches)
    assert [k for _, k in kinds] == ["first-response", "recorded", "response-sla"]
    late = next(b for b in report.breaches if b.clock == "response-sla")
    assert late.late_by_seconds == 600 and "missed by 600 s" in late.detail
    assert report.totals.incidents == 3 and report.targets["triageSeconds"] == 900
    csv_rows = list(report_csv_rows(report))
    assert csv_rows[0][0] == "incidentId" and len(csv_rows) == 4


def test_first_response_from_timeline_ignores_plans_and_failures():
    drafts = [
        EventDraft(event_type=t, phase=p, summary=t, occurred_at=T + timedelta(minutes=i))
        for i, (t, p) in enumerate(
            [
                ("alert.received", Phase.DETECT),
                ("containment.planned", Phase.CONTAIN),
                ("notification.planned", Phase.NOTIFY),
                ("email.failed", Phase.NOTIFY),
                ("email.sent", Phase.NOTIFY),
                ("containment.contained", Phase.CONTAIN),
            ]
        )
    ]
    events = chain("INC-x", drafts, 0, GENESIS_HASH)
    assert first_response_from_timeline(events) == T + timedelta(minutes=4)
    assert first_response_from_timeline(events[:4]) is None
