"""Issue 12: ACS callbacks — the signed token ACS sends with each event (when present), and a call's secret
expiring when the call ends. The fake serves the OpenID configuration and JWKS and signs tokens with its own key."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

RESOURCE = "5f5e5d5c-0000-4000-8000-00000000acs1"  # the ACS resource's immutable id: the tokens' audience


@pytest.fixture
def signed(notify_app):
    app = notify_app
    app.configure(
        ACS_CALLBACK_OPENID_CONFIG=f"{app.fake.url}/calling/.well-known/acsopenidconfiguration",
        ACS_RESOURCE_ID=RESOURCE,
    )
    return app


def _post(app, call, event_type, token=None, **data):
    target = urlsplit(call.callback_uri)
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return app.app.post(
        f"{target.path}?{target.query}", app.fake.call_event(call.call_connection_id, event_type, **data), headers
    )


def test_a_valid_acs_token_is_accepted_and_a_bad_one_is_401(signed):
    from cryptography.hazmat.primitives.asymmetric import rsa

    app = signed
    app.ingest(10)
    call = next(c for c in app.fake.calls() if c.targets == ["+15555550100"])
    signer = app.fake.acs_callback_signer
    assert _post(app, call, "CallConnected", signer.token(RESOURCE)).status == 200
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "another resource's token": signer.token("some-other-acs-resource"),
        "expired": signer.token(RESOURCE, lifetime=-600),
        "forged signature": signer.token(RESOURCE, key=other_key),
        "not a JWT": "abc.def.ghi",
        "other issuer": signer.token(RESOURCE, iss="https://evil.example"),
    }
    for why, token in bad.items():
        r = _post(app, call, "RecognizeCompleted", token, recognitionType="dtmf", dtmfResult={"tones": ["one"]})
        assert r.status == 401, (why, r.text)
    assert app.incident(call_incident(call))["acknowledgedAt"] is None
    # no token at all: the per-call secret alone still authenticates (ACS sends one; older setups may not)
    r = _post(app, call, "RecognizeCompleted", None, recognitionType="dtmf", dtmfResult={"tones": ["one"]})
    assert r.status == 200 and r.json()["acknowledged"] is True


def call_incident(call) -> str:
    from urllib.parse import parse_qs

    return parse_qs(urlsplit(call.callback_uri).query)["incidentId"][0]


def test_the_secret_expires_when_the_call_ends(notify_app):
    app = notify_app
    app.ingest(10)
    call = next(c for c in app.fake.calls() if c.targets == ["+15555550100"])
    assert app.callback(call, "CallConnected").status == 200
    assert app.callback(call, "CallDisconnected").status == 200
    # the callback URL (with its secret) of an ended call is worthless: a replayed key press is refused
    r = app.callback(call, "RecognizeCompleted", recognitionType="dtmf", dtmfResult={"tones": ["one"]})
    assert r.status == 401, r.text
    assert app.incident(call_incident(call))["acknowledgedAt"] is None
