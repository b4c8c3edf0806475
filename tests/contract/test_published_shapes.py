"""Published Microsoft payload shapes beyond the samples: what the product accepts and answers (contract audit).

- a Sentinel alert (the alert trigger's PascalCase body; Entities / ExtendedProperties as the JSON text the
  SecurityAlert table holds) on ``/api/incidents/sentinel`` and ``/api/alerts/defender``;
- Event Grid: the subscription validation handshake and alerts delivered in its envelope (Event Grid schema
  and CloudEvents 1.0);
- ``OPERATOR_AUTH=function-key`` with a request built without a host.
"""

from __future__ import annotations

import copy
import json

from .conftest import contract_sample

SENTINEL_ALERT = {
    "SystemAlertId": "4f8a2b1c-0d3e-4a5b-9c8d-7e6f5a4b3c2d",
    "AlertDisplayName": "Brute force attack against Azure Portal",
    "AlertType": "BruteForceAzurePortal",
    "Severity": "Medium",
    "Status": "New",
    "Description": "Many failed sign-ins to the Azure portal from one address.",
    "ProviderName": "ASI Scheduled Alerts",
    "VendorName": "Microsoft",
    "ProductName": "Azure Sentinel",
    "StartTimeUtc": "2026-11-21T13:03:00Z",
    "EndTimeUtc": "2026-11-21T13:03:00Z",
    "TimeGenerated": "2026-11-21T13:04:00Z",
    "Tactics": "CredentialAccess",
    "Entities": [
        {"$id": "3", "Address": "185.220.101.4", "Type": "ip"},
        {"$id": "4", "Name": "jordan.lee", "UPNSuffix": "contoso.example", "Type": "account"},
    ],
    "ExtendedProperties": {"Query Period": "1.00:00:00", "Analytic Rule Name": "Brute force"},
    "WorkspaceId": "0f8fad5b-d9cb-469f-a165-70867728950e",
    "WorkspaceSubscriptionId": "11111111-2222-3333-4444-555555555555",
    "WorkspaceResourceGroup": "rg-security",
}


def test_a_sentinel_alert_is_accepted_by_the_sentinel_route_and_joins_its_incident(contract_app):
    app = contract_app
    r = app.post("/api/incidents/sentinel", SENTINEL_ALERT)
    assert r.status == 202, r.text
    alert = r.json()
    doc = app.get(f"/api/incidents/{alert['incidentId']}").json()
    assert doc["partnerId"] == "contoso"  # resolved from the workspace's subscription
    # the incident that carries the alert later is the same incident
    incident = contract_sample("sentinel-incident-trigger.json")
    incident["object"]["properties"]["alerts"][0]["properties"]["systemAlertId"] = SENTINEL_ALERT["SystemAlertId"]
    assert app.post("/api/incidents/sentinel", incident).json()["incidentId"] == alert["incidentId"]
    # a bad one is a 400 naming the field
    bad = app.post("/api/incidents/sentinel", {**SENTINEL_ALERT, "Severity": "Catastrophic", "SystemAlertId": "x-1"})
    assert bad.status == 400 and "Severity" in [d["field"] for d in bad.json()["details"]], bad.text


def test_entities_and_extended_properties_as_json_text(contract_app):
    app = contract_app
    body = copy.deepcopy(SENTINEL_ALERT)
    body["Entities"] = json.dumps(body["Entities"])
    body["ExtendedProperties"] = json.dumps(body["ExtendedProperties"])
    for route in ("/api/alerts/defender", "/api/incidents/sentinel"):
        r = app.post(route, body)
        assert r.status == 202, r.text
    doc = app.get(f"/api/incidents/{r.json()['incidentId']}").json()
    assert "185.220.101.4" in json.dumps(doc["alerts"]) + json.dumps(doc.get("entities", []))
    broken = {**body, "SystemAlertId": "x-2", "Entities": "[not json"}
    bad = app.post("/api/alerts/defender", broken)
    assert bad.status == 400 and "Entities" in [d["field"] for d in bad.json()["details"]], bad.text


