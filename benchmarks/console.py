"""Issue 16: the console's page weight and server render time at 50 and at 5,000 incidents (Azurite).

Incidents are generic alerts ingested through the real ``IngestService`` (each about its own host, so
none group), one in ten P1/P2, the rest P3/P4. Render time is the route's own work (store reads on
Azurite + HTML), measured through ``LocalFunctionsRuntime`` with a signed-in Approver, median of 5; page
weight is the HTML body plus the one stylesheet (no script, no image, no font). The queue page reads the
light index for every incident and the documents of one page (50): the ratio that matters is queue
time at 5,000 / at 50.
"""

from __future__ import annotations

import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

SMALL, LARGE = 50, 5000


def _alert(i: int) -> dict:
    score = 9 if i % 20 == 0 else 7 if i % 10 == 5 else 5 if i % 2 else 2
    return {
        "source": "bench-edr",
        "id": f"bench-{i}-{uuid.uuid4().hex[:8]}",
        "title": f"Suspicious process tree on host-{i:05d}",
        "score": score,
        "observedAt": (datetime.now(UTC) - timedelta(minutes=i % 600)).isoformat(),
        "entities": [
            {"kind": "host", "name": f"host-{i:05d}"},
            {"kind": "ip", "address": f"10.{i // 250 % 250}.{i % 250}.7"},
        ],
    }


def _seed(ctx, start: int, stop: int) -> list[str]:
    from shared.intake import generic

    ids = []
    for i in range(start, stop):
        ids.append(ctx.ingest.ingest(generic.parse(_alert(i), datetime.now(UTC))).incident_id)
    return ids


def _measure(rt, path: str, headers: dict, runs: int = 5) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        resp = rt.http("GET", path, headers=headers)
        times.append(time.perf_counter() - started)
        assert resp.status_code == 200, (path, resp.status_code, resp.get_body()[:300])
        size = len(resp.get_body())
    return statistics.median(times), size


def main() -> None:
    from devtools.functions_runtime import LocalFunctionsRuntime
    from devtools.local_azure import local_azure
    from function_app import build_app
    from shared import runtime
    from shared.access import principal_header

    with local_azure({"OPERATOR_AUTH": "entra", "CALLBACK_BASE_URL": "https://soc-responder.example"}):
        ctx = runtime.context()
        rt = LocalFunctionsRuntime(build_app(), now=datetime.now(UTC))
        headers = {"X-MS-CLIENT-PRINCIPAL": principal_header("bench@soc.example", ["Approver"])}
        css = len(rt.http("GET", "/api/console/static/console.css", headers=headers).get_body())
        results = {}
        ids = _seed(ctx, 0, SMALL)
        started = time.perf_counter()
        for count in (SMALL, LARGE):
            if count == LARGE:
                started = time.perf_counter()
                ids += _seed(ctx, SMALL, LARGE)
                print(f"   seeded {LARGE - SMALL} more incidents in {time.perf_counter() - started:.0f} s", flush=True)
            results[count] = {
                "queue": _measure(rt, "/api/console", headers),
                "queue, P1 filter": _measure(rt, "/api/console?priority=P1", headers),
                "queue, title search": _measure(rt, "/api/console?q=host-00042", headers, runs=3),
                "incident": _measure(rt, f"/api/console/incidents/{ids[0]}", headers),
                "approve form": _measure(rt, f"/api/console/incidents/{ids[0]}/approve", headers),
            }
        rt.close()
        runtime.reset()
    print(f"   stylesheet: {css} bytes (the only other request a page makes; no script, images or fonts)")
    print(f"   {'page':22} {'50: ms':>8} {'50: KiB':>8} {'5,000: ms':>10} {'5,000: KiB':>10} {'time ratio':>10}")
    for page in results[SMALL]:
        (t_small, s_small), (t_large, s_large) = results[SMALL][page], results[LARGE][page]
        print(
            f"   {page:22} {t_small * 1000:8.1f} {s_small / 1024:8.1f} {t_large * 1000:10.1f} {s_large / 1024:10.1f} "
            f"{t_large / t_small:9.1f}x"
        )
