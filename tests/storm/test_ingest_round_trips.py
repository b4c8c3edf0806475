"""Issue 14, benchmarks: ingest's round trips to the evidence store, counted on the wire.

The real azure-data-tables client against Azurite, with a raw-request hook that records every HTTP request it
sends (``devtools/table_requests.py``): a look-up that comes back, or a write that is no longer batched, fails
here. What each remaining request is for: docs/spec/ingest.md, "Round trips".
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.app import sample

GENERIC = "/api/alerts"

NEW_INCIDENT = [
    "$batch EntityIndex",  # the entity's claim and grouping row, created together (conditional)
    "POST AlertIndex",  # the alert's claim (insert-if-absent)
    "$batch IncidentTimeline",  # the first events and the chain head, one transaction
    "POST Incidents",  # the incident (create-only)
]
JOIN = [
    "$batch EntityIndex",  # the same write as a first alert's: it fails, the entity is known …
    "GET EntityIndex",  # … so its claim and grouping row are read: they name the incident
    "GET Incidents",  # the incident to merge into (open? its ETag)
    "POST AlertIndex",  # the alert's claim for it
    "PUT Incidents",  # the merge, under the ETag
    "$batch EntityIndex",  # the grouping row moved to this alert's time (the window slides)
    "GET IncidentTimeline",  # the chain head …
    "$batch IncidentTimeline",  # … and alert.grouped after it, under the head's ETag
]
REDELIVERY = [
    "$batch EntityIndex",
    "GET EntityIndex",
    "GET Incidents",  # the incident the entity names lists this alert: a redelivery (no claim needed)
    "GET IncidentTimeline",  # its events (is the alert's evidence there?) with the chain head …
    "$batch IncidentTimeline",  # … so alert.duplicate is appended without reading the head again
]


def _alert(host: str, observed: datetime | None = None) -> dict:
    body = sample("generic-alert.json")
    body.update(id=f"rt-{uuid.uuid4().hex[:12]}", score=5, title=f"Round trips on {host}")
    body["observedAt"] = (observed or datetime.now(UTC)).isoformat()
    body["entities"] = [{"kind": "networkDevice", "name": host}]
    return body


def _counted(app):
    from devtools.table_requests import counted_context
    from shared.intake import generic

    ctx, sent = counted_context()

    def ingest(body: dict):
        outcome = ctx.ingest.ingest(generic.parse(body, datetime.now(UTC)))
        return outcome, sent.take()

    ingest(_alert("fw-warm-up"))  # tables ensured, the partner's maintenance windows read once
    return ingest


def test_a_new_incident_a_join_and_a_redelivery_in_round_trips(app):
    ingest = _counted(app)
    first = _alert("fw-rt-01")
    created, trips = ingest(first)
    assert created.outcome == "created" and trips == NEW_INCIDENT

    joined, trips = ingest(_alert("fw-rt-01", datetime.now(UTC) + timedelta(seconds=5)))
    assert (joined.outcome, joined.incident_id) == ("grouped", created.incident_id) and trips == JOIN

    again, trips = ingest(first)
    assert (again.outcome, again.incident_id) == ("duplicate", created.incident_id) and trips == REDELIVERY

    assert app.timeline(created.incident_id) == [
        "alert.received",
        "incident.triaged",
        "alert.grouped",
        "alert.duplicate",
    ]
    assert app.get(f"/api/incidents/{created.incident_id}/verify").json()["valid"] is True


def test_a_join_no_newer_than_the_grouping_row_leaves_the_row_alone(app):
    """A storm's alerts carry the same time: the row read already says what the join would write."""
    ingest = _counted(app)
    observed = datetime.now(UTC)
    created, _ = ingest(_alert("fw-rt-02", observed))
    joined, trips = ingest(_alert("fw-rt-02", observed))
    assert joined.outcome == "grouped" and joined.incident_id == created.incident_id
    assert trips == [t for i, t in enumerate(JOIN) if i != 5]  # no grouping-row write


def test_a_redelivery_for_a_closed_incident_moves_no_entity_claim(app):
    """Taking an entity's claim over needs the alert to be new: a redelivery leaves the claim where it was."""
    from shared.models import IncidentStatus

    opened = app.post(GENERIC, _alert("fw-rt-03")).json()
    second = _alert("fw-rt-03")  # joins: it would open an incident of its own id if it took the claim
    assert app.post(GENERIC, second).json()["outcome"] == "grouped"
    incident, etag = app.store.get_incident(opened["incidentId"])
    app.store.replace_incident(incident.model_copy(update={"status": IncidentStatus.CLOSED}), etag)

    again = app.post(GENERIC, second).json()
    assert (again["outcome"], again["incidentId"]) == ("duplicate", opened["incidentId"])
    key, partition = incident.entities[0].grouping_key, incident.partner_id or "_soc"
    claim = app.store.read_entities(partition, [key])[key].claim
    assert claim is not None and claim.incident_id == opened["incidentId"]
    assert len(list(app.store.iter_incidents())) == 1

    # A new alert for the entity is not captured by the closed incident: it opens its own, and takes the claim.
    later = app.post(GENERIC, _alert("fw-rt-03")).json()
    assert later["outcome"] == "created" and later["incidentId"] != opened["incidentId"]
    assert app.store.read_entities(partition, [key])[key].claim.incident_id == later["incidentId"]


@pytest.mark.parametrize("write", ["write_entities", "try_claim_alert", "append_events", "create_incident"])
def test_a_delivery_that_fails_after_any_write_is_finished_by_its_retry(app, monkeypatch, write):
    """Storage fails at one of a new incident's four writes (the sender is told 503): the retry records the
    incident once — one ``alert.received``, one runbook, the chain intact, the entity's rows pointing at it."""
    from azure.core.exceptions import ServiceResponseError

    from shared.adapters.table_store import TableEvidenceStore

    real = getattr(TableEvidenceStore, write)
    failures = [ServiceResponseError("connection reset")]

    def flaky(self, *args, **kwargs):
        if failures:
            raise failures.pop()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(TableEvidenceStore, write, flaky)
    body = _alert("fw-rt-04")
    first = app.post(GENERIC, body)
    assert first.status == 503, first.text
    retry = app.post(GENERIC, body)
    assert retry.status == 202 and retry.json()["outcome"] == "created", retry.text
    incident_id = retry.json()["incidentId"]
    assert app.timeline(incident_id).count("alert.received") == 1
    assert [i for i in app.durable.instance_ids() if i.startswith("runbook-")] == [f"runbook-{incident_id}-1"]
    assert app.get(f"/api/incidents/{incident_id}/verify").json()["valid"] is True
    assert len(list(app.store.iter_incidents())) == 1
    # The next alert for the entity joins it (its claim and grouping row name it).
    later = app.post(GENERIC, _alert("fw-rt-04")).json()
    assert (later["outcome"], later["incidentId"]) == ("grouped", incident_id)