VALIDATION = [
    {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/11111111-2222-3333-4444-555555555555",
        "subject": "",
        "data": {
            "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
            "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/soc/validate?id=x&t=y",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2026-11-21T22:12:19.4556811Z",
        "metadataVersion": "1",
        "dataVersion": "1",
    }
]


def test_event_grid_subscription_validation_on_every_ingest_route(contract_app):
    app = contract_app
    hdr = {"aeg-event-type": "SubscriptionValidation", "content-type": "application/json"}
    for route in ("/api/alerts/defender", "/api/incidents/sentinel", "/api/alerts"):
        r = app.request("POST", route, VALIDATION, headers=hdr)
        assert r.status == 200, r.text
        assert r.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert list(app.store.iter_incidents()) == []


def test_alerts_in_the_event_grid_and_cloudevents_envelopes(contract_app):
    app = contract_app
    arm = contract_sample("defender-alert-arm.json")
    event = {
        "id": "e1",
        "topic": "/subscriptions/11111111-2222-3333-4444-555555555555",
        "subject": arm["id"],
        "eventType": "Microsoft.Security.Alert",
        "eventTime": "2026-11-20T09:13:01Z",
        "data": arm,
        "dataVersion": "1",
        "metadataVersion": "1",
    }
    r = app.request(
        "POST",
        "/api/alerts/defender",
        [event],
        headers={"aeg-event-type": "Notification", "content-type": "application/json"},
    )
    assert r.status == 202, r.text
    first = r.json()
    assert first["priority"] == "P1"
    cloud = {
        "specversion": "1.0",
        "type": "Microsoft.Security.Alert",
        "source": "/subscriptions/x",
        "id": "c1",
        "data": arm,
    }
    again = app.request("POST", "/api/alerts/defender", cloud, headers={"content-type": "application/cloudevents+json"})
    assert again.status == 202 and again.json()["incidentId"] == first["incidentId"], again.text
    # a batch: one answer per event, every event validated before any is written
    generic = contract_sample("generic-alert.json")
    batch = [dict(event, id="e2", data=generic), dict(event, id="e3", data=dict(generic, id="other-1"))]
    r = app.request("POST", "/api/alerts", batch, headers={"content-type": "application/json"})
    assert r.status == 202 and len(r.json()["results"]) == 2, r.text
    before = len(list(app.store.iter_incidents()))
    bad = [dict(event, id="e4", data=dict(generic, id="new-2")), dict(event, id="e5", data={"source": "x"})]
    r = app.request("POST", "/api/alerts", bad, headers={"content-type": "application/json"})
    assert r.status == 400, r.text
    assert len(list(app.store.iter_incidents())) == before


def test_function_key_mode_answers_a_request_built_without_a_host(contract_app):
    app = contract_app
    app.configure(OPERATOR_AUTH="function-key")
    iid = app.post("/api/alerts", contract_sample("generic-alert.json")).json()["incidentId"]
    app.runtime.base_url = ""  # the request's url is "/api/incidents/…/ack"
    r = app.request("POST", f"/api/incidents/{iid}/ack", {"actor": "local.dev@soc.example"})
    assert r.status == 200, r.text
    app.runtime.base_url = "https://soc-responder.azurewebsites.net"  # a deployment left in local mode
    r = app.request("POST", f"/api/incidents/{iid}/ack", {"actor": "local.dev@soc.example"})
    assert r.status == 403, r.text


def test_cloudevents_webhook_validation_handshake(contract_app):
    app = contract_app
    for route in ("/api/alerts/defender", "/api/incidents/sentinel", "/api/alerts"):
        r = app.request("OPTIONS", route, headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
        assert r.status == 200, r.text
        got = {k.lower(): v for k, v in r.headers.items()}
        assert got["webhook-allowed-origin"] == "eventgrid.azure.net"
    r = app.request("OPTIONS", "/api/alerts", headers={"WebHook-Request-Origin": "evil\r\nSet-Cookie: x"})
    assert "webhook-allowed-origin" not in {k.lower() for k in r.headers}
    assert list(app.store.iter_incidents()) == []
