"""Issue 16: Teams channels — secret names in the registry, URLs in Key Vault, cards posted apart from email
and calls, retried and evidenced (real azure-keyvault-secrets and requests against the HTTPS fake)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest

from shared.errors import ConfigurationError
from tests.fixtures.app import ROOT
from tests.notify.conftest import CONTOSO_EMAILS

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "adaptive-card-1.5.0.json").read_text(encoding="utf-8"))
PARTNER_SECRET, SOC_SECRET = "teams-contoso", "teams-soc"


def _registry(tmp_path: Path, partner_secret: str | None = PARTNER_SECRET, soc_secret: str | None = SOC_SECRET) -> str:
    doc = json.loads((ROOT / "config/partners.json").read_text())
    if partner_secret:
        doc["partners"][0]["teamsWebhookSecret"] = partner_secret
    if soc_secret:
        doc["soc"]["teamsWebhookSecret"] = soc_secret
    path = tmp_path / "partners.json"
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.fixture
def teams_app(notify_app, tmp_path):
    """The notify harness with contoso's and the SOC's Teams channels: URLs in the fake's vault."""
    app = notify_app
    urls = {"contoso": app.fake.teams_webhook("contoso"), "soc": app.fake.teams_webhook("soc")}
    app.fake.set_secret(PARTNER_SECRET, urls["contoso"])
    app.fake.set_secret(SOC_SECRET, urls["soc"])
    app.configure(PARTNERS_FILE=_registry(tmp_path))
    app.urls = urls
    return app


def _evidence(app, incident_id: str, kind: str) -> list[dict]:
    return [e for e in app.incident(incident_id)["timeline"] if e["eventType"] == kind]


def _no_url_anywhere(app, incident_id: str) -> None:
    """The webhook URLs (their sig) are in no evidence, row or incident document."""
    doc = json.dumps(app.incident(incident_id))
    for url in app.urls.values():
        sig = url.rsplit("sig=", 1)[1]
        assert sig not in doc and url not in doc


# -- the registry and the settings -----------------------------------------------------------------


def test_the_registry_names_a_secret_never_a_url(tmp_path):
    from shared.partners import PartnerRegistry

    url = "https://prod.westeurope.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=SECRETSIG"
    path = _registry(tmp_path, partner_secret=url)
    with pytest.raises(ConfigurationError) as err:
        PartnerRegistry.load(path)
    message = str(err.value)
    assert "PARTNERS_FILE" in message and "partners.0.teamsWebhookSecret" in message and "not the URL" in message
    assert "SECRETSIG" not in message  # the URL is a secret: never echoed into logs
    with pytest.raises(ConfigurationError, match=r"soc\.teamsWebhookSecret: .*secret name"):
        PartnerRegistry.load(_registry(tmp_path, partner_secret=None, soc_secret="teams soc!"))
    registry = PartnerRegistry.load(_registry(tmp_path))
    assert registry.get("contoso").teamsWebhookSecret == PARTNER_SECRET
    assert registry.soc.teamsWebhookSecret == SOC_SECRET


@pytest.mark.parametrize(
    "value", ["http://kv.vault.azure.net", "https://kv.vault.azure.net/secrets/x", "https://u:p@kv.vault.azure.net"]
)
def test_key_vault_url_must_be_the_vaults_https_url(value):
    from shared.settings import Settings

    with pytest.raises(ConfigurationError, match="KEY_VAULT_URL"):
        Settings.from_env({"KEY_VAULT_URL": value})
    assert Settings.from_env({"KEY_VAULT_URL": "https://kv.vault.azure.net/"}).key_vault_url == (
        "https://kv.vault.azure.net"
    )


# -- a new P1: email, call, then the cards -------------------------------------------------------------


