"""Partner preflight (issue 11, docs/spec/tenancy.md): the route, each check and what it says to fix, the
daily timer's evidence and email."""

from __future__ import annotations

import pytest

from shared.preflight.checks import granted, missing_actions
from shared.preflight.ports import Permission

from .conftest import S_ALPHA, SOC_APP, T_ALPHA, T_BETA, W_ALPHA

NIC_WRITE = "Microsoft.Network/networkInterfaces/write"
NSG_JOIN = "Microsoft.Network/networkSecurityGroups/join/action"
WORKSPACE = (
    f"/subscriptions/{S_ALPHA}/resourceGroups/rg-sec/providers/Microsoft.OperationalInsights/workspaces/law-alpha"
)


# -- the pure permission rule ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("permissions", "missing"),
    [
        ([Permission(("*",))], []),
        ([Permission(("Microsoft.Network/*",))], []),
        ([Permission(("microsoft.network/networkinterfaces/*", "Microsoft.Network/*/join/action"))], []),
        ([Permission(("*/read",))], [NIC_WRITE, NSG_JOIN]),
        ([Permission(("Microsoft.Network/*",), ("Microsoft.Network/networkInterfaces/write",))], [NIC_WRITE]),
        ([Permission(("*",), ("*/join/action",))], [NSG_JOIN]),
        # A notAction only removes rights of its own entry: another role's grant still counts.
        ([Permission(("*",), ("Microsoft.Network/*",)), Permission(("Microsoft.Network/*",))], []),
        ([], [NIC_WRITE, NSG_JOIN]),
    ],
)
def test_rights_from_permissions_with_wildcards(permissions, missing):
    assert missing_actions(permissions) == missing


def test_wildcard_is_not_a_regex():
    assert not granted([Permission(("Microsoft.Network/networkInterfaces/writ.",))], NIC_WRITE)


# -- the route -----------------------------------------------------------------------------------
def _ready_estate(fake):
    fake.add_resource(WORKSPACE, {"location": "eastus", "properties": {"customerId": W_ALPHA}})
    fake.add_user("0a0a0a0a-0000-4000-8000-0000000000bb", "breakglass@alpha.example", tenant=T_ALPHA)


def _checks(body) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for check in body["checks"]:
        assert set(check) == {"check", "ok", "detail"}
        out.setdefault(check["check"], []).append(check)
    return out


def test_ready_partner(tenancy):
    app = tenancy.app
    _ready_estate(app.fake)
    resp = app.get("/api/partners/alpha/preflight")
    assert resp.status == 200, resp.text
    body = resp.json()
    assert body["partner"] == "alpha" and body["ready"] is True, body
    checks = _checks(body)
    assert set(checks) == {"graph-token", "graph-read", "arm-permissions", "sentinel-workspace"}
    assert T_ALPHA in checks["graph-token"][0]["detail"]
    assert "breakglass@alpha.example" in checks["graph-read"][0]["detail"]
    assert S_ALPHA in checks["arm-permissions"][0]["detail"]
    assert app.fake.writes() == []  # preflight changes nothing


def test_unconsented_partner_is_not_ready_and_says_so(tenancy):
    app = tenancy.app
    _ready_estate(app.fake)
    app.fake.add_tenant(T_ALPHA, consented=False)
    body = app.get("/api/partners/alpha/preflight").json()
    assert body["ready"] is False
    checks = _checks(body)
    [token] = checks["graph-token"]
    assert (
        token["ok"] is False
        and f"consent missing in tenant {T_ALPHA}" in token["detail"]
        and SOC_APP in token["detail"]
    )
    assert checks["graph-read"][0]["ok"] is False and "see graph-token" in checks["graph-read"][0]["detail"]
    assert all(c["ok"] for c in checks["arm-permissions"] + checks["sentinel-workspace"])


