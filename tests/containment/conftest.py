"""Containment tests: the functional ``app`` harness plus seeding helpers for VMs, NICs and accounts.

Alerts are generic P1 alerts (explicit score 9) so each test controls its
entities exactly; subscription ``SUB`` and tenant ``TENANT`` belong to the
sample partner ``contoso`` (response mode ``enforce`` in config/partners.json),
``SOC_SUB`` belongs to no partner (the deployment's ``RESPONSE_MODE`` applies).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.app import ROOT, sample  # noqa: F401 - helpers the containment tests import from here

SUB = "11111111-2222-3333-4444-555555555555"
SOC_SUB = "99999999-8888-7777-6666-555555555555"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
QUARANTINE_RG = "rg-soc-quarantine"


def vm_id(name: str, sub: str = SUB, rg: str = "rg-prod") -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


def nic_id(name: str, sub: str = SUB, rg: str = "rg-prod") -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkInterfaces/{name}"


def nsg_id(name: str, sub: str = SUB, rg: str = "rg-prod") -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkSecurityGroups/{name}"


def quarantine_id(location: str, sub: str = SUB) -> str:
    return nsg_id(f"soc-quarantine-{location}", sub, QUARANTINE_RG)


def seed_vm(
    fake,
    name: str,
    *,
    location: str = "eastus",
    nsgs: list[str | None] | None = None,
    tags: dict[str, str] | None = None,
    sub: str = SUB,
    nic_rg: str = "rg-prod",
) -> tuple[str, list[str]]:
    """A VM with one NIC per entry of ``nsgs`` (each NIC's NSG id, or None); NSGs are seeded too.
    NIC names deliberately do not contain the VM's name: they must be found by id, not by name."""
    nsgs = [None] if nsgs is None else nsgs
    nics = []
    for i, nsg in enumerate(nsgs):
        if nsg and fake.get_resource(nsg) is None:
            fake.add_nsg(nsg, location)
        nid = nic_id(f"if-{uuid.uuid4().hex[:6]}-{i}", sub, nic_rg)
        fake.add_nic(nid, location, nsg_id=nsg)
        nics.append(nid)
    vid = vm_id(name, sub)
    fake.add_vm(vid, location, nics, tags=tags)
    return vid, nics


def host(vid: str) -> dict[str, Any]:
    return {"kind": "host", "name": vid.rsplit("/", 1)[-1], "azureResourceId": vid}


def account(upn: str | None = None, object_id: str | None = None) -> dict[str, Any]:
    return {"kind": "account", "upn": upn, "objectId": object_id, "name": (upn or object_id or "").split("@")[0]}


def service_principal(object_id: str | None = None, app_id: str | None = None, name: str = "svc") -> dict[str, Any]:
    return {"kind": "servicePrincipal", "objectId": object_id, "appId": app_id, "name": name}


def device(name: str) -> dict[str, Any]:
    return {"kind": "networkDevice", "name": name}


def p1_alert(
    *entities: dict[str, Any],
    sub: str | None = SUB,
    score: int = 9,
    alert_id: str | None = None,
    observed: datetime | None = None,
) -> dict[str, Any]:
    """A generic alert (P1 by default) about ``entities``; a fresh id unless one is given."""
    body: dict[str, Any] = {
        "source": "edr",
        "id": alert_id or uuid.uuid4().hex,
        "title": "Ransomware behaviour detected",
        "score": score,
        "observedAt": (observed or datetime.now(UTC)).isoformat(),
        "entities": list(entities),
    }
    if sub:
        body["subscriptionId"] = sub
    return body


def ingest(app, body: dict[str, Any]) -> str:
    resp = app.post("/api/alerts", body)
    assert resp.status == 202, resp.text
    return resp.json()["incidentId"]


def runbook_output(app, incident_id: str, epoch: int = 1) -> dict[str, Any]:
    status = app.durable.status(f"runbook-{incident_id}-{epoch}")
    assert status is not None, "runbook not started"
    assert status["runtimeStatus"] == "Completed", status
    return status["output"]


def containment_output(app, incident_id: str, epoch: int = 1) -> dict[str, Any]:
    return runbook_output(app, incident_id, epoch)["containment"]


def actions(app, incident_id: str) -> dict[str, dict]:
    """The incident's ContainmentActions rows by kind (the first of each kind) and by action id."""
    from shared.containment import list_actions

    out: dict[str, dict] = {}
    for row in list_actions(app.store, incident_id):
        out.setdefault(row["kind"], row)
        out[row["actionId"]] = row
    return out


def containment_writes(fake) -> list[tuple[str, str]]:
    """ARM and Graph requests that change something, except the notify step's sendMail."""
    return [
        (r.method, r.path)
        for r in fake.writes()
        if r.api in ("arm", "graph") and not r.path.lower().endswith("/sendmail")
    ]


def advance(app, seconds: float, times: int = 1) -> None:
    """Move the durable clock (retry timers fire), a step at a time."""
    for _ in range(times):
        app.durable.advance(timedelta(seconds=seconds))


@pytest.fixture
def enforce(app):
    """Deployment in enforce mode, SDK retries without backoff (tests are not timed)."""
    app.configure(RESPONSE_MODE="enforce", CONTAINMENT_RETRY_BACKOFF_SECONDS="0")
    return app


@pytest.fixture
def partner_mode(app, tmp_path: Path):
    """``partner_mode("approve", protected=[...])``: the sample partner with another response mode."""

    def configure(mode: str | None, protected: list[str] | None = None) -> Path:
        registry = json.loads((ROOT / "config/partners.json").read_text())
        partner = registry["partners"][0]
        if mode is None:
            partner.pop("responseMode", None)
        else:
            partner["responseMode"] = mode
        if protected is not None:
            partner["protectedIdentities"] = protected
        path = tmp_path / f"partners-{mode}.json"
        path.write_text(json.dumps(registry))
        app.configure(PARTNERS_FILE=str(path), CONTAINMENT_RETRY_BACKOFF_SECONDS="0")
        return path

    return configure
