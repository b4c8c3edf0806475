"""The poll_log_analytics timer against the Log Analytics fake (real LogsQueryClient)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from shared.poller import STATE_NAME, LogAnalyticsPoller
from tests.fixtures.app import WORKSPACE_ID, sample

ALERT_COLUMNS = sample("log-analytics-query-response.json")["tables"][0]["columns"]
ALERT_ROW = sample("log-analytics-query-response.json")["tables"][0]["rows"][0]


def answer_by_table(alert_rows, incident_tables=None):
    """A Log Analytics handler that answers each query by the table it reads."""

    def handler(workspace, body):
        query = body["query"]
        if query.startswith("SecurityIncident"):
            return {
                "tables": incident_tables
                or [{"name": "PrimaryResult", "columns": [{"name": "IncidentName", "type": "string"}], "rows": []}]
            }
        return {"tables": [{"name": "PrimaryResult", "columns": ALERT_COLUMNS, "rows": alert_rows}]}

    return handler


def poll_queries(app):
    """The poll's own queries (the runbook's investigation queries are left out)."""
    return [
        q
        for q in app.fake.log_analytics_queries()
        if q["query"].split("\n")[0] in ("SecurityIncident", "SecurityAlert")
    ]


def watermark(app):
    state = app.store.get_state(STATE_NAME)
    return state[0]["watermark"] if state else None


def test_poll_ingests_rows_and_moves_the_watermark(app):
    app.fake.log_analytics_handler = answer_by_table([ALERT_ROW])
    app.runtime.timer("poll_log_analytics")
    queries = poll_queries(app)
    assert [q["query"].split("\n")[0] for q in queries] == ["SecurityIncident", "SecurityAlert"]
    assert all(q["workspace"] == WORKSPACE_ID for q in queries)
    assert "ingestion_time()" in queries[1]["query"]
    incidents = list(app.store.iter_incidents())
    assert len(incidents) == 1 and incidents[0].priority.value == "P2" and incidents[0].partner_id == "contoso"
    first_mark = watermark(app)
    assert first_mark is not None
    # The next run starts from the stored watermark and recognises the same row as a duplicate.
    app.fake.clear_log()
    app.runtime.timer("poll_log_analytics")
    q = poll_queries(app)[0]["query"]
    assert first_mark.replace("+00:00", "")[:19] in q
    assert len(list(app.store.iter_incidents())) == 1
    runbooks = [i for i in app.durable.instance_ids() if i.startswith("runbook-")]
    assert len(runbooks) == 1


def test_pushed_alert_caught_by_the_timer_is_one_incident(app):
    app.fake.log_analytics_handler = answer_by_table([ALERT_ROW])
    app.runtime.timer("poll_log_analytics")
    pushed = sample("defender-alert-connector.json")
    pushed.update(SystemAlertId=ALERT_ROW[1], AlertDisplayName="Suspicious PowerShell command line", Severity="High")
    r = app.post("/api/alerts/defender", pushed)
    assert r.json()["outcome"] == "duplicate"


def test_failed_query_does_not_move_the_watermark(app):
    app.fake.inject("POST", r"/v1/workspaces/.*/query", status=500, times=20)
    app.runtime.timer("poll_log_analytics")
    assert watermark(app) is None
    assert list(app.store.iter_incidents()) == []


def test_partial_result_does_not_move_the_watermark(app):
    app.fake.set_log_analytics_tables(
        [{"name": "PrimaryResult", "columns": ALERT_COLUMNS, "rows": [ALERT_ROW]}],
        partial_error="query timed out on one shard",
    )
    app.runtime.timer("poll_log_analytics")
    assert watermark(app) is None


class _FlakyIngest:
    """The real ingest service, failing for chosen alert ids (as a storage outage would)."""

    def __init__(self, real, failing: set[str]):
        self.real, self.failing = real, failing

    def ingest(self, alert):
        if alert.source_id in self.failing:
            raise ConnectionError("table storage unavailable")
        return self.real.ingest(alert)


def test_watermark_never_passes_a_row_that_failed(app):
    from shared.adapters.log_analytics import LogAnalyticsSource

    base = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    cols = ALERT_COLUMNS + [{"name": "IngestedAt", "type": "datetime"}]
    rows = []
    for i in range(3):
        row = list(ALERT_ROW) + [(base + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")]
        row[1] = f"00000000-0000-0000-0000-00000000000{i}"
        row[9] = f"vm-{i}"
        row[13] = row[13].replace("vm-app-03", f"vm-{i}")
        row[11] = row[11].replace("vm-app-03", f"vm-{i}").replace("1a2b3c4d-5e6f", f"1a2b3c4d-{i}e6f")
        rows.append(row)
    app.fake.log_analytics_handler = lambda ws, body: {
        "tables": [
            {
                "name": "PrimaryResult",
                "columns": cols,
                "rows": [] if body["query"].startswith("SecurityIncident") else rows,
            }
        ]
    }
    ctx = app.context
    now = base + timedelta(hours=1)
    flaky = _FlakyIngest(ctx.ingest, {"00000000-0000-0000-0000-000000000001"})
    poller = LogAnalyticsPoller(ctx.store, flaky, LogAnalyticsSource(ctx.settings), ctx.settings, clock=lambda: now)
    report = poller.poll()
    assert (report.created, report.failed) == (2, 1)
    mark = datetime.fromisoformat(watermark(app))
    assert mark < base + timedelta(minutes=1)  # before the failed row
    # Next run: the store is back; the failed row is ingested, the others are duplicates.
    poller = LogAnalyticsPoller(
        ctx.store, ctx.ingest, LogAnalyticsSource(ctx.settings), ctx.settings, clock=lambda: now
    )
    report = poller.poll()
    assert (report.created, report.failed) == (1, 0)
    assert datetime.fromisoformat(watermark(app)) == now - timedelta(minutes=2)
    assert len(list(app.store.iter_incidents())) == 3


def test_unparseable_row_is_rejected_and_does_not_block(app):
    bad = list(ALERT_ROW)
    bad[1] = None  # no SystemAlertId
    app.fake.log_analytics_handler = answer_by_table([bad, ALERT_ROW])
    app.runtime.timer("poll_log_analytics")
    assert watermark(app) is not None
    assert len(list(app.store.iter_incidents())) == 1


def test_sentinel_incident_rows_are_ingested(app):
    trigger = sample("sentinel-incident-trigger.json")
    cols = [
        {"name": n, "type": "string"}
        for n in ("IncidentName", "Title", "Severity", "AlertIds", "CreatedTime", "TenantId")
    ]
    row = [
        trigger["object"]["name"],
        "Sign-in from an anonymous IP",
        "High",
        json.dumps(["a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"]),
        "2026-11-21T13:25:02Z",
        WORKSPACE_ID,
    ]
    app.fake.log_analytics_handler = answer_by_table([], [{"name": "PrimaryResult", "columns": cols, "rows": [row]}])
    app.runtime.timer("poll_log_analytics")
    # The same incident pushed by the playbook later is recognised.
    r = app.post("/api/incidents/sentinel", trigger)
    assert r.json()["outcome"] in ("duplicate", "grouped")
    assert len(list(app.store.iter_incidents())) == 1


def test_polling_is_off_without_a_workspace(app):
    app.configure(LOG_ANALYTICS_WORKSPACE_ID=None)
    app.runtime.timer("poll_log_analytics")
    assert poll_queries(app) == []


class _TableSource:
    """A ``SecurityEventSource`` over in-memory rows that honours the window and the page size."""

    def __init__(self, tables: dict[str, list[dict]], page: int):
        self.tables, self.page = tables, page

    def query(self, kql, start, end):
        table = kql.split("\n", 1)[0]
        rows = [r for r in self.tables[table] if start < r["IngestedAt"] <= end]
        return sorted(rows, key=lambda r: r["IngestedAt"])[: self.page]


def test_a_full_page_never_lets_the_watermark_skip_rows_of_the_same_batch(app, monkeypatch):
    import shared.poller as poller_module

    monkeypatch.setattr(poller_module, "PAGE", 5)
    base = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    t1, t2, t3 = (base + timedelta(minutes=m) for m in (1, 2, 3))
    incidents = [
        {
            "IncidentName": f"00000000-0000-0000-0000-0000000000{i:02d}",
            "Title": f"incident {i}",
            "Severity": "Low",
            "IngestedAt": t1 if i < 2 else t2,
        }
        for i in range(7)
    ]  # 5 fit a page
    alert = dict(zip([c["name"] for c in ALERT_COLUMNS], ALERT_ROW, strict=True), IngestedAt=t3)
    source = _TableSource({"SecurityIncident": incidents, "SecurityAlert": [alert]}, page=5)
    ctx = app.context
    now = base + timedelta(hours=1)
    poller = LogAnalyticsPoller(ctx.store, ctx.ingest, source, ctx.settings, clock=lambda: now)
    first = poller.poll()
    assert first.created == 6  # 5 incidents + the alert
    # The incident page ended inside the t2 batch: the watermark stays below t2, not at the alert's t3.
    assert datetime.fromisoformat(watermark(app)) == t2 - timedelta(microseconds=1)
    second = poller.poll()
    assert second.created == 2  # the two t2 incidents beyond the first page
    assert len(list(app.store.iter_incidents())) == 8
    # That page was full again, all at t2: the watermark moves to t2, and the next run finishes.
    assert datetime.fromisoformat(watermark(app)) == t2
    third = poller.poll()
    assert (third.rows, third.created) == (1, 0)  # only the alert (a duplicate) is after t2
    assert datetime.fromisoformat(watermark(app)) == now - timedelta(minutes=2)
