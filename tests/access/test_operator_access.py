"""Who may act (docs/spec/access.md): every operator route × no principal / wrong role / right role / spoofed actor."""

from __future__ import annotations

import uuid

import pytest

from shared.access import POLICY, principal_header
from tests.containment.conftest import host, ingest, p1_alert, seed_vm

ANA = "ana@soc.example"  # analyst
LEE = "lee@soc.example"  # SOC lead
AUD = "aud@auditor.example"

# (method, path template, action, body) — every operator and auditor route of the app.
ROUTES = [
    ("GET", "/api/incidents/{id}", "incident", None),
    ("GET", "/api/incidents/{id}/verify", "verify", None),
    ("GET", "/api/incidents/{id}/review", "review", None),
    ("POST", "/api/incidents/{id}/review", "review.submit", {"rootCause": "phished credentials"}),
    ("GET", "/api/evidence", "evidence", None),
    ("GET", "/api/reports/sla", "reports", None),
    ("POST", "/api/incidents/{id}/ack", "ack", {"note": "on it"}),
    ("POST", "/api/incidents/{id}/priority", "priority", {"priority": "P2", "reason": "re-triaged"}),
    ("POST", "/api/incidents/{id}/call", "call", {"reason": "need a voice"}),
    ("POST", "/api/incidents/{id}/approve", "approve", {"decision": "approve", "reason": "ok"}),
    ("POST", "/api/incidents/{id}/release", "release", {"reason": "clean"}),
]
WRONG_ROLE = {"Auditor": ["Responder"], "Responder": ["Auditor"], "Approver": ["Responder", "Auditor"]}


def _right_and_wrong(action: str) -> tuple[list[str], list[str]]:
    allowed = POLICY[action]
    right = ["Responder"] if "Responder" in allowed else ["Approver"]
    wrong = sorted({"Auditor", "Responder", "Approver"} - allowed)
    return right, wrong


@pytest.fixture
def entra(app):
    app.configure(OPERATOR_AUTH="entra")
    generic = p1_alert({"kind": "ip", "address": "192.0.2.10"}, sub=None, score=5)
    app.configure(OPERATOR_AUTH="function-key")
    incident_id = ingest(app, generic)
    app.configure(OPERATOR_AUTH="entra")
    app.incident_id = incident_id
    return app


def _call(app, method, path, body, headers):
    return app.request(method, path.format(id=app.incident_id), body, headers=headers)


def _as(name, roles):
    return {"X-MS-CLIENT-PRINCIPAL": principal_header(name, roles)}


@pytest.mark.parametrize("method, path, action, body", ROUTES, ids=[f"{m} {a}" for m, _, a, _ in ROUTES])
def test_route_by_caller(entra, method, path, action, body):
    app = entra
    right, wrong = _right_and_wrong(action)
    # no principal: 401 (with or without a body actor)
    r = _call(app, method, path, {**body, "actor": ANA} if body is not None else None, None)
    assert r.status == 401, r.text
    # signed in without the route's role: 403; no roles at all: 403
    if wrong:
        r = _call(app, method, path, body, _as(ANA, wrong))
        assert r.status == 403, r.text
        assert r.json()["details"][0]["field"] == "roles"
    assert _call(app, method, path, body, _as(ANA, [])).status == 403
    # spoofed body actor (right role, someone else's name): 403, nothing written
    if body is not None:
        before = len(app.store.list_events(app.incident_id))
        r = _call(app, method, path, {**body, "actor": "ceo@partner.example"}, _as(ANA, right))
        assert r.status == 403 and r.json()["details"][0]["field"] == "actor", r.text
        assert len(app.store.list_events(app.incident_id)) == before
    # right role: past the guard (the route's own answer: 200/202, or 409 when there is nothing to approve)
    r = _call(app, method, path, body, _as(ANA, right))
    assert r.status not in (401, 403) and r.status < 500, r.text


