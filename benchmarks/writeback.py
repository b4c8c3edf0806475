"""Write-back to Sentinel: round trips per projection against the API minimum, latency, and the idle sync pass.

1. Requests per projection of one incident into its Sentinel incident, counted
   on the HTTPS fake (tokens excluded), real ARM pipeline client:
   - first write-back (labels + status + the comment). Minimum an ETag-safe
     client needs: 3 (GET the incident for its etag, PUT it, PUT the comment).
     We add one GET of the comment list before our first comment only (is it
     there already after a crash? is the incident at Sentinel's 100 comments?);
   - after a priority change (severity, labels, comment): minimum 3;
   - nothing changed on our side (every later timer pass, every echo of our own
     write): minimum 0.
2. Latency of those projections (Azurite evidence, fake Sentinel), and of a
   ``writeback_sync`` pass over N incidents none of which changed (the cost of
   the every-minute timer on a quiet day).
3. The comment renderer on a large incident (150 alerts, 200 actions, 400
   notification rows): time per render and size against the 30,000 limit.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
N = 60
SUB = "11111111-2222-3333-4444-555555555555"  # the sample partner (enforce mode)


def _pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _payload() -> dict:
    body = json.loads((ROOT / "samples/sentinel-incident-trigger.json").read_text())
    name = str(uuid.uuid4())
    obj = body["object"]
    obj["id"] = obj["id"].rsplit("/", 1)[0] + f"/{name}"
    obj["name"] = name
    props = obj["properties"]
    props.update(severity="Medium", relatedEntities=[])
    props["additionalData"]["tactics"] = []
    for alert in props["alerts"]:
        alert["properties"].update(systemAlertId=str(uuid.uuid4()), tactics=[])
    return body


def _seed(fake, payload: dict) -> None:
    obj = copy.deepcopy(payload["object"])
    for key in ("alerts", "relatedEntities"):
        obj["properties"].pop(key, None)
    fake.add_resource(obj["id"], {"properties": obj["properties"]})


def _sentinel_requests(fake) -> list:
    return [r for r in fake.requests(api="arm") if "securityinsights" in r.path.lower()]


T = TypeVar("T")


def _timed(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def _render_figures() -> tuple[float, int]:
    from shared.models import (
        AlertSummary,
        Entity,
        EntityKind,
        Incident,
        IncidentStatus,
        Priority,
        RuleHit,
        SlaClocks,
        TriageDecision,
    )
    from shared.writeback.comment import CommentView, render_comment

    t0 = datetime(2026, 11, 21, tzinfo=UTC)
    alerts = [
        AlertSummary(
            key=f"k{i}",
            source="generic",
            source_id=str(i),
            title=f"Beacon #{i} " + "x" * 200,
            severity="High",
            score=8,
            priority=Priority.P1,
            observed_at=t0,
            received_at=t0,
        )
        for i in range(150)
    ]
    incident = Incident(
        id="INC-bench",
        partner_id=None,
        title="t",
        priority=Priority.P1,
        score=10,
        status=IncidentStatus.CONTAINED,
        created_at=t0,
        updated_at=t0,
        first_seen_at=t0,
        last_seen_at=t0,
        alerts=alerts,
        alert_count=150,
        entities=[Entity(kind=EntityKind.HOST, name="vm")],
        triage=TriageDecision(
            score=10,
            priority=Priority.P1,
            rules_version="v",
            rules_fired=[
                RuleHit(rule_id=f"r{i}", description="d" * 100, effect="+1", score_after=10) for i in range(12)
            ],
        ),
        sla=SlaClocks(received_at=t0, triaged_at=t0, triage_due=t0, first_response_due=t0, response_sla_due=t0),
    )
    view = CommentView(
        incident=incident,
        evidence_url="https://soc.example/api/incidents/INC-bench",
        actions=[
            {"result": f"vm-{i} isolated: quarantine NSG attached to 2 of 2 NIC(s)", "status": "contained"}
            for i in range(200)
        ],
        notifications=[
            {
                "channel": "call",
                "contactName": "Dana",
                "recipient": "+15555550100",
                "attempt": i,
                "status": "no-answer",
                "placedAt": f"2026-11-21T{i % 24:02d}:00Z",
            }
            for i in range(400)
        ],
    )
    runs = 50
    started = time.perf_counter()
    for _ in range(runs):
        text = render_comment(view)
    return (time.perf_counter() - started) / runs, len(text)


def main() -> None:
    from devtools.local_azure import local_azure

    with local_azure(
        {
            "RESPONSE_MODE": "enforce",
            "WRITEBACK_TARGETS": "sentinel",
            "CALLBACK_BASE_URL": "https://soc-responder.example",
        }
    ) as (_azurite, fake):
        from shared import runtime
        from shared.intake import sentinel
        from shared.models import Priority
        from shared.notify.priority import change_priority

        ctx = runtime.context()
        incidents = []
        for _ in range(N + 1):
            payload = _payload()
            _seed(fake, payload)
            incidents.append(ctx.ingest.ingest(sentinel.parse(payload, datetime.now(UTC))).incident_id)
        warm = incidents.pop()
        ctx.writeback.write_back(warm)  # tables, token, client, imports

        fake.clear_log()
        first = [_timed(ctx.writeback.write_back, iid)[0] for iid in incidents]
        first_requests = len(_sentinel_requests(fake)) / N

        fake.clear_log()
        idle = [_timed(ctx.writeback.write_back, iid, "timer")[0] for iid in incidents]
        idle_requests = len(_sentinel_requests(fake)) / N

        for iid in incidents:
            change_priority(ctx.store, ctx.partners, iid, Priority.P2, "bench@soc.example", "benchmark")
        fake.clear_log()
        changed = [_timed(ctx.writeback.write_back, iid, "timer")[0] for iid in incidents]
        changed_requests = len(_sentinel_requests(fake)) / N

        adapter = ctx.writeback.sentinel  # the service's own adapter, warmed up
        sample_id = fake.resources("Microsoft.SecurityInsights/incidents")[0]["id"]
        one = min(_timed(adapter.get_incident, sample_id)[0] for _ in range(10))

        ctx.writeback.sync()  # records every incident's mark
        fake.clear_log()
        now = datetime.now(UTC) + timedelta(seconds=1)
        sync_seconds, report = _timed(ctx.writeback.sync, now)
        sync_requests = len(_sentinel_requests(fake))
        runtime.reset()

    render_seconds, render_chars = _render_figures()
    print("   Sentinel round trips per projection (ARM, tokens excluded), real ARM pipeline client → HTTPS fake:")
    print(
        f"     first write-back (status, labels, comment): {first_requests:.1f} "
        f"(minimum for an ETag-safe client: 3; ratio {first_requests / 3:.2f}x)"
    )
    print(
        f"     after a priority change (severity, labels, comment): {changed_requests:.1f} "
        f"(minimum 3; ratio {changed_requests / 3:.2f}x)"
    )
    print(f"     nothing changed on our side (timer passes, echoes of our own writes): {idle_requests:.1f} (minimum 0)")
    print(
        f"   latency per projection over {N} incidents (Azurite evidence + fake Sentinel; one ARM round trip to the "
        f"loopback fake alone takes {one * 1000:.0f} ms):"
    )
    for label, values in (("first write-back", first), ("after a change", changed), ("nothing to do", idle)):
        print(
            f"     {label:17} p50 {_pct(values, 50) * 1000:6.1f} ms, p99 {_pct(values, 99) * 1000:6.1f} ms, "
            f"mean {statistics.mean(values) * 1000:6.1f} ms"
        )
    print(f"     nothing-to-do / first write-back (p50): {_pct(idle, 50) / _pct(first, 50):.2f}x")
    print(
        f"   writeback_sync pass over {report['checked']} incidents, none changed: {sync_seconds * 1000:.0f} ms "
        f"({sync_seconds * 1000 / max(1, report['checked']):.1f} ms per incident), {sync_requests} Sentinel requests"
    )
    print(
        f"   comment for 150 alerts / 200 actions / 400 notification rows: {render_chars} characters "
        f"({render_chars / 30_000:.0%} of Sentinel's 30,000), {render_seconds * 1000:.2f} ms per render"
    )


if __name__ == "__main__":
    main()
