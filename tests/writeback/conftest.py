"""Write-back tests: the functional ``app`` harness plus Sentinel incidents and Defender alerts seeded in the fake.

The sample Sentinel incident (``samples/sentinel-incident-trigger.json``) and
the sample Defender alert (``samples/defender-alert-arm.json``) belong to the
sample partner ``contoso`` (subscription 1111…, response mode ``enforce``), so
their incidents are written back. The HTTPS fake's generic ARM store plays
Sentinel (incident and comment GET/PUT, If-Match → 412) and Defender for
Cloud (alert GET; the state POSTs are routed here to change the stored
alert's status the way the service does).
"""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

import pytest

from tests.fixtures.app import APP_SETTINGS, ROOT, sample  # noqa: F401 - ROOT: the write-back tests import it from here

CONTOSO_SUB = "11111111-2222-3333-4444-555555555555"
CONTOSO_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_SUB = "99999999-8888-7777-6666-555555555555"
WORKSPACE = (
    f"/subscriptions/{CONTOSO_SUB}/resourceGroups/rg-security/providers/Microsoft.OperationalInsights/"
    "workspaces/law-soc-prod"
)
COMMENTS_TYPE = "Microsoft.SecurityInsights/incidents/comments"
EVIDENCE_BASE = APP_SETTINGS["CALLBACK_BASE_URL"]
_ACTION_TO_STATUS = {"activate": "Active", "inprogress": "InProgress", "resolve": "Resolved", "dismiss": "Dismissed"}


def sentinel_payload(
    name: str | None = None,
    *,
    severity: str = "High",
    sub: str = CONTOSO_SUB,
    alert_type: str | None = None,
    entities: list[dict] | None = None,
    event: str = "Create",
    alert_ids: list[str] | None = None,
    title: str | None = None,
    tactics: list[str] | None = None,
) -> dict[str, Any]:
    """The sample playbook trigger for a fresh Sentinel incident ``name`` (its alerts' ids fresh too)."""
    body = sample("sentinel-incident-trigger.json")
    name = name or str(uuid.uuid4())
    obj = body["object"]
    rid = (
        f"/subscriptions/{sub}/resourceGroups/rg-security/providers/Microsoft.OperationalInsights/workspaces/"
        f"law-soc-prod/providers/Microsoft.SecurityInsights/Incidents/{name}"
    )
    obj.update(id=rid, name=name)
    body["workspaceInfo"]["SubscriptionId"] = sub
    body["objectEventType"] = event
    props = obj["properties"]
    props["severity"] = severity
    if title:
        props["title"] = title
    ids = alert_ids or [str(uuid.uuid4()) for _ in props["alerts"]]
    for alert, aid in zip(props["alerts"], ids, strict=True):
        alert["properties"]["systemAlertId"] = aid
        if alert_type:
            alert["properties"]["alertType"] = alert_type
    if entities is not None:
        props["relatedEntities"] = entities
    if tactics is not None:
        props["additionalData"]["tactics"] = tactics
        for alert in props["alerts"]:
            alert["properties"]["tactics"] = tactics
    return body


JORDAN = ("8e7d6c5b-4a39-4281-b0f1-e2d3c4b5a697", "jordan.lee@contoso.example")  # the sample's account entity


def host_entity(vm_id: str) -> dict:
    return {"kind": "Host", "properties": {"hostName": vm_id.rsplit("/", 1)[-1], "azureID": vm_id}}


def ip_entity(address: str = "185.220.101.4") -> dict:
    return {"kind": "Ip", "properties": {"address": address}}


def seed_vm(fake, name: str, sub: str = CONTOSO_SUB) -> tuple[str, str]:
    """A VM with one NIC (no NSG) in East US: what P1 containment quarantines."""
    nic = f"/subscriptions/{sub}/resourceGroups/rg-prod/providers/Microsoft.Network/networkInterfaces/{name}-if"
    vm = f"/subscriptions/{sub}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/{name}"
    fake.add_nic(nic, "eastus")
    fake.add_vm(vm, "eastus", [nic])
    return vm, nic


def incident_rid(payload: dict) -> str:
    return payload["object"]["id"]


