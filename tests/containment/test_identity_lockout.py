"""Entra ID lockout through the whole app with the real msgraph-sdk client against the HTTPS fake."""

from __future__ import annotations

import pytest

from .conftest import (
    TENANT,
    account,
    actions,
    advance,
    containment_output,
    containment_writes,
    ingest,
    p1_alert,
    sample,
    service_principal,
)

USER_ID = "8e7d6c5b-4a39-4281-b0f1-e2d3c4b5a697"  # jordan.lee in samples/sentinel-incident-trigger.json


def test_sentinel_p1_compromised_account_is_disabled_and_its_sessions_revoked(enforce):
    app, fake = enforce, enforce.fake
    fake.add_user(USER_ID, "jordan.lee@contoso.example")

    resp = app.post("/api/incidents/sentinel", sample("sentinel-incident-trigger.json"))
    assert resp.status == 202 and resp.json()["priority"] == "P1"
    incident_id = resp.json()["incidentId"]

    assert containment_writes(fake) == [
        ("PATCH", f"/v1.0/users/{USER_ID}"),
        ("POST", f"/v1.0/users/{USER_ID}/revokeSignInSessions"),
    ]
    patch = fake.requests("PATCH", "/users/")[0].body
    assert {k: v for k, v in patch.items() if not k.startswith("@odata")} == {"accountEnabled": False}
    assert fake.get_user(USER_ID)["accountEnabled"] is False
    assert fake.sign_in_revocations(USER_ID) == 1
    row = actions(app, incident_id)["disable-user"]
    assert row["status"] == "contained"
    assert row["account"] == {
        "id": USER_ID,
        "upn": "jordan.lee@contoso.example",
        "enabledBefore": True,
        "disabledByUs": True,
        "sessionsRevoked": True,
    }
    timeline = app.timeline(incident_id)
    assert [
        t
        for t in timeline
        if t
        in (
            "containment.started",
            "containment.account-disabled",
            "containment.sessions-revoked",
            "containment.executed",
        )
    ] == ["containment.started", "containment.account-disabled", "containment.sessions-revoked", "containment.executed"]
    assert app.store.get_incident(incident_id)[0].status.value == "contained"


def test_account_found_by_upn_when_no_object_id(enforce):
    app, fake = enforce, enforce.fake
    fake.add_user("0f0f0f0f-0000-4000-8000-000000000001", "kim@contoso.example")
    ingest(app, p1_alert(account(upn="kim@contoso.example")))

    assert fake.requests("GET", "/users/")[0].path == "/v1.0/users/kim@contoso.example"
    assert fake.get_user("kim@contoso.example")["accountEnabled"] is False


def test_account_already_disabled_changes_nothing(enforce):
    app, fake = enforce, enforce.fake
    fake.add_user("0f0f0f0f-0000-4000-8000-000000000002", "lee@contoso.example", enabled=False)
    incident_id = ingest(app, p1_alert(account(object_id="0f0f0f0f-0000-4000-8000-000000000002")))

    assert containment_writes(fake) == []
    assert actions(app, incident_id)["disable-user"]["status"] == "already-contained"


def test_protected_identity_in_the_plan_is_never_touched(enforce):
    app, fake = enforce, enforce.fake
    fake.add_user("0f0f0f0f-0000-4000-8000-000000000003", "breakglass-01@contoso.example")
    incident_id = ingest(app, p1_alert(account(upn="breakglass-01@contoso.example")))

    assert fake.requests(api="graph", path_contains="breakglass") == []  # not even read
    row = actions(app, incident_id)["disable-user"]
    assert row["status"] == "skipped" and row["guardrail"] == "protected-identity"
    assert fake.get_user("breakglass-01@contoso.example")["accountEnabled"] is True


def test_protected_identity_recognised_from_the_live_upn_when_the_alert_has_only_an_object_id(enforce):
    app, fake = enforce, enforce.fake
    oid = "0f0f0f0f-0000-4000-8000-000000000004"
    fake.add_user(oid, "BreakGlass-02@contoso.example")
    incident_id = ingest(app, p1_alert(account(object_id=oid)))

    assert containment_writes(fake) == []
    row = actions(app, incident_id)["disable-user"]
    assert row["status"] == "skipped" and row["guardrail"] == "protected-identity"


def test_guest_account_is_not_disabled_and_is_escalated(enforce):
    app, fake = enforce, enforce.fake
    oid = "0f0f0f0f-0000-4000-8000-000000000005"
    fake.add_user(oid, "vendor_fabrikam.example#EXT#@contoso.example", user_type="Guest")
    incident_id = ingest(app, p1_alert(account(object_id=oid)))

    assert containment_writes(fake) == []
    [failure] = containment_output(app, incident_id)["failures"]
    assert "guest account" in failure["reason"] and failure["code"] == "GuestAccount"
    assert actions(app, incident_id)["disable-user"]["status"] == "failed"
    assert "containment.failed" in app.timeline(incident_id)


