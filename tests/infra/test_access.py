"""Issue 12 (item 2): operator sign-in (authsettingsV2), the operator app registration
script, and one named function key per machine caller."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from pycep import BicepParser

from tests.infra.conftest import SOC_TENANT

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"

_parser = BicepParser()


def parse(path: Path) -> dict:
    return _parser.parse(file_path=path)


def _main() -> dict:
    return parse(INFRA / "main.bicep")


def _module(doc: dict, path: str) -> dict:
    (module,) = [m for m in doc["modules"].values() if m["detail"]["path"] == path]
    return module["config"]


# --------------------------------------------------------------------------- sign-in
def test_operator_sign_in_lets_machine_callers_through_to_the_code():
    doc = parse(INFRA / "app" / "auth-settings.bicep")
    (auth,) = [r["config"] for r in doc["resources"].values() if r["type"] == "Microsoft.Web/sites/config"]
    assert auth["name"] == "authsettingsV2"
    props = auth["properties"]
    assert props["platform"]["enabled"] is True
    assert props["globalValidation"] == {"requireAuthentication": True, "unauthenticatedClientAction": "AllowAnonymous"}
    aad = props["identityProviders"]["azureActiveDirectory"]
    assert aad["enabled"] is True and aad["registration"]["clientId"] == "operatorAppClientId"
    assert "tenant().tenantId" in json.dumps(aad["registration"]["openIdIssuer"]) or "tenantId" in json.dumps(
        aad["registration"]["openIdIssuer"]
    )
    assert props["login"]["tokenStore"]["enabled"] is False
    assert props["httpSettings"]["requireHttps"] is True
    # The comment says why anonymous requests pass and who enforces roles.
    text = (INFRA / "app" / "auth-settings.bicep").read_text()
    assert "X-MS-CLIENT-PRINCIPAL" in text and "/api/callbacks/acs" in text


def test_sign_in_is_on_only_with_an_operator_app():
    main = _main()
    assert main["parameters"]["operatorAppClientId"]["default"] == ""
    module = next(m for m in main["modules"].values() if m["detail"]["path"] == "app/auth-settings.bicep")
    assert "operatorAppClientId" in json.dumps(module["config"]["condition"])


def test_operator_auth_is_entra_in_azure():
    """OPERATOR_AUTH (docs/spec/settings.md, issue 12): Azure always enforces sign-in and app roles;
    `function-key` is for local runs only (local.settings.example.json)."""
    settings = _module(_main(), "app/app-settings.bicep")["params"]["appSettings"]
    assert settings["OPERATOR_AUTH"] == "entra"


# --------------------------------------------------------------------------- named keys
def _caller_key_vars() -> tuple[list[dict], dict]:
    variables = _main()["variables"]
    return variables["wiringCallerKeys"]["value"], variables["siemCallerKeys"]["value"]


def _route_of(function_name: str) -> str:
    sources = "\n".join(p.read_text() for p in (ROOT / "functions").glob("*.py"))
    match = re.search(
        rf'@bp\.route\(route="([^"]+)"[^)]*auth_level=func\.AuthLevel\.FUNCTION\)(?:\s*@[^\n]+)*\s*(?:async )?def {function_name}\(',
        sources,
    )
    assert match, f"{function_name} is not a function-key route in functions/"
    return match.group(1)


def test_each_machine_caller_has_its_own_key_on_its_own_route():
    wiring, siem = _caller_key_vars()
    by_caller = {k["caller"]: k for k in wiring}
    assert set(by_caller) == {"sentinel-playbook", "defender-workflow-automation"}
    assert _route_of(by_caller["sentinel-playbook"]["functionName"]) == "incidents/sentinel"
    assert _route_of(by_caller["defender-workflow-automation"]["functionName"]) == "alerts/defender"
    # SIEM forwarders: one key each, on the generic route.
    siem_text = json.dumps(siem)
    assert "siemForwarderNames" in siem_text and "ingest_generic_alert" in siem_text
    assert _route_of("ingest_generic_alert") == "alerts"
    secrets = [json.dumps(k["secretName"]) for k in wiring]
    keys = [k["keyName"] for k in wiring]
    assert len(set(secrets)) == len(secrets) and len(set(keys)) == len(keys)
    text = (INFRA / "main.bicep").read_text()
    assert "var callerKeys = concat(wiringCallerKeys, siemCallerKeys)" in text
    assert "output callerKeys array = callerKeys" in text


def test_each_logic_app_reads_its_own_secret():
    params = _module(_main(), "app/playbooks.bicep")["params"]

    def accessor(index: int) -> dict:
        return {
            "operator": {
                "type": "property_accessor",
                "operands": {
                    "operand_1": {
                        "operator": {
                            "type": "index_accessor",
                            "operands": {"operand_1": "wiringCallerKeys", "operand_2": index},
                        }
                    },
                    "operand_2": "secretName",
                },
            }
        }

    wiring, _ = _caller_key_vars()
    assert [k["caller"] for k in wiring] == ["sentinel-playbook", "defender-workflow-automation"]
    assert params["sentinelKeySecretName"] == accessor(0)
    assert params["defenderKeySecretName"] == accessor(1)
    playbooks = parse(INFRA / "app" / "playbooks.bicep")["resources"]
    fed = {
        name: r["config"]["properties"]["parameters"]["ingestKeySecretName"]["value"]
        for name, r in playbooks.items()
        if r["type"] == "Microsoft.Logic/workflows"
    }
    assert fed == {"sentinelPlaybook": "sentinelKeySecretName", "defenderForwarder": "defenderKeySecretName"}


CALLER_KEYS = [
    {"caller": "sentinel-playbook", "functionName": "ingest_sentinel_incident", "keyName": "sentinel-playbook",
     "secretName": "k-sentinel-playbook"},
    {"caller": "defender-workflow-automation", "functionName": "ingest_defender_alert",
     "keyName": "defender-workflow-automation", "secretName": "k-defender-workflow-automation"},
    {"caller": "siem-splunk", "functionName": "ingest_generic_alert", "keyName": "siem-splunk",
     "secretName": "k-siem-splunk"},
]  # fmt: skip
OUTPUTS = {"resourceGroupName": "rg-x", "functionAppName": "func-x", "keyVaultName": "kv-x", "callerKeys": CALLER_KEYS}


def _current(data, secret):
    return data["secrets"][secret][-1]


def test_caller_keys_script_creates_each_key_into_its_own_secret_and_is_idempotent(fake_az_for):
    run = fake_az_for("set-caller-keys.sh", OUTPUTS)
    proc, data = run("--deployment", "soc-prod")
    assert proc.returncode == 0, proc.stderr
    for row in CALLER_KEYS:
        key = data["keys"][f"{row['functionName']}/{row['keyName']}"]
        assert _current(data, row["secretName"])["value"] == key
        assert key not in proc.stdout and key not in proc.stderr, "a key value reached the terminal"
    proc, again = run("--deployment", "soc-prod")
    assert proc.returncode == 0 and proc.stdout.count("already set") == 3
    assert again["secrets"] == data["secrets"] and again["keys"] == data["keys"]


def test_rotating_or_revoking_one_caller_leaves_the_others_alone(fake_az_for):
    run = fake_az_for("set-caller-keys.sh", OUTPUTS)
    _, before = run("--deployment", "soc-prod")
    proc, rotated = run("--deployment", "soc-prod", "--rotate", "--caller", "siem-splunk")
    assert proc.returncode == 0, proc.stderr
    assert _current(rotated, "k-siem-splunk")["value"] != _current(before, "k-siem-splunk")["value"]
    assert _current(rotated, "k-siem-splunk")["value"] == rotated["keys"]["ingest_generic_alert/siem-splunk"]
    for other in ("k-sentinel-playbook", "k-defender-workflow-automation"):
        assert rotated["secrets"][other] == before["secrets"][other]
    proc, revoked = run("--deployment", "soc-prod", "--revoke", "--caller", "defender-workflow-automation")
    assert proc.returncode == 0, proc.stderr
    assert "ingest_defender_alert/defender-workflow-automation" not in revoked["keys"]
    assert _current(revoked, "k-defender-workflow-automation")["enabled"] is False
    assert _current(revoked, "k-sentinel-playbook")["enabled"] is True
    assert "ingest_sentinel_incident/sentinel-playbook" in revoked["keys"]


def test_caller_keys_script_refuses_wholesale_revocation_and_unknown_callers(fake_az_for):
    run = fake_az_for("set-caller-keys.sh", OUTPUTS)
    proc, data = run("--deployment", "soc-prod", "--revoke")
    assert proc.returncode != 0 and "--caller" in proc.stderr and not data["keys"]
    proc, _ = run("--deployment", "soc-prod", "--caller", "nobody")
    assert proc.returncode != 0 and "unknown caller" in proc.stderr
    proc, data = run("--deployment", "soc-prod", "--dry-run")
    assert proc.returncode == 0 and not data["secrets"] and proc.stdout.count("would set") == 3


# --------------------------------------------------------------------------- operator app
def test_operator_app_script_creates_the_three_roles_and_is_idempotent(fake_az_for):
    run = fake_az_for("create-operator-app.sh")
    proc, data = run("--redirect-host", "func-x.azurewebsites.net")
    assert proc.returncode == 0, proc.stderr
    (app,) = data["apps"]
    assert app["signInAudience"] == "AzureADMyOrg"
    roles = {r["value"]: r for r in app["appRoles"]}
    assert set(roles) == {"Responder", "Approver", "Auditor"}
    assert all(r["allowedMemberTypes"] == ["User"] and r["isEnabled"] for r in roles.values())
    assert all(uuid.UUID(r["id"]) for r in roles.values())
    assert app["identifierUris"] == [f"api://{app['appId']}"]
    assert app["redirectUris"] == ["https://func-x.azurewebsites.net/.auth/login/aad/callback"]
    (sp,) = data["sps"]
    assert sp["appId"] == app["appId"] and sp["appRoleAssignmentRequired"] is True
    proc, again = run("--redirect-host", "func-x.azurewebsites.net")
    assert proc.returncode == 0, proc.stderr
    assert len(again["apps"]) == 1 and len(again["sps"]) == 1
    assert {r["value"]: r["id"] for r in again["apps"][0]["appRoles"]} == {v: r["id"] for v, r in roles.items()}


def test_operator_app_script_checks_its_input(fake_az_for):
    run = fake_az_for("create-operator-app.sh")
    proc, data = run()
    assert proc.returncode != 0 and "--redirect-host" in proc.stderr
    proc, data = run("--redirect-host", "x.example", "--dry-run")
    assert proc.returncode == 0 and data["apps"] == [] and "would create" in proc.stdout


# --------------------------------------------------------------------------- SOC app (issue 11)
PRINCIPAL = "22222222-2222-2222-2222-222222222222"


def _permissions(app) -> set[str]:
    names = ["User.Read.All", "User.EnableDisableAccount.All", "User.RevokeSessions.All",
             "Application.ReadWrite.OwnedBy", "Application.ReadWrite.All", "Mail.Send", "User.ReadWrite.All"]  # fmt: skip
    by_id = {str(uuid.uuid5(uuid.NAMESPACE_URL, n)): n for n in names}
    (graph,) = app["requiredResourceAccess"]
    assert graph["resourceAppId"] == "00000003-0000-0000-c000-000000000000"
    assert all(a["type"] == "Role" for a in graph["resourceAccess"]), "application permissions only"
    return {by_id[a["id"]] for a in graph["resourceAccess"]}


def test_soc_app_script_multi_tenant_least_graph_permissions_and_federated_identity(fake_az_for):
    run = fake_az_for("create-soc-app.sh", {"appIdentityPrincipalId": PRINCIPAL})
    proc, data = run("--deployment", "soc-prod")
    assert proc.returncode == 0, proc.stderr
    (app,) = data["apps"]
    assert app["signInAudience"] == "AzureADMultipleOrgs"
    assert _permissions(app) == {
        "User.Read.All",
        "User.EnableDisableAccount.All",
        "User.RevokeSessions.All",
        "Application.ReadWrite.OwnedBy",
    }
    (fic,) = app["fics"]
    assert fic["issuer"] == f"https://login.microsoftonline.com/{SOC_TENANT}/v2.0"
    assert fic["subject"] == PRINCIPAL
    assert fic["audiences"] == ["api://AzureADTokenExchange"]
    assert f"https://login.microsoftonline.com/{{partnerTenant}}/adminconsent?client_id={app['appId']}" in proc.stdout
    assert f"SOC_APP_CLIENT_ID={app['appId']}" in proc.stdout and f"SOC_TENANT_ID={SOC_TENANT}" in proc.stdout
    proc, again = run("--deployment", "soc-prod")
    assert proc.returncode == 0, proc.stderr
    assert len(again["apps"]) == 1 and len(again["apps"][0]["fics"]) == 1 and len(again["sps"]) == 1
    assert "already present" in proc.stdout


def test_soc_app_script_options(fake_az_for):
    run = fake_az_for("create-soc-app.sh")
    proc, data = run("--principal-id", PRINCIPAL, "--dry-run")
    assert proc.returncode == 0 and data["apps"] == [] and "would create" in proc.stdout
    proc, data = run("--principal-id", PRINCIPAL, "--all-service-principals")
    assert proc.returncode == 0 and "WARNING" in proc.stderr
    assert "Application.ReadWrite.All" in _permissions(data["apps"][0])
    # A new identity replaces the credential of the old one.
    other = "33333333-3333-3333-3333-333333333333"
    proc, data = run("--principal-id", other, "--no-service-principals")
    assert proc.returncode == 0, proc.stderr
    assert [f["subject"] for f in data["apps"][0]["fics"]] == [other]
    assert _permissions(data["apps"][0]) == {
        "User.Read.All",
        "User.EnableDisableAccount.All",
        "User.RevokeSessions.All",
    }
    proc, _ = run("--principal-id", "not-a-guid")
    assert proc.returncode != 0 and "not a GUID" in proc.stderr
