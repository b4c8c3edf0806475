"""Tenancy tests (issue 11): two partners in two tenants of the fake, the SOC app consented by both.

Partner ``alpha`` (tenant ``T_ALPHA``, subscription ``S_ALPHA``, a Sentinel workspace) and partner ``beta``
(tenant ``T_BETA``, subscription ``S_BETA``), both in enforce mode; the SOC's own tenant is ``T_SOC``.
``SOC_APP_CLIENT_ID`` is set, so Graph in a partner's tenant uses that tenant's token; the fake's Entra
token endpoint (``AZURE_AUTHORITY_HOST``) issues it for a consented tenant only.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

T_SOC = "50c50c00-0000-4000-8000-000000000000"
T_ALPHA = "a1a1a1a1-0000-4000-8000-00000000000a"
T_BETA = "b2b2b2b2-0000-4000-8000-00000000000b"
S_ALPHA = "a1a1a1a1-1111-4000-8000-00000000000a"
S_BETA = "b2b2b2b2-1111-4000-8000-00000000000b"
S_NOBODY = "0d0d0d0d-1111-4000-8000-00000000000d"
W_ALPHA = "a1a1a1a1-2222-4000-8000-00000000000a"
SOC_APP = "50c0a990-0000-4000-8000-0000000000a9"
ANALYST = "ana.lyst@soc.example"


def registry(alpha_mode: str = "enforce", beta_mode: str = "enforce", **alpha_extra: Any) -> dict[str, Any]:
    return {
        "partners": [
            {
                "id": "alpha",
                "name": "Alpha Corp",
                "tenantId": T_ALPHA,
                "subscriptionIds": [S_ALPHA],
                "workspaces": [
                    {
                        "subscriptionId": S_ALPHA,
                        "resourceGroup": "rg-sec",
                        "workspaceName": "law-alpha",
                        "workspaceId": W_ALPHA,
                    }
                ],
                "socAlertEmails": ["soc@alpha.example"],
                "responseMode": alpha_mode,
                "protectedIdentities": ["breakglass@alpha.example"],
                **alpha_extra,
            },
            {
                "id": "beta",
                "name": "Beta Ltd",
                "tenantIds": [T_BETA],
                "subscriptionIds": [S_BETA],
                "socAlertEmails": ["soc@beta.example"],
                "responseMode": beta_mode,
            },
        ],
        "soc": {"name": "SOC", "socAlertEmails": ["oncall@soc.example"]},
    }


@pytest.fixture
def tenancy(app, tmp_path: Path):
    """The app as a managed SOC of ``alpha`` and ``beta``; ``tenancy(alpha_mode=..., beta_mode=...)`` rewrites
    the registry. Both tenants consented; every subscription delegated."""
    fake = app.fake
    fake.soc_app_client_id = SOC_APP
    fake.add_tenant(T_ALPHA)
    fake.add_tenant(T_BETA)
    fake.delegate(S_ALPHA, S_BETA)
    fake.add_mailbox("soc-responder@soc.example")

    def configure(**kwargs: Any):
        path = tmp_path / f"partners-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(registry(**kwargs)))
        app.configure(
            PARTNERS_FILE=str(path),
            SOC_TENANT_ID=T_SOC,
            SOC_APP_CLIENT_ID=SOC_APP,
            AZURE_AUTHORITY_HOST=fake.url,
            CONTAINMENT_RETRY_BACKOFF_SECONDS="0",
        )
        return app

    configure()
    configure.app = app  # type: ignore[attr-defined]
    return configure


def vm(fake, name: str, sub: str) -> str:
    """A VM with one NIC in ``sub`` (eastus)."""
    nic = f"/subscriptions/{sub}/resourceGroups/rg-prod/providers/Microsoft.Network/networkInterfaces/if-{uuid.uuid4().hex[:6]}"
    fake.add_nic(nic, "eastus")
    vid = f"/subscriptions/{sub}/resourceGroups/rg-prod/providers/Microsoft.Compute/virtualMachines/{name}"
    fake.add_vm(vid, "eastus", [nic])
    return vid


def p1(*entities: dict[str, Any], sub: str | None = None, tenant: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": "edr",
        "id": uuid.uuid4().hex,
        "title": "Ransomware behaviour detected",
        "score": 9,
        "observedAt": datetime.now(UTC).isoformat(),
        "entities": list(entities),
    }
    if sub:
        body["subscriptionId"] = sub
    if tenant:
        body["tenantId"] = tenant
    return body


def host(vid: str) -> dict[str, Any]:
    return {"kind": "host", "name": vid.rsplit("/", 1)[-1], "azureResourceId": vid}


def user(object_id: str, upn: str) -> dict[str, Any]:
    return {"kind": "account", "objectId": object_id, "upn": upn, "name": upn.split("@")[0]}


def ingest(app, body: dict[str, Any]) -> str:
    resp = app.post("/api/alerts", body)
    assert resp.status == 202, resp.text
    return resp.json()["incidentId"]


def rows(app, incident_id: str) -> dict[str, dict]:
    from shared.containment import list_actions

    return {row["kind"]: row for row in list_actions(app.store, incident_id)}


def graph_writes(fake) -> list:
    return [r for r in fake.writes(api="graph") if not r.path.lower().endswith("/sendmail")]
