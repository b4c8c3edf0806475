"""Issue 14, item 6: a redelivery repairs a runbook that never started (no waiting for the SLA watchdog), and a
retry never duplicates a timeline event."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fixtures.app import sample

DEFENDER = "/api/alerts/defender"


def _runbooks(app) -> list[str]:
    return [i for i in app.durable.instance_ids() if i.startswith("runbook-")]


def test_a_redelivery_starts_the_runbook_the_first_delivery_never_started(app):
    from shared.intake import defender

    # The first delivery wrote the incident and its evidence, then died before starting the runbook.
    outcome = app.context.ingest.ingest(defender.parse(sample("defender-alert-arm.json"), datetime.now(UTC)))
    assert outcome.outcome == "created" and _runbooks(app) == []

    r = app.post(DEFENDER, sample("defender-alert-arm.json"))
    assert r.status == 202 and r.json()["outcome"] == "duplicate"
    instance = f"runbook-{outcome.incident_id}-1"
    assert _runbooks(app) == [instance]
    assert app.durable.status(instance)["runtimeStatus"] == "Completed"
    timeline = app.timeline(outcome.incident_id)
    assert timeline.count("runbook.repaired") == 1 and "containment.planned" in timeline

    # A further redelivery finds the run and starts nothing more.
    again = app.post(DEFENDER, sample("defender-alert-arm.json"))
    assert again.json()["outcome"] == "duplicate"
    assert _runbooks(app) == [instance]
    assert app.timeline(outcome.incident_id).count("runbook.repaired") == 1
    assert app.get(f"/api/incidents/{outcome.incident_id}/verify").json()["valid"] is True


def test_a_redelivery_of_a_started_incident_starts_nothing(app):
    first = app.post(DEFENDER, sample("defender-alert-arm.json")).json()
    again = app.post(DEFENDER, sample("defender-alert-arm.json")).json()
    assert again["outcome"] == "duplicate"
    assert _runbooks(app) == [f"runbook-{first['incidentId']}-1"]
    assert "runbook.repaired" not in app.timeline(first["incidentId"])


def test_a_retry_after_a_failed_incident_write_records_alert_received_once(app, monkeypatch):
    from azure.core.exceptions import ServiceResponseError

    from shared.adapters.table_store import TableEvidenceStore

    real = TableEvidenceStore.create_incident
    # storage answered nothing between the first events and the incident row (the sender is told 503)
    failures = [ServiceResponseError("connection reset")]

    def flaky(self, incident):
        if failures:
            raise failures.pop()
        return real(self, incident)

    monkeypatch.setattr(TableEvidenceStore, "create_incident", flaky)
    first = app.post(DEFENDER, sample("defender-alert-arm.json"))
    assert first.status == 503, first.text
    retry = app.post(DEFENDER, sample("defender-alert-arm.json"))
    assert retry.status == 202 and retry.json()["outcome"] == "created", retry.text
    incident_id = retry.json()["incidentId"]
    timeline = app.timeline(incident_id)
    assert timeline.count("alert.received") == 1 and timeline.count("incident.triaged") == 1
    assert _runbooks(app) == [f"runbook-{incident_id}-1"]
    assert app.get(f"/api/incidents/{incident_id}/verify").json()["valid"] is True
