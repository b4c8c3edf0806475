"""The poll_log_analytics timer against the Log Analytics fake (real LogsQueryClient)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from shared.poller import STATE_NAME, LogAnalyticsPoller
from tests.functional.conftest import WORKSPACE_ID, sample

ALERT_COLUMNS = sample("log-analytics-query-response.json")["tables"][0]["columns"]
ALERT_ROW = sample("log-analytics-query-response.json")["tables"][0]["rows"][0]


def answer_by_table(alert_rows, incident_tables=None):
    """A Log Analytics handler that answers each query by the table it reads."""
    def handler(workspace, body):
        query = body["query"]
        if query.startswith("SecurityIncident"):
            return {"tables": incident_tables or [{"name": "PrimaryResult", "columns": [
                {"name": "IncidentName", "type": "string"}], "rows": []}]}
        return {"tables": [{"name": "PrimaryResult", "columns": ALERT_COLUMNS, "rows": alert_rows}]}
    return handler


def poll_queries(app):
    """The poll's own queries (the runbook's investigation queries are left out)."""
    return [q for q in app.fake.log_analytics_queries()
            if q["query"].split("\n")[0] in ("SecurityIncident", "SecurityAlert")]


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
    app.fake.set_log_analytics_tables([{"name": "PrimaryResult", "columns": ALERT_COLUMNS, "rows": [ALERT_ROW]}],
                                      partial_error="query timed out on one shard")
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

    base = datetime(2026, 11, 22, 10, 0, tzinfo=timezone.utc)
    cols = ALERT_COLUMNS + [{"name": "IngestedAt", "type": "datetime"}]
    rows = []
    for i in range(3):
        row = list(ALERT_ROW) + [(base + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")]
        row[1] = f"00000000-0000-0000-0000-00000000000{i}"
        row[9] = f"vm-{i}"
        row[13] = row[13].replace("vm-app-03", f"vm-{i}")
        row[11] = row[11].replace("vm-app-03", f"vm-{i}").replace("1a2b3c4d-5e6f", f"1a2b3c4d-{i}e6f")
        rows.append(row)
    app.fake.log_analytics_handler = lambda ws, body: {"tables": [{"name": "PrimaryResult", "columns": cols,
                                                                  "rows": [] if body["query"].startswith("SecurityIncident") else rows}]}
    ctx = app.context
    now = base + timedelta(hours=1)
    flaky = _FlakyIngest(ctx.ingest, {"00000000-0000-0000-0000-000000000001"})
    poller = LogAnalyticsPoller(ctx.store, flaky, LogAnalyticsSource(ctx.settings), ctx.settings, clock=lambda: now)
    report = poller.poll()
    assert (report.created, report.failed) == (2, 1)
    mark = datetime.fromisoformat(watermark(app))
    assert mark < base + timedelta(minutes=1)  # before the failed row
    # Next run: the store is back; the failed row is ingested, the others are duplicates.
    poller = LogAnalyticsPoller(ctx.store, ctx.ingest, LogAnalyticsSource(ctx.settings), ctx.settings, clock=lambda: now)
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
    cols = [{"name": n, "type": "string"} for n in ("IncidentName", "Title", "Severity", "AlertIds", "CreatedTime", "TenantId")]
    row = [trigger["object"]["name"], "Sign-in from an anonymous IP", "High",
           json.dumps(["a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"]), "2026-11-21T13:25:02Z", WORKSPACE_ID]
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
