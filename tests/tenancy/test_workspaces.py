"""Partners' own Sentinel workspaces (issue 11): the timer polls each with its own watermark, rows resolve
to their partner, and the investigation queries the partner's workspace."""

from __future__ import annotations

import copy

from shared.workspace_poll import watermark_name
from tests.fixtures.app import WORKSPACE_ID, sample

from .conftest import S_ALPHA, W_ALPHA

TABLE = sample("log-analytics-query-response.json")["tables"][0]
COLUMNS = [c["name"] for c in TABLE["columns"]]


def _alpha_row() -> list:
    row = copy.deepcopy(TABLE["rows"][0])
    row[COLUMNS.index("TenantId")] = W_ALPHA  # in Log Analytics, TenantId is the workspace id
    rid = COLUMNS.index("ResourceId")
    if row[rid]:
        parts = row[rid].split("/")
        parts[2] = S_ALPHA
        row[rid] = "/".join(parts)
    return row


def _handler(rows_by_workspace):
    def handler(workspace, body):
        query = body["query"]
        if query.startswith("SecurityAlert"):
            rows = rows_by_workspace.get(workspace.lower(), [])
            return {"tables": [{"name": "PrimaryResult", "columns": TABLE["columns"], "rows": rows}]}
        if query.startswith("SecurityIncident"):
            columns = [{"name": "IncidentName", "type": "string"}]
            return {"tables": [{"name": "PrimaryResult", "columns": columns, "rows": []}]}
        return {"tables": [{"name": "PrimaryResult", "columns": [{"name": "x", "type": "string"}], "rows": []}]}

    return handler


def test_partner_workspace_is_polled_with_its_own_watermark(tenancy):
    app = tenancy.app
    app.fake.log_analytics_handler = _handler({W_ALPHA: [_alpha_row()]})

    app.runtime.timer("poll_partner_workspaces")

    polled = {q["workspace"].lower() for q in app.fake.log_analytics_queries() if q["query"].startswith("Security")}
    assert W_ALPHA in polled and WORKSPACE_ID not in polled  # the SOC-wide one has its own timer
    [incident] = list(app.store.iter_incidents())
    assert incident.partner_id == "alpha"
    state = app.store.get_state(watermark_name(W_ALPHA))
    assert state is not None and state[0]["lastRun"]["created"] == 1
    assert app.store.get_state("log-analytics-watermark") is None  # the SOC-wide watermark is untouched
    # The runbook's investigation ran in alpha's workspace, not the SOC-wide one.
    investigation = [q for q in app.fake.log_analytics_queries() if not q["query"].startswith("Security")]
    assert investigation and {q["workspace"].lower() for q in investigation} == {W_ALPHA}

    app.fake.clear_log()
    app.runtime.timer("poll_partner_workspaces")  # again: the same row is a duplicate, no second incident
    assert len(list(app.store.iter_incidents())) == 1


def test_a_failing_workspace_does_not_stop_the_soc_wide_poll(tenancy):
    app = tenancy.app
    app.fake.inject("POST", rf"^/v1/workspaces/{W_ALPHA}/query$", 403, times=10)
    app.fake.log_analytics_handler = _handler({})
    app.runtime.timer("poll_partner_workspaces")
    assert app.store.get_state(watermark_name(W_ALPHA)) is None  # not moved past what was never read
    app.runtime.timer("poll_log_analytics")
    assert app.store.get_state("log-analytics-watermark") is not None


def test_polled_partner_incident_carries_its_arm_id_for_the_write_back(tenancy):
    app = tenancy.app
    incident_columns = [
        {"name": n, "type": "string"} for n in ("IncidentName", "Title", "Severity", "Status", "TenantId", "IngestedAt")
    ]
    name = "5e1f0c2a-0000-4000-8000-0000000000aa"
    row = [name, "Suspicious sign-ins", "Medium", "New", W_ALPHA, "2026-01-01T00:00:00Z"]

    def handler(workspace, body):
        if body["query"].startswith("SecurityIncident") and workspace.lower() == W_ALPHA:
            return {"tables": [{"name": "PrimaryResult", "columns": incident_columns, "rows": [row]}]}
        return {"tables": [{"name": "PrimaryResult", "columns": TABLE["columns"], "rows": []}]}

    app.fake.log_analytics_handler = handler
    app.runtime.timer("poll_partner_workspaces")

    [incident] = list(app.store.iter_incidents())
    assert incident.partner_id == "alpha"
    expected = (
        f"/subscriptions/{S_ALPHA}/resourceGroups/rg-sec/providers/Microsoft.OperationalInsights/"
        f"workspaces/law-alpha/providers/Microsoft.SecurityInsights/incidents/{name}"
    )
    assert expected in repr([e.data for e in app.store.list_events(incident.id)])
