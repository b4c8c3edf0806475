"""Containment in partners' own tenants (issue 11, docs/spec/tenancy.md): each partner's Graph with that
tenant's token only, ARM through Lighthouse, and the ownership guard both ways."""

from __future__ import annotations

from urllib.parse import parse_qsl

from .conftest import (
    ANALYST,
    S_ALPHA,
    S_BETA,
    S_NOBODY,
    SOC_APP,
    T_ALPHA,
    T_BETA,
    graph_writes,
    host,
    ingest,
    p1,
    rows,
    user,
    vm,
)

U_ALPHA = "0a0a0a0a-0000-4000-8000-0000000000a1"
U_BETA = "0b0b0b0b-0000-4000-8000-0000000000b1"


def approve(app, incident_id: str):
    resp = app.post(f"/api/incidents/{incident_id}/approve", {"actor": ANALYST, "decision": "approve"})
    assert resp.status == 202, resp.text
    return resp


def test_partner_tenant_user_is_disabled_with_that_tenants_token(tenancy):
    app = tenancy.app
    fake = app.fake
    fake.add_user(U_ALPHA, "mallory@alpha.example", tenant=T_ALPHA)
    incident_id = ingest(app, p1(user(U_ALPHA, "mallory@alpha.example"), sub=S_ALPHA))

    row = rows(app, incident_id)["disable-user"]
    assert row["status"] == "contained", row
    assert fake.get_user(U_ALPHA)["accountEnabled"] is False and fake.sign_in_revocations(U_ALPHA) == 1
    writes = graph_writes(fake)
    assert [w.method for w in writes] == ["PATCH", "POST"]
    assert {w.token_tenant for w in writes} == {T_ALPHA}  # never the SOC's (or another partner's) token
    # The token came from alpha's tenant, by client credentials with the managed identity's assertion.
    [token] = fake.tenant_token_requests(T_ALPHA)
    form = dict(parse_qsl(token.raw_body.decode()))
    assert form["client_id"] == SOC_APP and form["grant_type"] == "client_credentials"
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert fake.identity.grant_for(form["client_assertion"]).resource == "api://AzureADTokenExchange"
    assert fake.tenant_token_requests(T_BETA) == []
    # Mail stays in the SOC's tenant: sendMail carried the managed identity's token.
    mails = fake.requests("POST", "/sendMail", api="graph")
    assert mails and {r.token_tenant for r in mails} == {None}


def test_no_graph_write_with_the_wrong_tenants_token(tenancy):
    """Beta's user named in alpha's incident: alpha's directory does not know it (404), so it is held as not
    alpha's, and nothing is written anywhere, in beta's tenant least of all."""
    app = tenancy.app
    fake = app.fake
    fake.add_user(U_BETA, "eve@beta.example", tenant=T_BETA)
    incident_id = ingest(app, p1(user(U_BETA, "eve@beta.example"), sub=S_ALPHA))

    row = rows(app, incident_id)["disable-user"]
    assert row["status"] == "held"
    assert (
        f"target not owned by partner: not found in tenant {T_ALPHA}, the directory of partner 'alpha'" in row["reason"]
    )
    assert graph_writes(fake) == [] and fake.get_user(U_BETA)["accountEnabled"] is True
    reads = fake.requests("GET", f"/users/{U_BETA}", api="graph")
    assert reads and {r.token_tenant for r in reads} == {T_ALPHA} and {r.status for r in reads} == {404}
    assert "containment.held" in app.timeline(incident_id)
    # Held is escalated like every P1: the phone escalation started and the email went out.
    assert app.durable.status(f"escalation-{incident_id}") is not None


def test_cross_partner_vm_is_held_both_ways_and_untouched(tenancy):
    app = tenancy.app
    fake = app.fake
    vm_beta = vm(fake, "vm-beta", S_BETA)
    vm_alpha = vm(fake, "vm-alpha", S_ALPHA)

    alpha_incident = ingest(app, p1(host(vm_beta), sub=S_ALPHA))  # alpha's alert names beta's VM
    beta_incident = ingest(app, p1(host(vm_alpha), sub=S_BETA))  # and the other way round

    for incident_id, owner, partner, sub in (
        (alpha_incident, "beta", "alpha", S_BETA),
        (beta_incident, "alpha", "beta", S_ALPHA),
    ):
        row = rows(app, incident_id)["isolate-vm"]
        assert row["status"] == "held", row
        assert row["reason"].startswith("target not owned by partner")
        assert f"subscription {sub} belongs to partner '{owner}', not '{partner}'" in row["reason"]
    assert fake.writes(api="arm") == []
    # Held before any read: the app did not even look at the other partner's VM.
    assert fake.requests("GET", "/virtualMachines/", api="arm") == []


def test_approved_cross_partner_vm_follows_the_owners_response_mode(tenancy):
    app = tenancy(beta_mode="dry-run")
    fake = app.fake
    vm_beta = vm(fake, "vm-beta", S_BETA)
    incident_id = ingest(app, p1(host(vm_beta), sub=S_ALPHA))
    assert rows(app, incident_id)["isolate-vm"]["status"] == "held"

    approve(app, incident_id)
    row = rows(app, incident_id)["isolate-vm"]
    assert row["status"] == "dry-run" and "target's owner is in dry-run" in row["reason"]
    assert fake.writes(api="arm") == []