def test_a_new_p1_is_posted_to_the_partner_and_the_soc_channels_after_email_and_call(teams_app):
    app = teams_app
    incident_id, _ = app.defender_vm_incident()
    [mail] = app.fake.sent_mail()
    assert app.fake.calls(), "the P1's first call was placed"
    posts = {p.channel: p for p in app.fake.teams_posts()}
    assert set(posts) == {"contoso", "soc"}
    for post in posts.values():
        card = post.card
        jsonschema.Draft6Validator(SCHEMA).validate(card)
        assert post.message["type"] == "message" and post.message["attachments"][0]["contentUrl"] is None
        assert card["body"][0]["items"][0]["text"].startswith("P1 Critical")
        assert card["actions"][0]["url"].endswith(f"/api/console/incidents/{incident_id}")
    # Ordering: the email went out and the call was placed before any card was posted.
    first_card = min(r.timestamp for r in app.fake.requests(api="teams"))
    assert app.fake.last_request("POST", "sendMail").timestamp < first_card
    assert app.fake.requests("POST", "/calling/callConnections", api="acs")[0].timestamp < first_card
    # Key Vault: read with a token for https://vault.azure.net, after its challenge.
    reads = app.fake.requests("GET", "/secrets/", api="keyvault")
    assert {r.path for r in reads if r.status == 200} == {f"/secrets/{PARTNER_SECRET}", f"/secrets/{SOC_SECRET}"}
    assert all(r.token_resource == "https://vault.azure.net" for r in reads if r.status == 200)
    assert any(r.status == 401 and not r.header("Authorization") for r in reads)  # the challenge round
    # Evidence: sent, per channel, with the secret's name and the URL's hash, never the URL.
    sent = _evidence(app, incident_id, "notification.teams.sent")
    assert {e["data"]["target"] for e in sent} == {"partner", "soc"}
    for e in sent:
        url = app.urls["contoso" if e["data"]["target"] == "partner" else "soc"]
        assert e["data"]["urlSha256"] == hashlib.sha256(url.encode()).hexdigest()
        assert e["data"]["secretName"] in (PARTNER_SECRET, SOC_SECRET) and e["data"]["httpStatus"] == 202
    _no_url_anywhere(app, incident_id)
    rows = [r for r in app.incident(incident_id)["notifications"] if r.get("channel") == "teams"]
    assert {r["status"] for r in rows} == {"sent"} and len(rows) == 2
    assert mail.to[: len(CONTOSO_EMAILS)] == CONTOSO_EMAILS


def test_a_replayed_card_step_never_posts_twice_and_the_secret_is_read_once(teams_app):
    app = teams_app
    incident_id, _ = app.defender_vm_incident()
    assert len(app.fake.teams_posts()) == 2
    teams = app.context.notifications.teams
    teams.deliver_incident(incident_id)
    app.runtime.timer("teams_delivery")
    assert len(app.fake.teams_posts()) == 2
    app.ingest(8, alert_id="p2-1", title="Second incident")  # P2: cards to both channels again
    assert len(app.fake.teams_posts()) == 4
    reads = [r for r in app.fake.requests("GET", "/secrets/", api="keyvault") if r.status == 200]
    assert len(reads) == 2, "each secret read once, then cached"


def test_p3_p4_get_no_card_and_no_channel_means_no_card(notify_app, tmp_path):
    app = notify_app
    app.fake.set_secret(SOC_SECRET, app.fake.teams_webhook("soc"))
    app.configure(PARTNERS_FILE=_registry(tmp_path, partner_secret=None))
    p3 = app.ingest(5, alert_id="p3")
    assert app.fake.teams_posts() == []
    assert not _evidence(app, p3, "notification.teams.sent")
    app.ingest(8, alert_id="p2")
    assert [p.channel for p in app.fake.teams_posts()] == ["soc"]  # no partner channel: the SOC's only


def test_without_key_vault_the_card_is_evidenced_as_skipped(notify_app, tmp_path):
    app = notify_app
    app.configure(PARTNERS_FILE=_registry(tmp_path), KEY_VAULT_URL=None)
    app._monkeypatch.setenv("KEY_VAULT_URL", "")
    from shared import runtime

    runtime.reset()
    incident_id = app.ingest(8, alert_id="p2")
    skipped = _evidence(app, incident_id, "notification.teams.skipped")
    assert {e["data"]["target"] for e in skipped} == {"partner", "soc"}
    assert "KEY_VAULT_URL" in skipped[0]["data"]["reason"]
    assert app.fake.sent_mail() and app.fake.teams_posts() == []


