"""Tenancy (issue 11): token round trips per containment in partners' tenants, and preflight time.

1. Token acquisitions per containment with a warm cache: two partners in two tenants of the fake (the
   SOC app consented by both). The first lockout in a tenant costs one token request to that tenant's
   Entra endpoint (plus, once per process, the managed identity's token for the exchange); every later
   containment in either tenant should cost none (target: 0 extra round trips after the first per tenant).
2. Per-partner preflight (``PartnerPreflight.check``: Graph token, Graph read, ARM permissions per
   subscription, each workspace), cold (first call in the process) and warm (cached credentials).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.containment import _containment_app, _pct, _post

ROOT = Path(__file__).resolve().parent.parent
T_SOC = "50c50c00-0000-4000-8000-000000000000"
SOC_APP = "50c0a990-0000-4000-8000-0000000000a9"
TENANTS = {"alpha": "a1a1a1a1-0000-4000-8000-00000000000a", "beta": "b2b2b2b2-0000-4000-8000-00000000000b"}
SUBS = {"alpha": "a1a1a1a1-1111-4000-8000-00000000000a", "beta": "b2b2b2b2-1111-4000-8000-00000000000b"}
WS = {"alpha": "a1a1a1a1-2222-4000-8000-00000000000a", "beta": "b2b2b2b2-2222-4000-8000-00000000000b"}
PER_TENANT = 10
PREFLIGHTS = 20


def _registry() -> dict:
    return {
        "partners": [
            {
                "id": pid,
                "name": pid.title(),
                "tenantId": TENANTS[pid],
                "subscriptionIds": [SUBS[pid]],
                "workspaces": [
                    {
                        "subscriptionId": SUBS[pid],
                        "resourceGroup": "rg-sec",
                        "workspaceName": f"law-{pid}",
                        "workspaceId": WS[pid],
                    }
                ],
                "responseMode": "enforce",
                "protectedIdentities": [f"breakglass@{pid}.example"],
            }
            for pid in TENANTS
        ],
        "soc": {"socAlertEmails": ["oncall@soc.example"]},
    }


def _alert(pid: str, oid: str) -> dict:
    return {
        "source": "bench",
        "id": uuid.uuid4().hex,
        "title": "Benchmark account takeover",
        "score": 9,
        "observedAt": datetime.now(UTC).isoformat(),
        "subscriptionId": SUBS[pid],
        "entities": [{"kind": "account", "objectId": oid, "upn": f"{oid[:8]}@{pid}.example"}],
    }


def main() -> None:
    from devtools.local_azure import local_azure
    from shared import runtime

    with (
        tempfile.TemporaryDirectory() as tmp,
        local_azure(
            {"RESPONSE_MODE": "enforce", "BLAST_RADIUS_MAX": "100000", "CONTAINMENT_RETRY_BACKOFF_SECONDS": "0"}
        ) as (_azurite, fake),
    ):
        registry = Path(tmp) / "partners.json"
        registry.write_text(json.dumps(_registry()))
        os.environ.update(
            {
                "PARTNERS_FILE": str(registry),
                "SOC_TENANT_ID": T_SOC,
                "SOC_APP_CLIENT_ID": SOC_APP,
                "AZURE_AUTHORITY_HOST": fake.url,
            }
        )
        runtime.reset()
        fake.soc_app_client_id = SOC_APP
        for pid, tenant in TENANTS.items():
            fake.add_tenant(tenant)
            fake.add_user(str(uuid.uuid4()), f"breakglass@{pid}.example", tenant=tenant)
            ws = f"/subscriptions/{SUBS[pid]}/resourceGroups/rg-sec/providers/Microsoft.OperationalInsights/workspaces/law-{pid}"
            fake.add_resource(ws, {"location": "eastus", "properties": {"customerId": WS[pid]}})
        fake.delegate(*SUBS.values())

        from devtools.functions_runtime import LocalFunctionsRuntime

        def tokens() -> int:  # every token round trip: Entra endpoints and the managed identity
            return len(fake.requests(api="token", include_tokens=True))

        per_containment: dict[str, list[int]] = {pid: [] for pid in TENANTS}
        first: dict[str, int] = {}
        with LocalFunctionsRuntime(_containment_app(), now=datetime.now(UTC), host_json=str(ROOT / "host.json")) as rt:
            for i in range(PER_TENANT + 1):
                for pid, tenant in TENANTS.items():
                    oid = str(uuid.uuid4())
                    fake.add_user(oid, f"{oid[:8]}@{pid}.example", tenant=tenant)
                    before = tokens()
                    _post(rt, _alert(pid, oid))
                    assert fake.get_user(oid)["accountEnabled"] is False, "not contained"
                    spent = tokens() - before
                    if i == 0:
                        first[pid] = spent
                    else:
                        per_containment[pid].append(spent)

            preflight = runtime.context().preflight
            timings: dict[str, list[float]] = {pid: [] for pid in TENANTS}
            cold: dict[str, float] = {}
            runtime.reset()  # a fresh preflight service (credentials stay cached per process)
            preflight = runtime.context().preflight
            for pid in TENANTS:
                partner = runtime.context().partners.get(pid)
                t0 = time.perf_counter()
                report = preflight.check(partner)
                cold[pid] = time.perf_counter() - t0
                assert report.ready, report.wire()
                for _ in range(PREFLIGHTS):
                    t0 = time.perf_counter()
                    preflight.check(partner)
                    timings[pid].append(time.perf_counter() - t0)

    print("   token round trips per user lockout (Entra token endpoint + managed identity):")
    for pid in TENANTS:
        warm = per_containment[pid]
        print(
            f"     {pid}: first in the tenant {first[pid]}; then {sum(warm)} in {len(warm)} containments "
            f"({sum(warm) / len(warm):.2f} per containment; target 0)"
        )
    print(f"   preflight per partner (4 checks: token, read, 1 subscription, 1 workspace), {PREFLIGHTS} runs warm:")
    for pid in TENANTS:
        t = timings[pid]
        print(
            f"     {pid}: first {cold[pid] * 1000:.0f} ms; warm p50 {_pct(t, 50) * 1000:.0f} ms, "
            f"p99 {_pct(t, 99) * 1000:.0f} ms, mean {statistics.mean(t) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