def test_privileged_admin_403_is_recorded_and_escalated(enforce):
    app, fake = enforce, enforce.fake
    oid = "0f0f0f0f-0000-4000-8000-000000000006"
    fake.add_user(oid, "global.admin@contoso.example", forbidden=True)
    incident_id = ingest(app, p1_alert(account(object_id=oid)))

    patches = fake.requests("PATCH", "/users/")
    assert [r.status for r in patches] == [403]  # final: not retried
    assert fake.requests("POST", "revokeSignInSessions") == []
    [failure] = containment_output(app, incident_id)["failures"]
    assert failure["status"] == 403 and "Privileged Authentication Administrator" in failure["reason"]
    assert failure["partiallyApplied"] is False
    assert len(app.durable.activity_calls("containment_execute")) == 1


def test_throttled_graph_patch_is_retried_after_retry_after(enforce):
    app, fake = enforce, enforce.fake
    oid = "0f0f0f0f-0000-4000-8000-000000000007"
    fake.add_user(oid, "sam@contoso.example")
    fake.inject("PATCH", r"/users/", 429, headers={"Retry-After": "1"})
    incident_id = ingest(app, p1_alert(account(object_id=oid)))

    assert [r.status for r in fake.requests("PATCH", "/users/")] == [429, 204]
    assert actions(app, incident_id)["disable-user"]["status"] == "contained"
    assert len(app.durable.activity_calls("containment_execute")) == 1


@pytest.mark.parametrize("failures, outcome", [(3, "failed"), (2, "contained")])
def test_graph_500s_are_retried_by_the_orchestration_and_three_in_a_row_escalate(enforce, failures, outcome):
    """kiota does not retry a 500: each one costs a durable attempt (3, 15 s apart)."""
    app, fake = enforce, enforce.fake
    oid = f"0f0f0f0f-0000-4000-8000-00000000000{failures}"
    fake.add_user(oid, f"pat{failures}@contoso.example")
    fake.inject("PATCH", r"/users/", 500, times=failures)
    incident_id = ingest(app, p1_alert(account(object_id=oid)))
    advance(app, 16, times=3)

    statuses = [r.status for r in fake.requests("PATCH", "/users/")]
    assert statuses == [500] * failures + ([204] if outcome == "contained" else [])
    assert len(app.durable.activity_calls("containment_execute")) == min(failures + 1, 3)
    assert actions(app, incident_id)["disable-user"]["status"] == outcome
    out = containment_output(app, incident_id)
    assert app.timeline(incident_id).count("containment.attempt-failed") == failures
    if outcome == "failed":
        [failure] = out["failures"]
        assert failure["code"] == "RetriesExhausted" and "500" in failure["reason"]
        assert fake.get_user(oid)["accountEnabled"] is True
    else:
        assert out["failures"] == [] and fake.get_user(oid)["accountEnabled"] is False


def test_service_principal_is_disabled_by_app_id(enforce):
    app, fake = enforce, enforce.fake
    fake.add_service_principal(
        "5a5a5a5a-0000-4000-8000-00000000000a", "c0ffee00-0000-4000-8000-00000000000b", "payroll-sync"
    )
    body = p1_alert(service_principal(app_id="c0ffee00-0000-4000-8000-00000000000b", name="payroll-sync"), sub=None)
    body["tenantId"] = TENANT
    incident_id = ingest(app, body)

    assert containment_writes(fake) == [("PATCH", "/v1.0/servicePrincipals/5a5a5a5a-0000-4000-8000-00000000000a")]
    assert fake.get_service_principal("5a5a5a5a-0000-4000-8000-00000000000a")["accountEnabled"] is False
    row = actions(app, incident_id)["disable-service-principal"]
    assert row["status"] == "contained" and row["account"]["disabledByUs"] is True


def test_account_not_in_the_partners_directory_is_held_then_fails_when_approved(enforce):
    """Issue 11: a 404 from the partner's directory means the account is not the partner's: held, not acted
    on; approving it cannot make it exist there, so the approved run fails and is escalated."""
    app, fake = enforce, enforce.fake
    incident_id = ingest(app, p1_alert(account(object_id="0f0f0f0f-0000-4000-8000-0000000000ff")))

    row = actions(app, incident_id)["disable-user"]
    assert row["status"] == "held" and "target not owned by partner" in row["reason"]
    assert containment_writes(fake) == []
    resp = app.post(f"/api/incidents/{incident_id}/approve", {"actor": "ana.lyst@soc.example", "decision": "approve"})
    assert resp.status == 202, resp.text
    row = actions(app, incident_id)["disable-user"]
    assert row["status"] == "failed" and row["failure"]["status"] == 404
    assert "no longer exists" in row["failure"]["reason"]
    assert containment_writes(fake) == []
