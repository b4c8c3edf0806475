"""Issue 12 findings at intake: list caps (clear 400), linear de-duplication, nothing claimed for an alert that
cannot be recorded, parsing off the event loop."""

from __future__ import annotations

import asyncio
import copy
import uuid

import pytest

from shared.intake.common import MAX_ALERTS, MAX_TACTICS, dedupe
from tests.fixtures.app import sample


def _sentinel(alert_count: int = 1, name: str | None = None) -> dict:
    body = sample("sentinel-incident-trigger.json")
    obj = body["object"]
    obj["name"] = name or str(uuid.uuid4())
    obj["id"] = obj["id"].rsplit("/", 1)[0] + "/" + obj["name"]
    template = obj["properties"]["alerts"][0]
    alerts = []
    for _ in range(alert_count):
        a = copy.deepcopy(template)
        a["properties"]["systemAlertId"] = str(uuid.uuid4())
        alerts.append(a)
    obj["properties"]["alerts"] = alerts
    return body


def _claims(app) -> list[dict]:
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(app.context.settings.evidence_connection_string)
    names = [t.name for t in service.list_tables()]
    return [r for n in names if n.lower().startswith("alert") for r in service.get_table_client(n).list_entities()]


def test_a_body_with_123k_tactics_is_400_naming_the_field(app):
    body = _sentinel()
    body["object"]["properties"]["additionalData"]["tactics"] = ["X"] * 123_000  # about 600 KB: under the 1 MiB limit
    r = app.post("/api/incidents/sentinel", body)
    assert r.status == 400, r.text
    fields = [d["field"] for d in r.json()["details"]]
    assert any(f.endswith("additionalData.tactics") for f in fields), fields
    assert str(MAX_TACTICS) in r.text


@pytest.mark.parametrize(
    "where, key",
    [
        (("alerts", 0, "properties", "tactics"), "tactics"),
        (("relatedEntities",), "relatedEntities"),
        (("labels",), "labels"),
    ],
)
def test_every_list_is_capped(app, where, key):
    body = _sentinel()
    target = body["object"]["properties"]
    for step in where[:-1]:
        target = target[step]
    target[where[-1]] = [
        {"kind": "Ip", "properties": {"address": "10.0.0.1"}} if key == "relatedEntities" else "x"
    ] * 1000
    r = app.post("/api/incidents/sentinel", body)
    assert r.status == 400 and any(d["field"].endswith(key) for d in r.json()["details"]), r.text


def test_defender_entities_and_resource_identifiers_are_capped(app):
    body = sample("defender-alert-arm.json")
    body["properties"]["resourceIdentifiers"] = [{"type": "AzureResource", "azureResourceId": "/x"}] * 51
    r = app.post("/api/alerts/defender", body)
    assert r.status == 400 and any(d["field"].endswith("resourceIdentifiers") for d in r.json()["details"]), r.text
    body = sample("defender-alert-arm.json")
    body["properties"]["entities"] = [{"type": "ip", "address": "10.0.0.1"}] * 501
    r = app.post("/api/alerts/defender", body)
    assert r.status == 400 and any(d["field"].endswith("entities") for d in r.json()["details"]), r.text


def test_600_alert_ids_leave_no_claim_behind_and_the_corrected_delivery_is_recorded(app):
    """Finding: 601 alert-index claims were written, then 500, and that incident could never be recorded."""
    name = str(uuid.uuid4())
    r = app.post("/api/incidents/sentinel", _sentinel(600, name))
    assert r.status == 400 and any(d["field"].endswith("alerts") for d in r.json()["details"]), r.text
    assert _claims(app) == []
    r = app.post("/api/incidents/sentinel", _sentinel(MAX_ALERTS, name))
    assert r.status == 202 and r.json()["outcome"] == "created", r.text
    assert len(_claims(app)) == MAX_ALERTS + 1


def test_an_alert_too_large_to_record_is_refused_before_any_claim():
    from datetime import UTC, datetime

    from shared.errors import ValidationError
    from shared.ingest import ensure_recordable
    from shared.intake import sentinel
    from shared.scoring import ScoringRules, score_alert
    from tests.fixtures.app import ROOT

    alert = sentinel.parse(_sentinel(MAX_ALERTS), datetime.now(UTC))
    rules = ScoringRules.load(ROOT / "config/scoring-rules.json")
    decision = score_alert(alert, rules, None)
    ensure_recordable(alert, decision, datetime.now(UTC))  # the largest legal incident fits
    big = alert.model_copy(update={"dedupe_keys": [*alert.dedupe_keys, *(f"alert:{i}" for i in range(100))]})
    with pytest.raises(ValidationError) as err:
        ensure_recordable(big, decision, datetime.now(UTC))
    assert err.value.details[0]["field"] == "alerts"


def test_dedupe_keeps_first_seen_order_and_drops_empties():
    assert dedupe(["b", "a", None, "b", "", "c", "a"]) == ["b", "a", "c"]
    many = [str(i % 1000) for i in range(200_000)]
    assert dedupe(many) == [str(i) for i in range(1000)]


def test_parsing_runs_off_the_event_loop(app, monkeypatch):
    from shared.intake import generic

    seen = []
    real = generic.parse

    def parse(payload, now):
        try:
            asyncio.get_running_loop()
            seen.append("event loop")
        except RuntimeError:
            seen.append("worker thread")
        return real(payload, now)

    monkeypatch.setattr(generic, "parse", parse)
    assert app.post("/api/alerts", sample("generic-alert.json")).status == 202
    assert seen == ["worker thread"]
