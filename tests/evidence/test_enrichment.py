"""Investigation enrichment against the Log Analytics fake (real LogsQueryClient), Azurite and the runbook."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.log_analytics import LogAnalyticsSource
from shared.enrichment import IncidentInvestigator
from shared.models import Entity, EntityKind, Priority
from tests.evidence.seed import make_incident, seed, timeline
from tests.fixtures.app import sample

UTC = UTC
EVIL_UPN = "eve'; SigninLogs | take 100000 //@contoso.example"
OBJECT_ID = "9f8e7d6c-5b4a-4392-8170-6e5d4c3b2a19"
IP = "203.0.113.77"
VAULT = (
    "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-sec/providers/"
    "Microsoft.KeyVault/vaults/kv-prod-01"
)
COLUMNS = [
    ("RowKind", "string"),
    ("Events", "long"),
    ("Failures", "long"),
    ("DistinctIPs", "long"),
    ("UnusualPairs", "long"),
    ("TimeGenerated", "datetime"),
    ("IPAddress", "string"),
    ("OperationName", "string"),
]


def _table(fake, summary, events):
    rows = [["summary", *summary, None, None, None]] + [["event", None, None, None, None, *e] for e in events]
    return fake.la_table(COLUMNS, rows)


def answer_by_source(fake):
    """Answer each query by the table it reads."""

    def handler(workspace, body):
        q = body["query"]
        if "SigninLogs" in q:
            return {
                "tables": [
                    _table(
                        fake,
                        [42, 3, 5, None],
                        [
                            ["2026-05-04T09:00:00Z", "198.51.100.1", None],
                            ["2026-05-04T08:00:00Z", "198.51.100.2", None],
                        ],
                    )
                ]
            }
        if "AuditLogs" in q:
            return {
                "tables": [_table(fake, [7, 0, None, None], [["2026-05-04T07:00:00Z", None, "Add member to role"]])]
            }
        if "AzureActivity" in q:
            return {"tables": [_table(fake, [12, 1, None, None], [])]}
        if "AzureDiagnostics" in q:
            return {"tables": [_table(fake, [120, None, None, 2], [["2026-05-04T06:00:00Z", "10.0.0.5", "SecretGet"]])]}
        return {"tables": [fake.la_table([("x", "string")], [])]}

    return handler


@pytest.fixture
def incident(app):
    inc = make_incident(
        "enrich",
        datetime.now(UTC) - timedelta(minutes=20),
        priority=Priority.P2,
        entities=[
            Entity(kind=EntityKind.ACCOUNT, upn=EVIL_UPN, object_id=OBJECT_ID),
            Entity(kind=EntityKind.IP, address=IP),
            Entity(kind=EntityKind.AZURE_RESOURCE, azure_resource_id=VAULT + "/secrets/db-password"),
            Entity(kind=EntityKind.HOST, name="vm-01"),
        ],
    )
    seed(app.store, inc, timeline(inc, 2))
    return inc


def _investigator(app, timeout=30):
    return IncidentInvestigator(app.store, LogAnalyticsSource(app.context.settings), timeout_seconds=timeout)


def _investigation(app, incident_id):
    return [e for e in app.store.list_events(incident_id) if e.event_type.startswith("investigation.")]


def test_queries_are_parameterised_and_results_summarised_into_the_timeline(app, incident):
    app.fake.log_analytics_handler = answer_by_source(app.fake)
    result = _investigator(app).investigate(incident.id, epoch=1)
    assert result["statuses"] == {"ok": 4} and result["queries"] == 4
    queries = app.fake.log_analytics_queries()
    assert len(queries) == 4
    for q in queries:
        for raw in (EVIL_UPN, OBJECT_ID, IP, "kv-prod-01"):
            assert raw not in q["query"], q["query"]
        assert q["workspace"] == app.context.settings.log_analytics_workspace_id and q["timespan"]
    signins = next(q["query"] for q in queries if "SigninLogs" in q["query"])
    assert base64.b64encode(EVIL_UPN.encode()).decode() in signins
    events = _investigation(app, incident.id)
    assert [e.event_type for e in events] == [
        "investigation.signins",
        "investigation.directory-audit",
        "investigation.ip-activity",
        "investigation.keyvault-operations",
        "investigation.completed",
    ]
    assert all(e.phase.value == "Investigate" and e.criterion == "CC7.4" for e in events)
    first = events[0]
    assert first.data["status"] == "ok" and first.data["events"] == 42 and first.data["entity"] == EVIL_UPN
    assert len(first.data["topRows"]) == 2 and first.data["topRows"][0]["IPAddress"] == "198.51.100.1"
    assert "42 event(s)" in first.summary and "3 failed" in first.summary
    assert "2 unusual caller/operation pair(s)" in events[3].summary
    assert "4 ok" in events[4].summary
    assert app.get(f"/api/incidents/{incident.id}/verify").json() == {"valid": True}


def test_partial_result_is_recorded_as_partial(app, incident):
    app.fake.set_log_analytics_tables(
        [_table(app.fake, [5, 0, 1, None], [])], partial_error="Query exceeded the result size limit"
    )
    _investigator(app).investigate(incident.id)
    events = _investigation(app, incident.id)
    assert {e.data["status"] for e in events[:-1]} == {"partial"}
    assert "PARTIAL result" in events[0].summary and "result size limit" in events[0].data["error"]
    assert events[0].data["events"] == 5


def test_errors_are_recorded_and_never_fatal(app, incident):
    app.fake.log_analytics_handler = answer_by_source(app.fake)
    app.fake.inject("POST", r"^/v1/workspaces/[^/]+/query$", 403, times=2)  # first two queries refused
    result = _investigator(app).investigate(incident.id)
    assert result["statuses"] == {"failed": 2, "ok": 2}
    events = _investigation(app, incident.id)
    assert [e.data["status"] for e in events[:4]] == ["failed", "failed", "ok", "ok"]
    assert "HTTP 403" in events[0].data["error"] and "went on without it" in events[0].summary
    assert events[-1].event_type == "investigation.completed" and "2 failed" in events[-1].summary


def test_a_slow_workspace_times_out_and_the_investigation_goes_on(app, incident):
    app.fake.log_analytics_handler = answer_by_source(app.fake)
    app.fake.inject("POST", r"^/v1/workspaces/[^/]+/query$", delay_seconds=4, times=2)
    result = _investigator(app, timeout=1).investigate(incident.id)
    events = _investigation(app, incident.id)
    assert events[0].data["status"] == "timeout" and "no answer within 1 s" in events[0].data["error"]
    assert result["statuses"].get("ok", 0) >= 2 and events[-1].event_type == "investigation.completed"


def test_a_rerun_records_nothing_twice(app, incident):
    app.fake.log_analytics_handler = answer_by_source(app.fake)
    investigator = _investigator(app)
    investigator.investigate(incident.id, epoch=1)
    app.fake.clear_log()
    again = investigator.investigate(incident.id, epoch=1)
    assert again["statuses"] == {"already-recorded": 4}
    assert app.fake.log_analytics_queries() == [] and len(_investigation(app, incident.id)) == 5
    investigator.investigate(incident.id, epoch=2)  # a new runbook epoch investigates again
    assert len(_investigation(app, incident.id)) == 10


def test_the_runbook_investigates_after_notifying(app):
    app.fake.log_analytics_handler = answer_by_source(app.fake)
    alert = sample("generic-alert.json")
    r = app.post("/api/alerts", alert)
    incident_id = r.json()["incidentId"]
    types = app.timeline(incident_id)
    assert "investigation.ip-activity" in types and types.count("investigation.completed") == 1
    assert types.index("notification.planned") < types.index("investigation.ip-activity")
    assert len(app.durable.activity_calls("investigate_incident")) == 1
    ip_queries = [q for q in app.fake.log_analytics_queries() if "AzureActivity" in q["query"]]
    assert len(ip_queries) == 2 and all("192.0.2.77" not in q["query"] for q in ip_queries)


def test_without_a_workspace_the_step_is_skipped_cleanly(app):
    app.configure(LOG_ANALYTICS_WORKSPACE_ID=None)
    r = app.post("/api/alerts", sample("generic-alert.json"))
    incident_id = r.json()["incidentId"]
    assert not [t for t in app.timeline(incident_id) if t.startswith("investigation.")]
    assert app.fake.log_analytics_queries() == []
    status = app.durable.status(f"runbook-{incident_id}-1")
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["investigation"]["skipped"] == "LOG_ANALYTICS_WORKSPACE_ID is not set"


def test_the_time_budget_bounds_the_whole_investigation(app, incident):
    """Each lookup takes 100 s on a slow workspace: after the 240 s budget the rest are recorded as not run."""
    from shared.enrichment import QueryOutcome

    class SlowWorkspace:
        now = 0.0

        def __init__(self):
            self.timeouts: list[int] = []

        def run(self, kql, start, end, timeout_seconds):
            self.timeouts.append(timeout_seconds)
            SlowWorkspace.now += 100
            return QueryOutcome("timeout", error=f"no answer within {timeout_seconds} s")

    source = SlowWorkspace()
    result = IncidentInvestigator(app.store, source, timer=lambda: SlowWorkspace.now).investigate(incident.id)
    assert result["statuses"] == {"timeout": 3, "skipped": 1}
    assert source.timeouts == [60, 60, 40]  # the last lookup only gets what is left of the budget
    events = _investigation(app, incident.id)
    assert events[3].data["status"] == "skipped" and "not run" in events[3].summary
    assert events[-1].event_type == "investigation.completed"
