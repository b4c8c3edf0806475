"""Issue 16: the fake's Key Vault (challenge, audience, 404) and Teams Workflows webhooks (sig, body shape)."""

from __future__ import annotations

import requests

from devtools.fakes.key_vault import KEY_VAULT_AUDIENCE, KEY_VAULT_TENANT


def test_key_vault_challenges_then_wants_a_vault_token(fake, fake_env):
    url = f"{fake.url}/secrets/teams-x?api-version=2025-07-01"
    fake.set_secret("teams-x", "https://example.invalid/hook")
    bare = requests.get(url, timeout=5)
    assert bare.status_code == 401
    challenge = bare.headers["WWW-Authenticate"]
    assert f'resource="{KEY_VAULT_AUDIENCE}"' in challenge and KEY_VAULT_TENANT in challenge
    wrong = fake.identity.issue_token(fake.url)  # a token for another audience
    assert requests.get(url, headers={"Authorization": f"Bearer {wrong.token}"}, timeout=5).status_code == 401
    good = fake.identity.issue_token(KEY_VAULT_AUDIENCE)
    got = requests.get(url, headers={"Authorization": f"Bearer {good.token}"}, timeout=5)
    assert got.status_code == 200 and got.json()["value"] == "https://example.invalid/hook"
    missing = requests.get(url.replace("teams-x", "nope"), headers={"Authorization": f"Bearer {good.token}"}, timeout=5)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "SecretNotFound"
    no_version = requests.get(url.split("?")[0], headers={"Authorization": f"Bearer {good.token}"}, timeout=5)
    assert no_version.status_code == 400


def test_teams_webhook_checks_its_sig_and_the_message_shape(fake, fake_env):
    hook = fake.teams_webhook("ops")
    card = {"type": "AdaptiveCard", "version": "1.5", "body": []}
    message = {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }
    assert requests.post(hook, json=message, timeout=5).status_code == 202
    assert requests.post(hook.replace("sig=", "sig=x"), json=message, timeout=5).status_code == 401
    assert requests.post(hook, json={"text": "hello"}, timeout=5).status_code == 400
    [post] = fake.teams_posts("ops")
    assert post.card == card and fake.last_request("POST", "/powerautomate/").api == "teams"
    fake.inject("POST", "/powerautomate/", 429, headers={"Retry-After": "30"}, api="teams")
    throttled = requests.post(hook, json=message, timeout=5)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "30"