def seed_sentinel(fake, payload: dict, labels: list[dict] | None = None) -> dict:
    """Put the payload's incident into the fake's ARM store (as Sentinel holds it) and return it."""
    obj = copy.deepcopy(payload["object"])
    props = obj["properties"]
    props.pop("alerts", None)
    props.pop("relatedEntities", None)
    if labels is not None:
        props["labels"] = labels
    doc = fake.add_resource(obj["id"], {"properties": props, "type": "Microsoft.SecurityInsights/Incidents"})
    return doc


def analyst_edit(fake, rid: str, **properties: Any) -> dict:
    """An analyst changes the incident in the Sentinel portal: new values, new etag."""
    doc = fake.get_resource(rid)
    doc.pop("etag", None)
    doc["properties"].update(properties)
    return fake.add_resource(rid, {k: v for k, v in doc.items() if k not in ("id", "name")})


def update_payload(fake, base: dict, rid: str | None = None) -> dict:
    """The playbook's ``Update`` trigger for the incident as Sentinel now holds it."""
    body = copy.deepcopy(base)
    rid = rid or incident_rid(base)
    current = fake.get_resource(rid)
    body["objectEventType"] = "Update"
    props = body["object"]["properties"]
    props.update({k: v for k, v in current["properties"].items() if k not in ("provisioningState",)})
    body["object"]["etag"] = current["etag"]
    return body


def labels_of(fake, rid: str) -> list[str]:
    return [x["labelName"] for x in fake.get_resource(rid)["properties"].get("labels") or []]


def comments_of(fake, rid: str) -> list[dict]:
    prefix = rid.lower() + "/comments/"
    return [d for d in fake.resources(COMMENTS_TYPE) if d["id"].lower().startswith(prefix)]


def sentinel_writes(fake) -> list:
    return [r for r in fake.writes() if "microsoft.securityinsights" in r.path.lower()]


def defender_alert_id(name: str, sub: str = CONTOSO_SUB, location: str = "eastus", rg: str | None = "rg-prod") -> str:
    scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{rg}" if rg else "")
    return f"{scope}/providers/Microsoft.Security/locations/{location}/alerts/{name}"


def seed_defender_alert(fake, alert_id: str, status: str = "Active") -> None:
    fake.add_resource(alert_id, {"type": "Microsoft.Security/Locations/alerts", "properties": {"status": status}})


def route_alert_state(fake) -> None:
    """Defender for Cloud's state actions: POST …/alerts/{name}/{action} → 204; the stored alert's status
    changes as the service's would."""

    def handler(req, m):
        alert = req.path[: m.start(1) - 1]
        doc = fake.get_resource(alert)
        if doc is None:
            return 404, {"error": {"code": "NotFound", "message": "alert not found"}}
        doc.pop("etag", None)
        doc["properties"]["status"] = _ACTION_TO_STATUS[m.group(1).lower()]
        fake.add_resource(alert, {k: v for k, v in doc.items() if k not in ("id", "name")})
        return 204, None

    fake.route(
        "POST",
        r"/providers/Microsoft\.Security/locations/[^/]+/alerts/[^/]+/"
        r"(activate|inProgress|resolve|dismiss)$",
        handler,
    )


class WritebackHarness:
    """The app harness plus write-back helpers."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    def post_sentinel(self, payload: dict, expect: int = 202) -> dict:
        r = self.app.post("/api/incidents/sentinel", payload)
        assert r.status == expect, r.text
        return r.json()

    def incident(self, incident_id: str) -> dict:
        r = self.app.get(f"/api/incidents/{incident_id}")
        assert r.status == 200, r.text
        return r.json()

    def events(self, incident_id: str, event_type: str | None = None) -> list[dict]:
        return [e for e in self.incident(incident_id)["timeline"] if event_type is None or e["eventType"] == event_type]

    def sync(self) -> None:
        self.app.runtime.timer("writeback_sync")

    def runbook(self, incident_id: str, epoch: int = 1) -> dict:
        status = self.app.durable.status(f"runbook-{incident_id}-{epoch}")
        assert status is not None and status["runtimeStatus"] == "Completed", status
        return status["output"]


@pytest.fixture
def wb(app) -> WritebackHarness:  # ``app``: the harness fixture (tests/fixtures/app.py)
    app.fake.add_mailbox(APP_SETTINGS["MAIL_SENDER"])
    route_alert_state(app.fake)
    return WritebackHarness(app)


def strip_tags(html_text: str) -> str:
    return re.sub(r"<[^>]+>", " ", html_text)