# -- Teams failing never holds up email or calls ----------------------------------------------------------


def test_a_hanging_then_failing_teams_never_delays_email_or_call_and_is_retried(teams_app, monkeypatch):
    from shared.adapters import teams_webhook

    app = teams_app
    monkeypatch.setattr(teams_webhook, "TIMEOUT", (1.0, 1.0))
    app.fake.inject("POST", "/powerautomate/", delay_seconds=4, api="teams")  # hangs past the timeout
    app.fake.inject("POST", "/powerautomate/", 503, headers={"Retry-After": "120"}, api="teams")
    incident_id, _ = app.defender_vm_incident()
    # Email and first call went out, and not after the Teams posts (which waited on their timeout).
    [mail_req] = app.fake.requests("POST", "sendMail")
    [call_req, *_] = app.fake.requests("POST", "/calling/callConnections", api="acs")
    teams_reqs = app.fake.requests("POST", "/powerautomate/", api="teams")
    assert len(teams_reqs) == 2 and app.fake.teams_posts() == []
    assert mail_req.timestamp < teams_reqs[0].timestamp
    assert call_req.timestamp < teams_reqs[0].timestamp + 0.9, "the call never waited for Teams' timeout"
    runbook = app.durable.activity_calls(instance_id=f"runbook-{incident_id}-1")
    names = [c["name"] for c in runbook]
    assert names.index("notify_incident") < names.index("start_call_escalation") < names.index("post_teams_cards")
    # issue 14: each emergency number's pager places the calls
    first_calls = [c for c in app.durable.activity_calls("place_contact_call") if c["result"]["attempted"]]
    notify = next(c for c in runbook if c["name"] == "notify_incident")
    assert first_calls and first_calls[0]["time"] == notify["time"], "the first call is not pushed back by Teams"
    assert app.durable.status(f"runbook-{incident_id}-1")["runtimeStatus"] == "Completed"
    failed = _evidence(app, incident_id, "notification.teams.failed")
    assert len(failed) == 2 and not any(e["data"]["final"] for e in failed)
    statuses = sorted(str(e["data"]["error"]["status"]) for e in failed)
    assert statuses == ["503", "None"]  # one timed out, one refused
    assert any("did not answer in time" in e["summary"] for e in failed)
    from datetime import datetime

    waits = {
        str(e["data"]["error"]["status"]): (
            datetime.fromisoformat(e["data"]["nextTryAt"].replace("Z", "+00:00"))
            - datetime.fromisoformat(e["occurredAt"].replace("Z", "+00:00"))
        ).total_seconds()
        for e in failed
    }
    assert 119 <= waits["503"] <= 121 and 59 <= waits["None"] <= 61  # Retry-After honoured, else 1 minute
    _no_url_anywhere(app, incident_id)
    # Not due yet: the timer leaves them; once due (Retry-After 120 s honoured), they go out.
    teams = app.context.notifications.teams
    app.runtime.timer("teams_delivery")
    assert app.fake.teams_posts() == []
    later = teams.context.clock() + timedelta(minutes=3)
    monkeypatch.setattr(teams.context, "clock", lambda: later)
    report = teams.deliver_due(later)
    assert report["posted"] == 2 and {p.channel for p in app.fake.teams_posts()} == {"contoso", "soc"}
    sent = _evidence(app, incident_id, "notification.teams.sent")
    assert sorted(e["data"]["try"] for e in sent) == [2, 2]


