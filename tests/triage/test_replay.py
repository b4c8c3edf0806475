"""What-if replay (issue 13): past Log Analytics rows through the current rules, nothing written."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.errors import ValidationError
from shared.triage.whatif import parse_window

CONTOSO = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-8888-7777-6666-555555555555"
WS = "0f8fad5b-d9cb-469f-a165-70867728950e"
ALERT_COLUMNS = [
    "TimeGenerated", "SystemAlertId", "AlertName", "DisplayName", "AlertSeverity", "Description", "ProviderName",
    "ProductName", "AlertType", "CompromisedEntity", "Tactics", "Techniques", "Entities", "ExtendedProperties",
    "ResourceId", "TenantId", "VendorOriginalId", "AlertLink", "Status",
]  # fmt: skip
INCIDENT_COLUMNS = [
    "TimeGenerated", "IncidentName", "IncidentNumber", "Title", "Description", "Severity", "Status", "Classification",
    "AlertIds", "AdditionalData", "FirstActivityTime", "CreatedTime", "IncidentUrl", "TenantId",
]  # fmt: skip
START = datetime(2026, 11, 1, tzinfo=UTC)


def alert_row(i: int, kind: str, sub: str = CONTOSO) -> list:
    vm = f"/subscriptions/{sub}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-{i:03d}"
    alert_type, name, severity, tactics = {
        "miner": ("VM_CurrencyMining", "Digital currency mining", "High", "Impact"),
        "brute": ("VM_SshBruteForceFailed", "Failed SSH brute force", "Medium", "PreAttack"),
        "info": ("AppServices_Nmap", "NMap scanning detected", "Informational", "PreAttack"),
        "storage": ("Storage.Blob_AnonymousAccessAnomaly", "Anonymous access", "Low", "Exfiltration"),
    }[kind]
    entities = [{"$id": "1", "HostName": f"vm-{i:03d}", "AzureID": vm, "Type": "host"}]
    when = (START + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
    return [
        when, f"alert-{kind}-{i}", name, name, severity, "", "Azure Security Center", "Azure Security Center",
        alert_type, f"vm-{i:03d}", tactics, "", json.dumps(entities), "{}", vm, WS, "", "", "New",
    ]  # fmt: skip


def incident_row(i: int, status: str, classification: str, alert_ids: list[str]) -> list:
    when = (START + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
    return [
        when, f"inc-{i}", i, f"Incident {i}", "", "High", status, classification, json.dumps(alert_ids),
        json.dumps({"tactics": ["Impact"]}), when, when, "", WS,
    ]  # fmt: skip


ALERTS = (
    [alert_row(i, "miner") for i in range(60)]
    + [alert_row(i, "miner", OTHER) for i in range(60, 100)]
    + [alert_row(i, "brute") for i in range(100, 200)]
    + [alert_row(i, "info") for i in range(200, 260)]
    + [alert_row(i, "storage") for i in range(260, 300)]
)
# 20 closed as false positives (recorded only); 20 open incidents each holding one miner alert (counted once).
INCIDENTS = [incident_row(i, "Closed", "FalsePositive", []) for i in range(1000, 1020)] + [
    incident_row(i, "New", "", [f"alert-miner-{i - 1020}"]) for i in range(1020, 1040)
]


def table(columns: list[str], rows: list[list]) -> dict:
    return {"name": "PrimaryResult", "columns": [{"name": c, "type": "string"} for c in columns], "rows": rows}


@pytest.fixture
def history(app):
    def handler(workspace, body):
        query = body["query"]
        if query.startswith("SecurityIncident"):
            return {"tables": [table(INCIDENT_COLUMNS, INCIDENTS)]}
        return {"tables": [table(ALERT_COLUMNS, ALERTS)]}

    app.fake.log_analytics_handler = handler
    return app


def test_replay_answers_per_priority_and_partner_and_writes_nothing(history):
    app = history
    r = app.post("/api/replay", {"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"})
    assert r.status == 200, r.text
    body = r.json()
    assert body["rows"] == len(ALERTS) + len(INCIDENTS) == 340
    # 340 rows, 20 alerts already inside incidents: 320 incidents.
    assert body["incidents"] == 320
    p1, p2, p3, p4 = (body["byPriority"][p] for p in ("P1", "P2", "P3", "P4"))
    # 20 open incidents (High + Impact, no entities) + 40 lone contoso miners + 40 miners of no partner;
    # the 20 closed false positives are recorded only.
    assert p1["incidents"] == 20 + 40 + 40 + 20 and p1["recordedOnly"] == 20
    assert p1["contained"] == 40  # contoso is in enforce mode
    assert p1["plannedOnly"] == 40  # the SOC's own (no partner) follow RESPONSE_MODE dry-run
    assert p1["nothingContainable"] == 20  # the incident rows name no entity
    assert p1["phoned"] == 100
    assert p2["incidents"] == 100 and p2["contained"] == 0 and p2["phoned"] == 0
    assert p3["incidents"] == 40  # anonymous storage access: exposed storage, P3
    assert p4["incidents"] == 60 and p4["digest"] == 60
    assert body["byPartner"]["contoso"]["P1"]["incidents"] == 40  # 20 of its 60 miners are inside incidents
    assert body["byPartner"]["(SOC: no partner)"]["P1"]["incidents"] == 40 + 40  # other subscription + incident rows
    top = [t["rule"] for t in body["topRules"]]
    assert {"crypto-mining", "brute-force", "catalogue-informational"} <= set(top)
    assert body["written"] == 0
    # Nothing was written or started: no incident, no evidence, no runbook, no mail, no call, no ARM write.
    assert list(app.store.iter_incidents()) == []
    assert app.durable.instance_ids() == []
    assert app.fake.sent_mail() == [] and app.fake.calls() == []
    assert not [q for q in app.fake.requests() if q.method in ("PUT", "PATCH", "DELETE")]
    queries = [q["query"] for q in app.fake.log_analytics_queries()]
    assert [q.split("\n")[0] for q in queries] == ["SecurityIncident", "SecurityAlert"]
    assert all("datetime(2026-11-01T00:00:00.000000Z)" in q for q in queries)


def test_replay_for_one_partner(history):
    body = history.post(
        "/api/replay", {"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T00:00:00Z", "partner": "contoso"}
    ).json()
    assert set(body["byPartner"]) == {"contoso"} and body["partner"] == "contoso"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"to": "2026-11-30T00:00:00Z"}, "from"),
        ({"from": "2026-11-01T00:00:00Z", "to": "yesterday"}, "to"),
        ({"from": "2026-11-30T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T00:00:00Z", "partner": "nobody"}, "partner"),
    ],
)
def test_bad_replay_requests_name_the_field(history, body, field):
    r = history.post("/api/replay", body)
    assert r.status == 400, r.text
    assert [d["field"] for d in r.json()["details"]] == [field]


def test_window_parsing_is_strict():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    start, end, partner = parse_window({"from": "2026-11-01T00:00:00", "to": "2026-11-02T00:00:00Z"}, now)
    assert start.tzinfo is UTC and end - start == timedelta(days=1) and partner is None
    with pytest.raises(ValidationError):
        parse_window({"from": "2027-01-01T00:00:00Z", "to": "2027-01-02T00:00:00Z"}, now)


def test_replay_cli_prints_the_same_answer(history, capsys):
    from shared.triage import replay

    assert replay.main(["--from", "2026-11-01T00:00:00Z", "--to", "2026-11-30T00:00:00Z", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["incidents"] == 320 and body["written"] == 0
    assert replay.main(["--from", "2026-11-01T00:00:00Z", "--to", "2026-11-30T00:00:00Z"]) == 0
    text = capsys.readouterr().out
    assert "320 incidents" in text and "Top rules:" in text
    assert list(history.store.iter_incidents()) == []


# ---------------------------------------------------------------- partners' own workspaces (issue 11)
W_ALPHA = "a1a1a1a1-2222-4000-8000-00000000000a"
W_BETA = "b2b2b2b2-2222-4000-8000-00000000000b"
S_ALPHA = "a1a1a1a1-1111-4000-8000-00000000000a"
S_BETA = "b2b2b2b2-1111-4000-8000-00000000000b"
NOBODY = "0d0d0d0d-1111-4000-8000-00000000000d"


def _partner(pid: str, sub: str, ws: str) -> dict:
    return {
        "id": pid,
        "name": pid.title(),
        "subscriptionIds": [sub],
        "workspaces": [
            {"subscriptionId": sub, "resourceGroup": "rg-sec", "workspaceName": f"law-{pid}", "workspaceId": ws}
        ],
        "socAlertEmails": [f"soc@{pid}.example"],
        "responseMode": "enforce",
    }


@pytest.fixture
def two_workspaces(app, tmp_path):
    """Partners alpha and beta, each with its own Sentinel workspace, plus the SOC-wide workspace. Every row
    names a subscription of nobody: only the workspace it was read from says whose it is."""
    path = tmp_path / "partners.json"
    registry = {
        "partners": [_partner("alpha", S_ALPHA, W_ALPHA), _partner("beta", S_BETA, W_BETA)],
        "soc": {"name": "SOC", "socAlertEmails": ["oncall@soc.example"]},
    }
    path.write_text(json.dumps(registry))
    app.configure(PARTNERS_FILE=str(path))
    from tests.fixtures.app import WORKSPACE_ID

    rows = {
        W_ALPHA: [alert_row(i, "miner", NOBODY) for i in range(3)],
        W_BETA: [alert_row(i, "brute", NOBODY) for i in range(10, 12)],
        WORKSPACE_ID: [alert_row(i, "info", NOBODY) for i in range(20, 24)],
    }

    def handler(workspace, body):
        if body["query"].startswith("SecurityIncident"):
            return {"tables": [table(INCIDENT_COLUMNS, [])]}
        return {"tables": [table(ALERT_COLUMNS, rows[workspace.lower()])]}

    app.fake.log_analytics_handler = handler
    return app, WORKSPACE_ID


def _queried(app) -> list[str]:
    return sorted({q["workspace"].lower() for q in app.fake.log_analytics_queries()})


def test_replay_reads_every_registered_workspace_each_row_its_partners(two_workspaces):
    app, shared = two_workspaces
    r = app.post("/api/replay", {"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"})
    assert r.status == 200, r.text
    body = r.json()
    assert _queried(app) == sorted([W_ALPHA, W_BETA, shared])
    assert body["rows"] == 3 + 2 + 4 and body["incidents"] == 9
    assert body["byPartner"]["alpha"] == {"P1": body["byPartner"]["alpha"]["P1"]}
    assert body["byPartner"]["alpha"]["P1"]["incidents"] == 3
    assert body["byPartner"]["alpha"]["P1"]["contained"] == 3  # alpha is in enforce mode
    assert body["byPartner"]["beta"]["P2"]["incidents"] == 2
    assert body["byPartner"]["(SOC: no partner)"]["P4"]["incidents"] == 4
    assert {(w["workspace"], w["partner"], w["rows"]) for w in body["workspaces"]} == {
        ("alpha/law-alpha", "alpha", 3),
        ("beta/law-beta", "beta", 2),
        ("LOG_ANALYTICS_WORKSPACE_ID", None, 4),
    }
    assert list(app.store.iter_incidents()) == [] and not app.fake.writes()


def test_replay_for_a_partner_reads_its_workspaces_only(two_workspaces):
    app, _shared = two_workspaces
    body = app.post(
        "/api/replay", {"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T00:00:00Z", "partner": "beta"}
    ).json()
    assert _queried(app) == [W_BETA]
    assert set(body["byPartner"]) == {"beta"} and body["incidents"] == 2
    assert [w["workspace"] for w in body["workspaces"]] == ["beta/law-beta"]


def test_replay_without_the_soc_workspace_reads_the_partners(two_workspaces):
    app, _shared = two_workspaces
    app.configure(LOG_ANALYTICS_WORKSPACE_ID=None)
    body = app.post("/api/replay", {"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"}).json()
    assert _queried(app) == sorted([W_ALPHA, W_BETA])
    assert body["incidents"] == 5 and set(body["byPartner"]) == {"alpha", "beta"}


def test_a_refused_workspace_is_named_and_the_others_still_count(two_workspaces):
    app, _shared = two_workspaces
    inner = app.fake.log_analytics_handler

    def handler(workspace, body):
        if workspace.lower() == W_BETA:
            return 403, {"error": {"code": "InsufficientAccessError", "message": "no access to law-beta"}}
        return inner(workspace, body)

    app.fake.log_analytics_handler = handler
    body = app.post("/api/replay", {"from": "2026-11-01T00:00:00Z", "to": "2026-11-30T00:00:00Z"}).json()
    [beta] = [w for w in body["workspaces"] if w["partner"] == "beta"]
    assert beta["rows"] == 0 and beta["error"]
    assert body["incidents"] == 3 + 4 and "beta" not in body["byPartner"]