def test_every_http_route_is_guarded_or_is_a_machine_route():
    """A new operator route cannot forget the guard: every HTTP function is an ingest/callback route or guarded."""
    from function_app import build_app

    machine = {"ingest_defender_alert", "ingest_sentinel_incident", "ingest_generic_alert", "acs_call_events"}
    for fn in build_app().get_functions():
        trigger = fn.get_trigger()
        if trigger is None or trigger.get_binding_name() != "httpTrigger":
            continue
        user = fn.get_user_function()
        guarded = getattr(user, "operator_action", None) or getattr(
            getattr(user, "client_function", None), "operator_action", None
        )
        if fn.get_function_name() == "acs_call_events":
            assert trigger.auth_level.value == "anonymous"  # ACS cannot send a key: token + per-call secret
        elif fn.get_function_name() in machine:
            assert trigger.auth_level.value == "function", fn.get_function_name()  # one named key per caller
        else:
            assert guarded in POLICY, f"{fn.get_function_name()} has no @operator_access"
            assert trigger.auth_level.value == "anonymous", fn.get_function_name()


def test_accepted_calls_record_the_principal_as_actor_verified(entra):
    app = entra
    oid = str(uuid.uuid4())
    hdr = {"X-MS-CLIENT-PRINCIPAL": principal_header(ANA, ["Responder"], object_id=oid)}
    iid = app.incident_id
    # body actor omitted, or equal to the principal (any case): both accepted, recorded as the principal
    assert app.request("POST", f"/api/incidents/{iid}/ack", {}, headers=hdr).status == 200
    r = app.request(
        "POST", f"/api/incidents/{iid}/priority", {"actor": ANA.upper(), "priority": "P2", "reason": "x"}, headers=hdr
    )
    assert r.status == 200, r.text
    r = app.request("POST", f"/api/incidents/{iid}/call", {"reason": "call them"}, headers=hdr)
    assert r.status in (200, 202), r.text
    r = app.request("POST", f"/api/incidents/{iid}/review", {"rootCause": "phish"}, headers=hdr)
    assert r.status == 200, r.text
    mine = {e.event_type for e in app.store.list_events(iid) if e.actor == ANA}
    assert {"incident.acknowledged", "priority.changed", "escalation.started", "review.submitted"} <= mine
    for ev in app.store.list_events(iid):
        if ev.actor == ANA:
            assert ev.data["actorVerified"] is True and ev.data["actorObjectId"] == oid, ev
    assert app.get(f"/api/incidents/{iid}/verify").status in (401,)  # still needs a principal
    ok = app.request("GET", f"/api/incidents/{iid}/verify", headers=_as(AUD, ["Auditor"]))
    assert ok.status == 200 and ok.json()["valid"] is True, ok.text


def test_approve_and_release_record_the_lead(app):
    app.configure(RESPONSE_MODE="enforce", CONTAINMENT_RETRY_BACKOFF_SECONDS="0", OPERATOR_AUTH="function-key")
    vm, _ = seed_vm(app.fake, "dc-01", tags={"Soc-Isolation": "approval"})
    iid = ingest(app, p1_alert(host(vm)))
    app.configure(OPERATOR_AUTH="entra")
    lee = _as(LEE, ["Approver"])
    assert (
        app.request(
            "POST", f"/api/incidents/{iid}/approve", {"decision": "approve"}, headers=_as(ANA, ["Responder"])
        ).status
        == 403
    )
    r = app.request("POST", f"/api/incidents/{iid}/approve", {"decision": "approve", "reason": "go"}, headers=lee)
    assert r.status == 202, r.text
    r = app.request("POST", f"/api/incidents/{iid}/release", {"reason": "clean"}, headers=lee)
    assert r.status in (200, 202), r.text
    mine = [e for e in app.store.list_events(iid) if e.actor == LEE]
    assert {"containment.approved", "release.requested", "containment.released"} <= {e.event_type for e in mine}
    assert all(e.data["actorVerified"] is True for e in mine)


