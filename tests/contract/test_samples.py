"""SPEC section 2 and the published samples: every sample is accepted by its route with the documented answer.

``202 {"incidentId", "priority", "status"}``; the same delivery again gets the same incident id and starts
nothing twice; the partner registry sample loads as-is and resolves the samples' partner.
"""

from __future__ import annotations

import copy
import hashlib

import pytest

from .conftest import CONTRACT_SAMPLES, contract_sample

SAMPLES_FOR_ROUTES = [
    ("defender-alert-arm.json", "/api/alerts/defender"),
    ("defender-alert-connector.json", "/api/alerts/defender"),
    ("sentinel-incident-trigger.json", "/api/incidents/sentinel"),
    ("generic-alert.json", "/api/alerts"),
]
PRIORITIES = {"P1", "P2", "P3", "P4"}

# The published samples, pinned: a copy edited by mistake would make these tests check something else.
PUBLISHED_SHA256 = {
    "defender-alert-arm.json": "219653c4263af3c23c8f93752935b3042aa4ecfcb0996aa0e40c46c3480e2e9a",
    "defender-alert-connector.json": "20ab25d6b5fe2b456c70414c49362418b39a850d641c58f263ba8519efb75747",
    "generic-alert.json": "36794d52c84a2173a6f8a8b1b9161b3267fa22ea2e89a7d14a8fc81bf4ca6e16",
    "log-analytics-query-response.json": "3c26b0e786a923f7d029e7c5a300d16ff3d0a2214d0d93bcb70ebb15c3a5c4a1",
    "partners.json": "a7b494556adb6dea9a8a30c73e95e4784a164566497bc8f9f6e7ed450243c7cb",
    "sentinel-incident-trigger.json": "ef9b63ff789b305668c5acf00d2bcd6afa251299354c381d0ed6ca5be9658ff6",
}


def test_the_contract_copies_are_the_published_samples():
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in CONTRACT_SAMPLES.glob("*.json")}
    assert got == PUBLISHED_SHA256


@pytest.mark.parametrize("name, route", SAMPLES_FOR_ROUTES, ids=[s for s, _ in SAMPLES_FOR_ROUTES])
def test_each_sample_is_accepted_once_and_redelivery_is_the_same_incident(contract_app, name, route):
    app = contract_app
    r = app.post(route, contract_sample(name))
    assert r.status == 202, r.text
    body = r.json()
    assert {"incidentId", "priority", "status"} <= set(body)
    assert isinstance(body["incidentId"], str) and body["incidentId"]
    assert body["priority"] in PRIORITIES and isinstance(body["status"], str) and body["status"]
    runbooks = sorted(i for i in app.durable.instance_ids() if i.startswith("runbook-"))
    # the same alert again (a retry): same incident, nothing started twice
    again = app.post(route, contract_sample(name))
    assert again.status == 202, again.text
    assert again.json()["incidentId"] == body["incidentId"]
    assert sorted(i for i in app.durable.instance_ids() if i.startswith("runbook-")) == runbooks
    # the incident is readable, and belongs to the sample registry's partner
    doc = app.get(f"/api/incidents/{body['incidentId']}").json()
    assert doc["partnerId"] == "contoso"


def test_sample_priorities_follow_the_score_table(contract_app):
    """Section 3: an explicit score 7 is P2; a High crypto-miner (a named P1 detection) is P1."""
    app = contract_app
    assert app.post("/api/alerts", contract_sample("generic-alert.json")).json()["priority"] == "P2"
    assert app.post("/api/alerts/defender", contract_sample("defender-alert-arm.json")).json()["priority"] == "P1"


def test_bare_sentinel_incident_resource_is_the_same_incident_as_the_trigger(contract_app):
    app = contract_app
    trigger = contract_sample("sentinel-incident-trigger.json")
    a = app.post("/api/incidents/sentinel", trigger)
    b = app.post("/api/incidents/sentinel", copy.deepcopy(trigger["object"]))
    assert (a.status, b.status) == (202, 202), b.text
    assert b.json()["incidentId"] == a.json()["incidentId"]


def test_defender_alert_and_sentinel_incident_with_one_system_alert_id_are_one(contract_app):
    """Section 2: a Defender alert and a Sentinel incident carrying the same systemAlertId are one."""
    app = contract_app
    arm = contract_sample("defender-alert-arm.json")
    incident = contract_sample("sentinel-incident-trigger.json")
    incident["object"]["properties"]["alerts"][0]["properties"]["systemAlertId"] = arm["properties"]["systemAlertId"]
    a = app.post("/api/alerts/defender", arm).json()
    b = app.post("/api/incidents/sentinel", incident).json()
    assert b["incidentId"] == a["incidentId"]


def test_log_analytics_sample_is_ingested_by_the_poll(contract_app):
    """Section 2: the timer reads the query response shape of the sample (real LogsQueryClient, fake service)."""
    app = contract_app
    response = contract_sample("log-analytics-query-response.json")

    def answer(workspace, body):
        if body["query"].startswith("SecurityAlert"):
            return response
        return {
            "tables": [{"name": "PrimaryResult", "columns": [{"name": "IncidentName", "type": "string"}], "rows": []}]
        }

    app.fake.log_analytics_handler = answer
    app.runtime.timer("poll_log_analytics")
    incidents = list(app.store.iter_incidents())
    assert len(incidents) == 1 and incidents[0].partner_id == "contoso"
    app.runtime.timer("poll_log_analytics")  # the same row again: no second incident
    assert len(list(app.store.iter_incidents())) == 1


def test_partner_registry_sample_loads_as_is():
    """Section 7/10: the sample registry loads unchanged; tenantId defaults to the first of tenantIds."""
    from shared.partners import PartnerRegistry

    registry = PartnerRegistry.load(CONTRACT_SAMPLES / "partners.json")
    (contoso,) = registry.partners
    assert contoso.id == "contoso" and contoso.responseMode == "enforce"
    assert contoso.tenantId == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert contoso.owns_subscription("11111111-2222-3333-4444-555555555555")
    assert [c.phone for c in contoso.emergencyContacts] == ["+15555550100", "+15555550101"]


def test_partner_registry_with_the_section_10_additions_loads(tmp_path):
    import json

    from shared.partners import PartnerRegistry

    doc = contract_sample("partners.json")
    doc["partners"][0]["tenantId"] = "72F988BF-86F1-41AF-91AB-2D7CD011DB47"
    doc["partners"][0]["workspaces"] = [
        {
            "subscriptionId": "11111111-2222-3333-4444-555555555555",
            "resourceGroup": "rg-security",
            "workspaceName": "law-soc-prod",
            "workspaceId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        }
    ]
    path = tmp_path / "partners.json"
    path.write_text(json.dumps(doc))
    (p,) = PartnerRegistry.load(path).partners
    assert p.tenantId == "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert [w.workspaceName for w in p.workspaces] == ["law-soc-prod"]
