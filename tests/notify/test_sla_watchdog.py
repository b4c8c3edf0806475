"""The SLA watchdog timer: each missed target is evidenced and notified once; runbooks that never ran re-driven."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from tests.notify.conftest import SOC_EMAILS, generic_alert


def age(app, incident_id: str, minutes: int, *, responded: bool = False) -> None:
    """Move the incident's clocks back by ``minutes`` (as if received that long ago)."""
    from shared.notify.incidents import update_incident

    delta = timedelta(minutes=minutes)

    def shift(incident):
        sla = incident.sla
        clocks = sla.model_copy(
            update={
                "received_at": sla.received_at - delta,
                "triaged_at": sla.triaged_at - delta,
                "triage_due": sla.triage_due - delta,
                "first_response_due": sla.first_response_due - delta,
                "response_sla_due": sla.response_sla_due - delta,
                "first_response_at": (sla.first_response_at - delta) if responded and sla.first_response_at else None,
            }
        )
        return incident.model_copy(update={"sla": clocks, "created_at": incident.created_at - delta})

    update_incident(app.store, incident_id, shift)


def breach_events(app, incident_id):
    return [e for e in app.incident(incident_id)["timeline"] if e["eventType"] == "sla.breached"]


def test_first_response_breach_is_flagged_and_notified_once(notify_app):
    app = notify_app
    incident_id = app.ingest(5)
    age(app, incident_id, 40)
    sent = len(app.fake.sent_mail())
    for _ in range(3):
        app.runtime.timer("sla_watchdog")
    events = breach_events(app, incident_id)
    assert [e["data"]["breach"] for e in events] == ["first-response"]
    assert events[0]["criterion"] == "CC7.4"
    assert app.incident(incident_id)["sla"]["breaches"] == ["first-response"]
    [mail] = app.fake.sent_mail()[sent:]
    assert mail.subject.startswith("[P3 Minor] SLA breached (first response within 30 minutes)")
    assert mail.to == SOC_EMAILS and mail.importance == "high"


def test_p1_not_acknowledged_in_time_breaches_its_response_sla(notify_app):
    app = notify_app
    incident_id = app.ingest(10)
    age(app, incident_id, 31, responded=True)  # the first call went out in time; nobody acknowledged
    app.runtime.timer("sla_watchdog")
    app.runtime.timer("sla_watchdog")
    assert [e["data"]["breach"] for e in breach_events(app, incident_id)] == ["response-sla:P1"]
    assert len(app.mails("SLA breached")) == 1


def test_acknowledged_in_time_is_no_breach(notify_app):
    app = notify_app
    incident_id = app.ingest(10)
    assert app.post(f"/api/incidents/{incident_id}/ack", {"actor": "ana@soc.example"}).status == 200
    app.runtime.timer("sla_watchdog")
    assert breach_events(app, incident_id) == []


def test_overlapping_watchdog_runs_still_flag_once(notify_app):
    from shared.notify.watchdog import SlaWatchdog

    app = notify_app
    incident_id = app.ingest(5)
    age(app, incident_id, 45)
    notifier = app.context.notifications
    now = datetime.now(UTC)
    barrier = threading.Barrier(4)
    errors = []

    def run():
        try:
            barrier.wait()
            SlaWatchdog(notifier).run(now)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(breach_events(app, incident_id)) == 1
    assert len(app.mails("SLA breached")) == 1


def test_a_runbook_that_never_ran_is_redriven(notify_app):
    from shared.intake import generic

    app = notify_app
    # Recorded by ingest, but its runbook start was lost (the host was down).
    outcome = app.context.ingest.ingest(generic.parse(generic_alert(8, alert_id="lost"), datetime.now(UTC)))
    incident_id = outcome.incident_id
    assert app.durable.status(f"runbook-{incident_id}-1") is None
    app.runtime.timer("sla_watchdog")
    assert app.durable.status(f"runbook-{incident_id}-1") is None  # too young: the start may still be under way
    age(app, incident_id, 5)
    app.runtime.timer("sla_watchdog")
    assert app.durable.status(f"runbook-{incident_id}-1")["runtimeStatus"] == "Completed"
    assert "runbook.redriven" in app.timeline(incident_id)
    assert len(app.mails(f"New security incident: {incident_id}")) == 1
    app.runtime.timer("sla_watchdog")
    assert app.timeline(incident_id).count("runbook.redriven") == 1


def test_a_runbook_that_failed_is_started_again(notify_app, tmp_path):
    from datetime import timedelta

    from shared.intake import generic

    app = notify_app
    outcome = app.context.ingest.ingest(generic.parse(generic_alert(8, alert_id="failed"), datetime.now(UTC)))
    incident_id, good = outcome.incident_id, app.context.settings.partners_file
    app.configure(PARTNERS_FILE=str(tmp_path / "missing.json"))  # every planning attempt fails
    app.durable.start_new("incident_runbook", f"runbook-{incident_id}-1", outcome.runbook.input)
    app.durable.advance(timedelta(minutes=2))  # through the retries
    assert app.durable.status(f"runbook-{incident_id}-1")["runtimeStatus"] == "Failed"
    assert len(app.durable.activity_calls("plan_response")) == 4
    app.configure(PARTNERS_FILE=good)
    age(app, incident_id, 5)
    app.runtime.timer("sla_watchdog")
    assert app.durable.status(f"runbook-{incident_id}-1")["runtimeStatus"] == "Completed"
    redriven = [e for e in app.store.list_events(incident_id) if e.event_type == "runbook.redriven"]
    assert len(redriven) == 1 and redriven[0].data["previousStatus"] == "Failed"
    assert len(app.mails(f"New security incident: {incident_id}")) == 1


def test_due_breaches_pure(make_incident):
    from shared.notify.watchdog import due_breaches

    inc = make_incident(priority="P2")
    received = inc.sla.received_at
    assert due_breaches(inc, received + timedelta(minutes=29)) == []
    assert due_breaches(inc, received + timedelta(minutes=31)) == ["first-response"]
    assert due_breaches(inc, received + timedelta(hours=2, minutes=1)) == ["first-response", "response-sla:P2"]
    late = inc.model_copy(update={"sla": inc.sla.model_copy(update={"triaged_at": received + timedelta(minutes=16)})})
    assert due_breaches(late, received + timedelta(minutes=17)) == ["triage"]
    p4 = make_incident(priority="P4")
    assert due_breaches(p4, received + timedelta(minutes=31), digest_p4=True) == []
    assert due_breaches(p4, received + timedelta(minutes=31)) == ["first-response"]