def test_missing_right_and_undelegated_subscription_are_named(tenancy):
    app = tenancy(alpha_mode="enforce", subscriptionIds=[S_ALPHA, "c3c3c3c3-1111-4000-8000-00000000000c"])
    fake = app.fake
    _ready_estate(fake)
    fake.set_permissions(S_ALPHA, [{"actions": ["*/read", "Microsoft.Network/*"], "notActions": [NIC_WRITE]}])
    body = app.get("/api/partners/alpha/preflight").json()
    assert body["ready"] is False
    by_sub = {c["detail"].split(":")[0]: c for c in _checks(body)["arm-permissions"]}
    [missing] = [c for c in _checks(body)["arm-permissions"] if S_ALPHA in c["detail"]]
    assert missing["ok"] is False
    assert missing["detail"].startswith(f"{NIC_WRITE} not granted on subscription {S_ALPHA}")
    undelegated = by_sub["subscription c3c3c3c3-1111-4000-8000-00000000000c"]
    assert undelegated["ok"] is False and "not delegated to the SOC (Azure Lighthouse)" in undelegated["detail"]


def test_workspace_that_does_not_answer_is_named(tenancy):
    app = tenancy.app
    app.fake.add_user("0a0a0a0a-0000-4000-8000-0000000000bb", "breakglass@alpha.example", tenant=T_ALPHA)
    body = app.get("/api/partners/alpha/preflight").json()
    [ws] = _checks(body)["sentinel-workspace"]
    assert body["ready"] is False and ws["ok"] is False
    assert "law-alpha" in ws["detail"] and "check subscriptionId, resourceGroup and workspaceName" in ws["detail"]


def test_unknown_partner_is_404(tenancy):
    resp = tenancy.app.get("/api/partners/nobody/preflight")
    assert resp.status == 404 and resp.json()["error"] == "partner not found"


def test_partner_without_protected_identities_reads_the_soc_apps_service_principal(tenancy):
    app = tenancy.app
    fake = app.fake
    fake.add_service_principal(
        "5b5b5b5b-0000-4000-8000-00000000005b", SOC_APP, "soc-responder partner access", tenant=T_BETA
    )
    body = app.get("/api/partners/beta/preflight").json()
    checks = _checks(body)
    assert checks["graph-read"][0]["ok"] is True and "soc-responder partner access" in checks["graph-read"][0]["detail"]
    reads = fake.requests("GET", "/servicePrincipals", api="graph")
    assert reads and {r.token_tenant for r in reads} == {T_BETA}


# -- the daily timer -------------------------------------------------------------------------------
def test_daily_preflight_evidences_every_partner_and_emails_the_soc_about_the_not_ready(tenancy):
    app = tenancy.app
    fake = app.fake
    _ready_estate(fake)
    fake.add_tenant(T_BETA, consented=False)  # beta is not ready

    app.runtime.timer("partner_preflight")

    events = app.store.list_events("soc-preflight")
    checked = {e.data["partner"]: e for e in events if e.event_type == "preflight.checked"}
    assert set(checked) == {"alpha", "beta"}
    assert checked["alpha"].data["ready"] is True and checked["beta"].data["ready"] is False
    assert f"consent missing in tenant {T_BETA}" in checked["beta"].summary
    [reported] = [e for e in events if e.event_type == "preflight.reported"]
    assert reported.data["notReady"] == ["beta"] and reported.data["to"] == ["oncall@soc.example"]
    [mail] = [m for m in fake.sent_mail() if "Preflight" in (m.subject or "")]
    assert mail.to == ["oncall@soc.example"] and "beta" in mail.subject and "alpha" not in mail.subject
    assert f"consent missing in tenant {T_BETA}" in (mail.body_content or "")
    from shared.evidence import verify_chain

    assert verify_chain(events).valid  # hash-chained like an incident's timeline


def test_the_delegated_network_contributor_role_grants_what_containment_needs():
    """The code's list of rights (CONTAINMENT_ACTIONS) against the built-in role infra/partner delegates
    (Network Contributor's published permissions) and one that must not suffice (Log Analytics Reader)."""
    network_contributor = Permission(
        (
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Network/*",
            "Microsoft.ResourceHealth/availabilityStatuses/read",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
        )
    )
    log_analytics_reader = Permission(
        ("*/read", "Microsoft.OperationalInsights/workspaces/search/action", "Microsoft.Support/*")
    )
    assert missing_actions([network_contributor]) == []
    assert missing_actions([log_analytics_reader]) == [NIC_WRITE, NSG_JOIN]