def test_a_channel_that_keeps_failing_is_given_up_after_the_last_try_and_says_so(teams_app, monkeypatch):
    from shared.notify import teams as teams_module

    app = teams_app
    app.fake.inject("POST", "/powerautomate/", 500, times=100, api="teams")
    incident_id = app.ingest(8, alert_id="p2")
    teams = app.context.notifications.teams
    now = teams.context.clock()
    for i in range(teams_module.MAX_TRIES + 2):
        moment = now + timedelta(minutes=20 * (i + 1))
        monkeypatch.setattr(teams.context, "clock", lambda moment=moment: moment)
        teams.deliver_due(moment)
    failed = _evidence(app, incident_id, "notification.teams.failed")
    assert len(failed) == 2 * teams_module.MAX_TRIES
    assert sum(e["data"]["final"] for e in failed) == 2
    rows = [r for r in app.incident(incident_id)["notifications"] if r.get("channel") == "teams"]
    assert {r["status"] for r in rows} == {"gave-up"} and {r["tries"] for r in rows} == {teams_module.MAX_TRIES}
    assert len(app.fake.requests("POST", "/powerautomate/", api="teams")) == 2 * teams_module.MAX_TRIES


def test_a_missing_secret_is_final_at_once(teams_app):
    app = teams_app
    app.fake._secrets.pop(PARTNER_SECRET)  # the vault lost the partner's secret
    incident_id = app.ingest(8, alert_id="p2")
    failed = _evidence(app, incident_id, "notification.teams.failed")
    assert [e["data"]["target"] for e in failed] == ["partner"] and failed[0]["data"]["final"] is True
    assert "does not exist" in failed[0]["summary"]
    assert [p.channel for p in app.fake.teams_posts()] == ["soc"]


# -- acknowledgements and failures of approval runs ------------------------------------------------------


def test_an_acknowledgement_card_is_posted_by_the_timer(teams_app):
    app = teams_app
    incident_id = app.ingest(8, alert_id="p2")
    assert len(app.fake.teams_posts()) == 2
    r = app.post(f"/api/incidents/{incident_id}/ack", {"actor": "dana.reyes@contoso.example", "note": "on it"})
    assert r.status in (200, 202), r.text
    assert len(app.fake.teams_posts()) == 2  # the ack route does not wait on Teams
    app.runtime.timer("teams_delivery")
    acks = [p for p in app.fake.teams_posts() if "acknowledged" in p.card["body"][0]["items"][0]["text"]]
    assert {p.channel for p in acks} == {"contoso", "soc"}
    texts = json.dumps(acks[0].card)
    assert "dana.reyes@contoso.example" in texts and "Acknowledged by " in texts
    jsonschema.Draft6Validator(SCHEMA).validate(acks[0].card)


def test_a_card_that_cannot_be_built_is_a_failed_try_and_the_timer_goes_on(teams_app, monkeypatch):
    from shared.notify import teams as teams_module

    app = teams_app
    app.fake.inject("POST", "/powerautomate/", 500, times=4, api="teams")
    first = app.ingest(8, alert_id="p2-a")
    second = app.ingest(8, alert_id="p2-b", title="Another one")
    assert app.fake.teams_posts() == []
    real, calls = teams_module.build_card, []

    def flaky(ctx):
        calls.append(ctx.incident.id)
        if len(calls) == 1:
            raise KeyError("broken incident document")
        return real(ctx)

    monkeypatch.setattr(teams_module, "build_card", flaky)
    teams = app.context.notifications.teams
    later = teams.context.clock() + timedelta(minutes=5)
    monkeypatch.setattr(teams.context, "clock", lambda: later)
    report = teams.deliver_due(later)
    assert report["posted"] == 3 and report["failed"] == 1
    broken = [e for i in (first, second) for e in _evidence(app, i, "notification.teams.failed")]
    assert any("could not be built (KeyError)" in e["summary"] and not e["data"]["final"] for e in broken)
    rows = [r for i in (first, second) for r in app.incident(i)["notifications"] if r.get("channel") == "teams"]
    assert sorted(r["status"] for r in rows) == ["failed", "sent", "sent", "sent"]


def test_the_webhook_url_reaches_no_log_even_at_debug(teams_app, caplog):
    import logging

    app = teams_app
    with caplog.at_level(logging.DEBUG):
        app.ingest(8, alert_id="p2-log")
    assert len(app.fake.teams_posts()) == 2
    assert "/powerautomate/" in caplog.text  # urllib3 did log the request line …
    for url in app.urls.values():
        assert url.rsplit("sig=", 1)[1] not in caplog.text  # … without its signature