def test_function_key_mode_accepts_the_body_actor_and_marks_it_unverified(app):
    incident_id = ingest(app, p1_alert({"kind": "ip", "address": "192.0.2.11"}, sub=None, score=5))
    r = app.post(f"/api/incidents/{incident_id}/ack", {"actor": "someone@soc.example"})
    assert r.status == 200, r.text
    ack = next(e for e in app.store.list_events(incident_id) if e.event_type == "incident.acknowledged")
    assert ack.actor == "someone@soc.example" and ack.data["actorVerified"] is False
    # the mark is evidence: hashed with the event
    from shared.evidence import verify_chain

    assert verify_chain(app.store.list_events(incident_id)).valid
    tampered = ack.model_copy(update={"data": {**ack.data, "actorVerified": True}})
    assert tampered.compute_hash() != ack.hash


@pytest.mark.parametrize("bad", ["a%2Fb", "x'y", "%00", "a" * 201])
def test_malformed_route_ids_are_400_not_503(entra, bad):
    r = entra.request("GET", f"/api/incidents/{bad}", headers=_as(AUD, ["Auditor"]))
    assert r.status == 400 and r.json()["details"][0]["field"] == "id", r.text


def test_a_forged_principal_header_is_401(entra):
    r = entra.request("GET", f"/api/incidents/{entra.incident_id}", headers={"X-MS-CLIENT-PRINCIPAL": "not-base64!"})
    assert r.status == 401


def test_incident_view_never_shows_a_full_phone_number(app):
    """Finding: GET /api/incidents/{id} returned the call rows' numbers as stored."""
    from shared.masking import mask_phone, mask_phones

    assert mask_phone("+15555550100") == "+***0100"
    assert mask_phone("+4930123") == "+***123"  # short numbers: at least half hidden
    assert mask_phone("112") == "***2"
    view = {
        "notifications": [{"channel": "call", "target": "+1 (555) 555-0100"}],
        "seen": "2026-11-21",
        "ip": "10.0.0.1",
    }
    assert mask_phones(view) == {
        "notifications": [{"channel": "call", "target": "+***0100"}],
        "seen": "2026-11-21",
        "ip": "10.0.0.1",
    }
    iid = ingest(app, p1_alert({"kind": "ip", "address": "192.0.2.12"}, sub=None, score=5))
    app.store.put_record(
        "Notifications", iid, "call-test", {"channel": "call", "target": "+15555550100", "contactName": "Dana"}, None
    )
    text = app.get(f"/api/incidents/{iid}").text
    assert "5555550100" not in text and "+***0100" in text


def test_function_key_mode_refuses_requests_that_are_not_local():
    """A deployment accidentally left in local mode does not let the internet act as anyone."""
    from shared.access import FUNCTION_KEY, authorize
    from shared.errors import ForbiddenError

    assert authorize("ack", FUNCTION_KEY, None, ANA, "127.0.0.1").actor == ANA
    with pytest.raises(ForbiddenError):
        authorize("ack", FUNCTION_KEY, None, ANA, "soc-responder.azurewebsites.net")


def test_principal_parsing_reads_the_documented_claim_types():
    import base64
    import json as _json

    from shared.access import parse_principal

    def header(doc):
        return base64.b64encode(_json.dumps(doc).encode()).decode()

    upn = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
    role = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
    p = parse_principal(
        header({"auth_typ": "aad", "claims": [{"typ": upn, "val": "ana@soc.example"}, {"typ": role, "val": "Auditor"}]})
    )
    assert p is not None and p.name == "ana@soc.example" and p.roles == {"Auditor"}
    custom = {
        "auth_typ": "aad",
        "role_typ": "r",
        "claims": [{"typ": "preferred_username", "val": "lee@soc.example"}, {"typ": "r", "val": "Approver"}],
    }
    assert parse_principal(header(custom)).roles == {"Approver"}
    app_only = {"auth_typ": "aad", "claims": [{"typ": "azp", "val": "1111"}, {"typ": "roles", "val": "Responder"}]}
    assert parse_principal(header(app_only)).name == "app:1111"
    assert parse_principal(None) is None
