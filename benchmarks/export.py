"""Evidence export: events/s and peak memory (tracemalloc) for 10,000 and 100,000 events, on Azurite.

200 incidents × 500 hash-chained events (100,000) are seeded over 2026 in
batch transactions of 100 rows. The export streams the range through the real
code path (``shared.export.write_export``: table scan merge-joined with the
incidents, rendered as CSV) into a sink. The 10,000-event range is the first
20 incidents; the 100,000-event range is the year. The ratio that matters:
peak memory for 100,000 / peak memory for 10,000 (flat means ≈ 1).

Seeding uses hand-built ``$batch`` requests sent through the SDK's pipeline
(SharedKey auth included): the SDK's own ``submit_transaction`` spends ~90 ms
per batch building and parsing MIME parts in Python, which would put seeding
alone past the time budget.
"""

from __future__ import annotations

import gc
import io
import json
import os
import threading
import time
import tracemalloc
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INCIDENTS, EVENTS_EACH = 200, 500
SMALL_INCIDENTS = 20  # 10,000 events
UTC = UTC
YEAR_START = datetime(2026, 1, 1, 6, tzinfo=UTC)
SPACING = timedelta(days=365) / INCIDENTS


class _Sink(io.StringIO):
    """Counts what the export writes (stands in for the HTTP body / a file); keeps none of it."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def write(self, chunk: str) -> int:
        self.bytes += len(chunk)
        return len(chunk)


def _batch_sender(table_client):
    """Send up to 100 entity inserts to one partition as one $batch transaction."""
    from azure.core.rest import HttpRequest

    base = table_client.url.split("?")[0].rstrip("/")
    account = base.rsplit("/", 1)[0] if base.endswith("/" + table_client.table_name) else base
    name = table_client.table_name

    def send(entities: list[dict]) -> None:
        b, c = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
        parts = [f"--{b}\r\nContent-Type: multipart/mixed; boundary={c}\r\n\r\n"]
        for e in entities:
            parts.append(
                f"--{c}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                f"POST {account}/{name} HTTP/1.1\r\nContent-Type: application/json\r\n"
                f"Accept: application/json;odata=minimalmetadata\r\nPrefer: return-no-content\r\n"
                f"DataServiceVersion: 3.0\r\n\r\n{json.dumps(e, ensure_ascii=False)}\r\n"
            )
        parts.append(f"--{c}--\r\n\r\n--{b}--\r\n")
        request = HttpRequest(
            "POST",
            f"{account}/$batch",
            content="".join(parts).encode("utf-8"),
            headers={
                "Content-Type": f"multipart/mixed; boundary={b}",
                "x-ms-version": "2019-02-02",
                "DataServiceVersion": "3.0",
                "MaxDataServiceVersion": "3.0;NetFx",
                "Accept": "application/json",
            },
        )
        response = table_client._client.send_request(request, stream=True)
        text = response.read().decode("utf-8", "replace")
        if response.status_code != 202 or (" 201 " not in text and " 204 " not in text):
            raise RuntimeError(f"batch refused: {response.status_code} {text[:300]}")

    return send


def seed(store, service) -> tuple[datetime, datetime]:
    """100,000 events; returns (start, end) of the 10,000-event range."""
    from shared.evidence import GENESIS_HASH, EventDraft, chain
    from shared.ingest import open_incident
    from shared.models import Alert, Phase, Priority, TriageDecision

    phases = list(Phase)
    send = _batch_sender(service.get_table_client("IncidentTimeline"))
    # Hash the next incident's chain while earlier batches are on the wire (bounded queue).
    pool, slots, pending = ThreadPoolExecutor(4), threading.BoundedSemaphore(32), []

    def submit(rows: list[dict]) -> None:
        slots.acquire()
        future = pool.submit(send, rows)
        future.add_done_callback(lambda _: slots.release())
        pending.append(future)

    for k in range(INCIDENTS):
        created = YEAR_START + SPACING * k
        alert = Alert(
            source="bench",
            source_id=str(k),
            dedupe_keys=[f"bench:{k}"],
            title=f"Benchmark incident {k}",
            observed_at=created,
        )
        decision = TriageDecision(score=5, priority=Priority.P3, rules_fired=[], rules_version="bench")
        incident = open_incident(f"INC-BENCH-{k:05d}", alert, decision, None, "UTC", created, created)
        slots.acquire()
        pending.append(
            pool.submit(store.create_incident, incident.model_copy(update={"partner_id": "contoso" if k % 2 else None}))
        )
        pending[-1].add_done_callback(lambda _: slots.release())
        drafts = [
            EventDraft(
                event_type=f"bench.{phases[i % 7].value.lower()}",
                phase=phases[i % 7],
                occurred_at=created + timedelta(minutes=i),
                summary=f'=Step {i} of incident {k}: résumé, "quoted"',
                data={"step": i, "detail": "x" * 120, "entities": [{"kind": "ip", "address": "10.0.0.1"}]},
            )
            for i in range(EVENTS_EACH)
        ]
        from shared.adapters.table_rows import event_entity

        rows = [event_entity(ev) for ev in chain(incident.id, drafts, 0, GENESIS_HASH)]
        for i in range(0, len(rows), 100):
            submit(rows[i : i + 100])
    pool.shutdown(wait=True)
    for future in pending:
        future.result()  # re-raise a refused batch
    start = YEAR_START - timedelta(hours=1)
    return start, YEAR_START + SPACING * SMALL_INCIDENTS - timedelta(hours=1)


def _export(store, query, fmt: str = "csv", trace: bool = False) -> tuple[int, float, int]:
    from shared.export import write_export

    gc.collect()
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        rows = write_export(store, query, fmt, _Sink())
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
    finally:
        if trace:
            tracemalloc.stop()
    return rows, elapsed, peak


def main() -> None:
    from devtools.azurite import Azurite

    with Azurite() as azurite:
        os.environ["EvidenceStorage"] = azurite.connection_string  # noqa: SIM112 - the app setting is named so
        from azure.data.tables import TableServiceClient

        from shared.adapters.table_store import TableEvidenceStore
        from shared.export import ExportQuery

        service = TableServiceClient.from_connection_string(azurite.connection_string)
        store = TableEvidenceStore(service)
        t0 = time.perf_counter()
        small_from, small_to = seed(store, service)
        seeding = time.perf_counter() - t0
        small = ExportQuery(occurred_from=small_from, occurred_before=small_to)
        full = ExportQuery(
            occurred_from=datetime(2026, 1, 1, tzinfo=UTC), occurred_before=datetime(2027, 1, 1, tzinfo=UTC)
        )
        _export(store, ExportQuery(incident_id="INC-BENCH-00000"))  # warm-up: imports, connections
        results = {}
        for label, query in (("10,000", small), ("100,000", full)):
            rows, secs, _ = _export(store, query)
            _, _, peak = _export(store, query, trace=True)
            results[label] = (rows, secs, peak)

    print(f"   seeded {INCIDENTS * EVENTS_EACH:,} events ({INCIDENTS} incidents) in batches of 100: {seeding:.1f} s")
    for label, (rows, secs, peak) in results.items():
        print(
            f"   {label:>7} events → CSV: {rows:,} rows in {secs:.1f} s = {rows / secs:,.0f} events/s; "
            f"peak traced memory {peak / 1024 / 1024:.1f} MiB"
        )
    small_peak, full_peak = results["10,000"][2], results["100,000"][2]
    print(
        f"   ratio peak memory 100,000 / 10,000 events: {full_peak / small_peak:.2f}x (flat: ≈ 1; 10x would be linear)"
    )
    assert results["10,000"][0] == 10_000 and results["100,000"][0] == 100_000, "row counts"


if __name__ == "__main__":
    main()
