"""Bad input: a clear 4xx naming the field, never a 500, nothing half-written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.store import TABLES
from tests.fixtures.app import sample

ROUTES = ["/api/alerts/defender", "/api/incidents/sentinel", "/api/alerts"]
JSON = {"content-type": "application/json"}


def row_counts(app) -> dict[str, int]:
    from azure.data.tables import TableServiceClient

    svc = TableServiceClient.from_connection_string(app.context.settings.evidence_connection_string)
    existing = {t.name for t in svc.list_tables()}
    return {
        t: sum(1 for _ in svc.get_table_client(t).list_entities(select=["RowKey"])) if t in existing else 0
        for t in TABLES
    }


def _deep(n: int) -> bytes:
    return ("[" * n + "]" * n).encode()


BAD_BODIES = [
    ("malformed JSON", b'{"properties": ', JSON, 400, "body"),
    ("not UTF-8", b'{"a": "\xff\xfe"}', JSON, 400, "body"),
    ("empty body", b"", JSON, 400, "body"),
    ("JSON array", b"[1,2,3]", JSON, 400, "body"),
    ("JSON string", b'"alert"', JSON, 400, "body"),
    ("null", b"null", JSON, 400, "body"),
    ("deeply nested", _deep(100_000), JSON, 400, "body"),
    ("2 MiB body", b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}', JSON, 413, "body"),
    ("text/plain", b"{}", {"content-type": "text/plain"}, 415, "content-type"),
    ("no content type", b"{}", {}, 415, "content-type"),
    ("form", b"a=b", {"content-type": "application/x-www-form-urlencoded"}, 415, "content-type"),
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name, body, headers, status, field", BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_bodies(app, route, name, body, headers, status, field):
    before = row_counts(app)
    r = app.request("POST", route, body, headers=headers)
    assert r.status == status, r.text
    doc = r.json()
    assert set(doc) == {"error", "details"} and doc["error"]
    assert field in [d["field"] for d in doc["details"]]
    assert row_counts(app) == before


def _defender():
    return sample("defender-alert-arm.json")


FIELD_CASES = [
    ("/api/alerts/defender", lambda d: d["properties"].pop("severity"), "properties.severity"),
    (
        "/api/alerts/defender",
        lambda d: d["properties"].__setitem__("alertDisplayName", 42),
        "properties.alertDisplayName",
    ),
    ("/api/alerts/defender", lambda d: d["properties"].__setitem__("entities", {"a": 1}), "properties.entities"),
    (
        "/api/alerts/defender",
        lambda d: d.__setitem__("properties", {"severity": "High"}),
        "properties.alertDisplayName",
    ),
    ("/api/incidents/sentinel", lambda d: d["object"]["properties"].pop("title"), "object.properties.title"),
    (
        "/api/incidents/sentinel",
        lambda d: d["object"]["properties"].__setitem__("severity", "Nuclear"),
        "object.properties.severity",
    ),
    ("/api/incidents/sentinel", lambda d: d["object"].__setitem__("name", None), "object.name"),
    ("/api/alerts", lambda d: d.__setitem__("score", "high"), "score"),
    ("/api/alerts", lambda d: d.__setitem__("score", 0), "score"),
    ("/api/alerts", lambda d: d.pop("observedAt"), "observedAt"),
    ("/api/alerts", lambda d: d.__setitem__("entities", [{"kind": "ip", "address": 5}]), "entities.0.address"),
]


@pytest.mark.parametrize("route, mutate, field", FIELD_CASES)
def test_wrong_types_and_missing_fields_are_named(app, route, mutate, field):
    name = {
        "/api/alerts/defender": "defender-alert-arm.json",
        "/api/incidents/sentinel": "sentinel-incident-trigger.json",
        "/api/alerts": "generic-alert.json",
    }[route]
    body = sample(name)
    mutate(body)
    before = row_counts(app)
    r = app.post(route, body)
    assert r.status == 400, r.text
    assert field in [d["field"] for d in r.json()["details"]]
    assert row_counts(app) == before


def test_unicode_and_control_characters_are_accepted_and_stored_safely(app):
    body = sample("generic-alert.json")
    body["title"] = "Ünïcödé 💥 \u202e\x00\x1b[31m alert"
    body["entities"].append({"kind": "account", "upn": "jörg@exämple.test"})
    r = app.post("/api/alerts", body)
    assert r.status == 202, r.text
    doc = app.get(f"/api/incidents/{r.json()['incidentId']}").json()
    assert "\x00" not in doc["title"] and "\x1b" not in doc["title"] and "💥" in doc["title"]
    assert app.get(f"/api/incidents/{r.json()['incidentId']}/verify").json()["valid"]


def test_stale_claim_without_incident_is_recovered(app):
    """A delivery that claimed the alert and died before writing the incident is finished by the next one."""
    from shared.intake import defender

    alert = defender.parse(_defender(), datetime.now(UTC))
    from shared.models import incident_id_for

    iid = incident_id_for(alert.primary_key, alert.observed_at)
    app.store.claim_alert(alert.primary_key, iid, datetime.now(UTC) - timedelta(minutes=10))
    r = app.post("/api/alerts/defender", _defender())
    assert r.status == 202 and r.json()["incidentId"] == iid and r.json()["outcome"] == "created"
    assert app.timeline(iid)[:2] == ["alert.received", "incident.triaged"]


def test_retry_after_a_failed_first_delivery_is_not_answered_duplicate(app):
    """The first delivery claimed the alert and failed (503); its sender's retry a moment later must
    produce the incident, not a 202 "duplicate" for an incident that does not exist."""
    from shared.intake import defender
    from shared.models import incident_id_for

    alert = defender.parse(_defender(), datetime.now(UTC))
    iid = incident_id_for(alert.primary_key, alert.observed_at)
    app.store.claim_alert(alert.primary_key, iid, datetime.now(UTC))  # fresh claim, no incident
    r = app.post("/api/alerts/defender", _defender())
    assert r.status == 202 and r.json()["incidentId"] == iid and r.json()["outcome"] == "created"
    assert app.get(f"/api/incidents/{iid}").status == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)


def _mutations(base: dict):
    """Strategies that keep a sample's shape but break its values."""
    keys = list(base)
    return st.builds(lambda k, v: {**base, k: v}, st.sampled_from(keys), json_values)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_every_route_never_500_and_rejections_write_nothing(app, data):
    route = data.draw(st.sampled_from(ROUTES))
    base = {
        "/api/alerts/defender": sample("defender-alert-arm.json")["properties"] | {},
        "/api/incidents/sentinel": sample("sentinel-incident-trigger.json")["object"]["properties"],
        "/api/alerts": sample("generic-alert.json"),
    }[route]
    body = data.draw(st.one_of(json_values, _mutations(base)))
    if route == "/api/alerts/defender" and isinstance(body, dict) and data.draw(st.booleans()):
        body = {"id": "x", "name": "fuzz", "properties": body}
    if route == "/api/incidents/sentinel" and isinstance(body, dict) and data.draw(st.booleans()):
        body = {"object": {"name": "fuzz-incident", "properties": body}}
    before = row_counts(app)
    r = app.request("POST", route, json.dumps(body).encode(), headers=JSON)
    assert r.status in (202, 400), r.text
    if r.status == 400:
        assert row_counts(app) == before
        assert r.json()["details"]
