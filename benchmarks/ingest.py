"""Ingest: alerts/s and p50/p99 latency, request → persisted incident + timeline, on Azurite.

1,000 distinct generic alerts go through the real HTTP handler (a new incident
each). The ratio compares the per-alert time with the bare minimum the design
needs: the same four table round trips (issue 14: the entity claims and grouping
rows in one transaction, the alert claim, the timeline transaction, the incident
insert — no look-ups; docs/spec/ingest.md, "Round trips") made directly with
azure-data-tables. Before issue 14's round-trip work the design made six (an
alert-index and an entity-index look-up first).
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N = 1000


def _alert(i: int) -> dict:
    return {
        "source": "bench",
        "id": f"bench-{i}-{uuid.uuid4().hex[:8]}",
        "title": f"Benchmark alert {i}",
        "score": 5,
        "observedAt": "2026-11-22T10:00:00Z",
        "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "entities": [
            {"kind": "ip", "address": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"},
            {"kind": "host", "name": f"bench-host-{i}"},
        ],
    }


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _baseline(conn: str, n: int) -> list[float]:
    """The four round trips the design needs per new incident, made directly."""
    from azure.data.tables import TableServiceClient

    svc = TableServiceClient.from_connection_string(conn)
    tables = {}
    for name in ("BAlertIndex", "BEntityIndex", "BTimeline", "BIncidents"):
        svc.create_table_if_not_exists(name)
        tables[name] = svc.get_table_client(name)
    times = []
    doc = "x" * 2500  # about the size of an incident document
    for _i in range(n):
        key = uuid.uuid4().hex
        started = time.perf_counter()
        tables["BEntityIndex"].submit_transaction(
            [
                ("create", {"PartitionKey": "p", "RowKey": f"claim~{key}a", "incidentId": key}),
                ("create", {"PartitionKey": "p", "RowKey": f"claim~{key}b", "incidentId": key}),
                ("create", {"PartitionKey": "p", "RowKey": f"{key}a", "incidentId": key}),
                ("create", {"PartitionKey": "p", "RowKey": f"{key}b", "incidentId": key}),
            ]
        )
        tables["BAlertIndex"].create_entity({"PartitionKey": key, "RowKey": "", "incidentId": key})
        tables["BTimeline"].submit_transaction(
            [
                ("create", {"PartitionKey": key, "RowKey": "0000000001", "data0": doc[:800]}),
                ("create", {"PartitionKey": key, "RowKey": "0000000002", "data0": doc[:800]}),
                ("create", {"PartitionKey": key, "RowKey": "~head", "lastSeq": 2}),
            ]
        )
        tables["BIncidents"].create_entity({"PartitionKey": key, "RowKey": "incident", "doc0": doc})
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    from devtools.local_azure import local_azure

    with local_azure({"RESPONSE_MODE": "dry-run"}) as (azurite, _fake):
        from devtools.functions_runtime import LocalFunctionsRuntime
        from function_app import build_app

        with LocalFunctionsRuntime(
            build_app(), now=datetime.now(UTC), auto_run=False, host_json=str(ROOT / "host.json")
        ) as rt:
            for i in range(20):  # warm-up: tables, clients, imports
                rt.http("POST", "/api/alerts", body=_alert(-i - 1))
            latencies = []
            started = time.perf_counter()
            for i in range(N):
                body = json.dumps(_alert(i)).encode()
                t0 = time.perf_counter()
                resp = rt.http("POST", "/api/alerts", body=body, headers={"content-type": "application/json"})
                latencies.append(time.perf_counter() - t0)
                assert resp.status_code == 202, resp.get_body()
            wall = time.perf_counter() - started

            concurrent_n, workers = 400, 8
            bodies = [json.dumps(_alert(N + i)).encode() for i in range(concurrent_n)]
            t0 = time.perf_counter()
            with ThreadPoolExecutor(workers) as pool:
                codes = list(
                    pool.map(
                        lambda b: (
                            rt.http(
                                "POST", "/api/alerts", body=b, headers={"content-type": "application/json"}
                            ).status_code
                        ),
                        bodies,
                    )
                )
            concurrent_wall = time.perf_counter() - t0
            assert set(codes) == {202}
        baseline = _baseline(azurite.connection_string, N)

    mean, base_mean = statistics.mean(latencies), statistics.mean(baseline)
    print(f"   {N} alerts, one at a time, through POST /api/alerts → new incident + timeline on Azurite")
    print(
        f"   throughput: {N / wall:.0f} alerts/s; latency p50 {_pct(latencies, 50) * 1000:.1f} ms, "
        f"p99 {_pct(latencies, 99) * 1000:.1f} ms, mean {mean * 1000:.1f} ms"
    )
    print(f"   {concurrent_n} alerts with {workers} concurrent callers: {concurrent_n / concurrent_wall:.0f} alerts/s")
    print(
        f"   bare minimum (the 4 table round trips the design needs, made directly): mean {base_mean * 1000:.1f} ms, "
        f"p50 {_pct(baseline, 50) * 1000:.1f} ms"
    )
    print(f"   ratio ingest / bare minimum: {mean / base_mean:.2f}x (target <= 1.5x)")