def test_approved_cross_partner_vm_in_enforce_is_isolated(tenancy):
    app = tenancy.app
    fake = app.fake
    vm_beta = vm(fake, "vm-beta", S_BETA)
    incident_id = ingest(app, p1(host(vm_beta), sub=S_ALPHA))
    approve(app, incident_id)
    assert rows(app, incident_id)["isolate-vm"]["status"] == "contained"


def test_incident_with_no_known_partner_contains_nothing_automatically(tenancy):
    app = tenancy.app
    fake = app.fake
    app.configure(RESPONSE_MODE="enforce")  # even an enforcing deployment
    fake.delegate(S_NOBODY)
    vm_nobody = vm(fake, "vm-unknown", S_NOBODY)
    fake.add_user(U_ALPHA, "mallory@soc.example")  # in the SOC's own directory
    incident_id = ingest(app, p1(host(vm_nobody), user(U_ALPHA, "mallory@soc.example"), sub=S_NOBODY))
    assert app.get(f"/api/incidents/{incident_id}").json()["partnerId"] is None

    found = rows(app, incident_id)
    for kind in ("isolate-vm", "disable-user"):
        assert found[kind]["status"] == "held", found[kind]
        assert "target not owned by partner: the incident has no known partner" in found[kind]["reason"]
    assert fake.writes(api="arm") == [] and graph_writes(fake) == []
    # The SOC's own directory was asked with the managed identity: no partner tenant's token.
    assert fake.tenant_token_requests() == []


def test_unconsented_partner_fails_and_is_escalated(tenancy):
    app = tenancy.app
    fake = app.fake
    fake.add_tenant(T_ALPHA, consented=False)
    fake.add_user(U_ALPHA, "mallory@alpha.example", tenant=T_ALPHA)
    incident_id = ingest(app, p1(user(U_ALPHA, "mallory@alpha.example"), sub=S_ALPHA))

    row = rows(app, incident_id)["disable-user"]
    assert row["status"] == "failed", row
    assert f"consent missing in tenant {T_ALPHA}" in row["failure"]["reason"]
    assert row["failure"]["permanent"] is True
    assert graph_writes(fake) == [] and fake.get_user(U_ALPHA)["accountEnabled"] is True
    assert "containment.failed" in app.timeline(incident_id)
    assert app.durable.status(f"escalation-{incident_id}") is not None


def test_one_token_round_trip_per_tenant_then_the_cache(tenancy):
    app = tenancy.app
    fake = app.fake
    issued_before = len(fake.token_requests())  # the identity endpoint's log spans the session
    for i in range(3):
        oid = f"0a0a0a0a-0000-4000-8000-00000000010{i}"
        fake.add_user(oid, f"user{i}@alpha.example", tenant=T_ALPHA)
        incident_id = ingest(app, p1(user(oid, f"user{i}@alpha.example"), sub=S_ALPHA))
        assert rows(app, incident_id)["disable-user"]["status"] == "contained"
    fake.add_user(U_BETA, "eve@beta.example", tenant=T_BETA)
    incident_id = ingest(app, p1(user(U_BETA, "eve@beta.example"), sub=S_BETA))
    assert rows(app, incident_id)["disable-user"]["status"] == "contained"

    assert len(fake.tenant_token_requests(T_ALPHA)) == 1
    assert len(fake.tenant_token_requests(T_BETA)) == 1
    exchange = [g for g in fake.token_requests()[issued_before:] if g.resource == "api://AzureADTokenExchange"]
    assert len(exchange) == 1  # the managed identity's assertion is cached too (and serves both tenants)


def test_token_endpoint_429_and_5xx_are_retried(tenancy):
    app = tenancy.app
    fake = app.fake
    fake.add_user(U_ALPHA, "mallory@alpha.example", tenant=T_ALPHA)
    fake.inject("POST", rf"^/{T_ALPHA}/oauth2/v2\.0/token$", 429, headers={"Retry-After": "0"}, api="token")
    fake.inject("POST", rf"^/{T_ALPHA}/oauth2/v2\.0/token$", 503, api="token")
    incident_id = ingest(app, p1(user(U_ALPHA, "mallory@alpha.example"), sub=S_ALPHA))

    assert rows(app, incident_id)["disable-user"]["status"] == "contained"
    statuses = [r.status for r in fake.tenant_token_requests(T_ALPHA)]
    assert statuses == [429, 503, 200]


def test_release_re_enables_in_the_partners_tenant(tenancy):
    app = tenancy.app
    fake = app.fake
    fake.add_user(U_ALPHA, "mallory@alpha.example", tenant=T_ALPHA)
    incident_id = ingest(app, p1(user(U_ALPHA, "mallory@alpha.example"), sub=S_ALPHA))
    assert rows(app, incident_id)["disable-user"]["status"] == "contained"
    fake.clear_log()

    resp = app.post(f"/api/incidents/{incident_id}/release", {"actor": ANALYST, "reason": "partner cleaned up"})
    assert resp.status in (200, 202), resp.text
    assert fake.get_user(U_ALPHA)["accountEnabled"] is True
    writes = graph_writes(fake)
    assert [w.method for w in writes] == ["PATCH"] and {w.token_tenant for w in writes} == {T_ALPHA}
