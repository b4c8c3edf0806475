"""Infrastructure checks (issue 6): Bicep parses, checkov passes, settings match the code,
the wiring is keyless, and the Graph permissions script does what docs/deploy.md says.

There is no Bicep CLI here, so these tests stand in for `bicep build`: they parse every
file with pycep-parser 0.7.1 (this venv) and 0.5.1 (checkov's venv), and check what a
compiler would catch between files (module parameters, outputs, target scopes).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import stat
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from pycep import BicepParser

from shared.settings import SETTING_NAMES, SETTINGS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
SCRIPTS = ROOT / "scripts"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
PARAM_FILES = sorted(INFRA.glob("*.bicepparam"))
WORKFLOWS = INFRA / "app" / "workflows"

# --------------------------------------------------------------------------- settings tables
# Settings the Functions host (not shared/settings.py) reads, as they appear in Azure.
# AzureWebJobsStorage is a connection string locally; in Azure it is the identity-based
# form below (no key). Application Insights is configured for Entra-only ingestion.
HOST_READ_IN_AZURE: dict[str, str] = {
    "AzureWebJobsStorage__blobServiceUri": "AzureWebJobsStorage",
    "AzureWebJobsStorage__queueServiceUri": "AzureWebJobsStorage",
    "AzureWebJobsStorage__tableServiceUri": "AzureWebJobsStorage",
    "AzureWebJobsStorage__credential": "AzureWebJobsStorage",
    "AzureWebJobsStorage__clientId": "AzureWebJobsStorage",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "host telemetry (endpoint locator; local auth is off)",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "host telemetry: Entra ID authentication with the app identity",
    "PYTHON_THREADPOOL_THREAD_COUNT": "the Python worker's threads for sync functions (issue 15)",
}
# Settings the code reads only when running locally; Azure uses the named replacement.
LOCAL_ONLY: dict[str, str] = {
    "EvidenceStorage": "EvidenceStorage__tableServiceUri",
}
# Companions of an identity-based connection. shared/settings.py does not read them (the
# code authenticates with AZURE_CLIENT_ID); they complete the `EvidenceStorage` connection
# in the Functions identity-connection convention, so a binding or SDK helper that resolves
# that connection uses the user-assigned identity rather than failing over to another.
IDENTITY_CONNECTION_COMPANIONS: dict[str, str] = {
    "EvidenceStorage__credential": "managedidentity",
    "EvidenceStorage__clientId": "client id of the app identity",
}
# Must never be set: Flex Consumption rejects the first two (runtime and version live in
# functionAppConfig.runtime), the rest are key-based or for other plans.
FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "AzureWebJobsStorage",
    "EvidenceStorage",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
}


# --------------------------------------------------------------------------- helpers
_parser = BicepParser()
_parsed: dict[Path, dict] = {}


def parse(path: Path) -> dict:
    if path not in _parsed:
        _parsed[path] = _parser.parse(file_path=path)
    return _parsed[path]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def description_of(decorators: list[dict]) -> str | None:
    for decorator in decorators or []:
        if decorator.get("type") == "description":
            return decorator.get("argument")
    return None


def module_entries(doc: dict):
    """(symbol, module path, config) for every module; loops unwrapped."""
    for symbol, module in (doc.get("modules") or {}).items():
        config = module["config"]
        while "config" in config and ("loop_type" in config or "condition" in config):
            config = config["config"]
        yield symbol, module["detail"]["path"], config


def target_scope(doc: dict) -> str:
    return ((doc.get("globals") or {}).get("scope") or {}).get("value", "resourceGroup")


def app_settings_in_main() -> dict:
    doc = parse(INFRA / "main.bicep")
    found = [cfg for _, path, cfg in module_entries(doc) if path == "app/app-settings.bicep"]
    assert len(found) == 1, "main.bicep must call app/app-settings.bicep exactly once"
    settings = found[0]["params"]["appSettings"]
    assert isinstance(settings, dict), "appSettings must be an object literal in main.bicep"
    return settings


# --------------------------------------------------------------------------- parsing
def test_there_is_infrastructure_to_check():
    assert (INFRA / "main.bicep") in BICEP_FILES
    assert len(BICEP_FILES) >= 10
    assert {p.name for p in PARAM_FILES} == {"main.dev.bicepparam", "main.prod.bicepparam"}


@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_bicep_parses_with_pycep(path):
    doc = parse(path)
    assert doc.get("resources") or doc.get("modules"), f"{rel(path)} declares nothing"


# --------------------------------------------------------------------------- checkov
@pytest.fixture(scope="module")
def checkov_report():
    proc = subprocess.run(
        ["bash", str(SCRIPTS / "checkov.sh"), "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"checkov printed no JSON (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if isinstance(report, list):  # several frameworks: keep bicep
        report = next(r for r in report if r.get("check_type") == "bicep")
    report["exit_code"] = proc.returncode
    return report


@pytest.mark.slow
def test_checkov_reads_every_file(checkov_report):
    results = checkov_report.get("results", {})
    assert checkov_report["summary"]["parsing_errors"] == 0, results.get("parsing_errors")
    assert checkov_report["summary"]["resource_count"] > 0
    # A file checkov cannot parse is only counted, never failed: prove that its own
    # parser (pycep-parser 0.5.1, in .venv-checkov) reads each file.
    venv_python = Path(os.environ.get("CHECKOV_VENV", ROOT / ".venv-checkov")) / "bin" / "python"
    probe = (
        "import sys, pathlib\n"
        "from pycep import BicepParser\n"
        "import importlib.metadata as m\n"
        "print(m.version('pycep-parser'))\n"
        "p = BicepParser()\n"
        "for f in sys.argv[1:]:\n"
        "    d = p.parse(file_path=pathlib.Path(f))\n"
        "    assert d.get('resources') or d.get('modules'), f\n"
        "    print('ok', f)\n"
    )
    proc = subprocess.run(
        [str(venv_python), "-c", probe, *map(str, BICEP_FILES)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0] == "0.5.1", "checkov is expected to pin pycep-parser 0.5.1"
    assert len([line for line in lines if line.startswith("ok ")]) == len(BICEP_FILES)


@pytest.mark.slow
def test_checkov_passes_with_justified_skips(checkov_report):
    results = checkov_report["results"]
    failed = [f"{c['check_id']} {c['resource']} {c['file_path']}" for c in results["failed_checks"]]
    assert not failed, "checkov failures:\n" + "\n".join(failed)
    assert checkov_report["exit_code"] == 0
    for check in results["skipped_checks"]:
        comment = (check["check_result"].get("suppress_comment") or "").strip()
        assert comment != "No comment provided" and len(comment) >= 40, (
            f"{check['check_id']} on {check['resource']} needs a real justification"
        )


@pytest.mark.slow
def test_no_stale_checkov_skips(checkov_report):
    """Every `checkov:skip` in infra/ suppresses a check that really ran on that resource."""
    skipped = Counter((c["file_abs_path"], c["check_id"]) for c in checkov_report["results"]["skipped_checks"])
    for path in BICEP_FILES:
        for match in re.finditer(r"checkov:skip=([A-Z0-9_]+)", path.read_text()):
            assert skipped[(str(path), match.group(1))], (
                f"{rel(path)}: skip of {match.group(1)} matches no check; remove it"
            )


# --------------------------------------------------------------------------- settings
def test_every_setting_the_code_reads_is_set_in_main_bicep():
    in_bicep = set(app_settings_in_main())
    code_read = {s.name for s in SETTINGS if not s.read_by_host}
    expected_from_code = code_read - set(LOCAL_ONLY)
    missing = expected_from_code - in_bicep
    assert not missing, f"settings the code reads but main.bicep does not set: {sorted(missing)}"
    for local_name, azure_name in LOCAL_ONLY.items():
        assert local_name in SETTING_NAMES, f"{local_name} is no longer a setting: update LOCAL_ONLY"
        assert azure_name in in_bicep, f"{local_name} is local-only, so {azure_name} must be set"


def test_every_setting_in_main_bicep_is_read_by_the_code_or_the_host():
    in_bicep = set(app_settings_in_main())
    code_read = {s.name for s in SETTINGS if not s.read_by_host}
    allowed = code_read | set(HOST_READ_IN_AZURE) | set(IDENTITY_CONNECTION_COMPANIONS)
    unread = in_bicep - allowed
    assert not unread, f"main.bicep sets settings nothing reads: {sorted(unread)}"
    assert not in_bicep & FORBIDDEN_SETTINGS, sorted(in_bicep & FORBIDDEN_SETTINGS)


def test_host_settings_are_all_mapped():
    """A setting declared as host-read must have its Azure (identity-based) form set."""
    in_bicep = set(app_settings_in_main())
    for spec in SETTINGS:
        if spec.read_by_host:
            azure_forms = {k for k, v in HOST_READ_IN_AZURE.items() if v == spec.name}
            assert azure_forms, f"host-read {spec.name} has no Azure form in HOST_READ_IN_AZURE"
            assert azure_forms <= in_bicep, sorted(azure_forms - in_bicep)
    assert set(HOST_READ_IN_AZURE) <= in_bicep


def test_identity_based_connections_use_the_user_assigned_identity():
    settings = app_settings_in_main()
    for prefix in ("AzureWebJobsStorage", "EvidenceStorage"):
        assert settings[f"{prefix}__credential"] == "managedidentity"
        assert settings[f"{prefix}__clientId"] == settings["AZURE_CLIENT_ID"]
    auth = settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert "Authorization=AAD" in json.dumps(auth)


def test_flex_consumption_runtime_is_python_311():
    doc = parse(INFRA / "app" / "function-app.bicep")
    plan = next(r for r in doc["resources"].values() if r["type"] == "Microsoft.Web/serverfarms")
    assert plan["config"]["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    site = next(r for r in doc["resources"].values() if r["type"] == "Microsoft.Web/sites")
    props = site["config"]["properties"]
    assert props["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    assert site["config"]["identity"]["type"] == "UserAssigned"
    assert props["functionAppConfig"]["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    policies = {
        r["config"]["name"]: r["config"]["properties"]["allow"]
        for r in doc["resources"].values()
        if r["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    }
    assert policies == {"ftp": False, "scm": False}


@pytest.mark.parametrize("name", ["host-storage.bicep", "evidence-storage.bicep"])
def test_storage_is_identity_only(name):
    doc = parse(INFRA / "core" / name)
    account = next(r for r in doc["resources"].values() if r["type"] == "Microsoft.Storage/storageAccounts")
    props = account["config"]["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["supportsHttpsTrafficOnly"] is True


def test_evidence_retention_protections():
    doc = parse(INFRA / "core" / "evidence-storage.bicep")
    types = Counter(r["type"] for r in doc["resources"].values())
    assert types["Microsoft.Authorization/locks"] == 1
    assert types["Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies"] == 1
    retention = doc["parameters"]["evidenceRetentionDays"]
    assert {"type": "min_value", "argument": 1096} in retention["decorators"]
    main = parse(INFRA / "main.bicep")["parameters"]["evidenceRetentionDays"]
    assert main["default"] >= 1096


# --------------------------------------------------------------------------- style and wiring
@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_parameters_and_outputs_are_described(path):
    doc = parse(path)
    for name, param in (doc.get("parameters") or {}).items():
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", name), f"{rel(path)}: {name} is not lowerCamelCase"
        description = description_of(param.get("decorators"))
        assert description, f"{rel(path)}: parameter {name} has no @description"
        if re.search(r"\bresource id\b", description, re.I) and param.get("type") == "string":
            assert name.endswith("ResourceId"), f"{rel(path)}: resource-id parameter {name} must end in ResourceId"
    for name, output in (doc.get("outputs") or {}).items():
        assert description_of(output.get("decorators")), f"{rel(path)}: output {name} has no @description"


@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_role_assignment_names_are_guid_of_scope_principal_role(path):
    for symbol, resource in (parse(path).get("resources") or {}).items():
        if resource["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        config = resource["config"].get("config", resource["config"])
        name = config["name"]
        assert isinstance(name, dict) and name.get("function", {}).get("type") == "guid", f"{rel(path)}:{symbol}"
        assert len(name["function"]["parameters"]) == 3, f"{rel(path)}:{symbol} guid(scope, principal, role)"
        # principalType avoids the replication race right after an identity is created.
        assert "principalType" in config["properties"], f"{rel(path)}:{symbol} has no principalType"


@pytest.mark.parametrize("path", BICEP_FILES, ids=rel)
def test_modules_are_called_with_their_parameters_and_scope(path):
    doc = parse(path)
    text = path.read_text()
    modules = {}
    for symbol, module_path, config in module_entries(doc):
        target = (path.parent / module_path).resolve()
        assert target.exists(), f"{rel(path)}: module {symbol} -> missing {module_path}"
        modules[symbol] = target
        callee = parse(target)
        declared = callee.get("parameters") or {}
        given = set(config.get("params") or {})
        unknown = given - set(declared)
        assert not unknown, f"{rel(path)}: {symbol} passes unknown parameters {sorted(unknown)}"
        required = {n for n, p in declared.items() if "default" not in p}
        assert required <= given, f"{rel(path)}: {symbol} misses {sorted(required - given)}"
        # Scope: no scope or subscription(...) from a subscription file needs a
        # subscription-scope module; a resource group scope needs a resourceGroup one.
        scope = config.get("scope")
        wants_subscription = (scope is None and target_scope(doc) == "subscription") or (
            isinstance(scope, dict) and scope.get("function", {}).get("type") == "subscription"
        )
        expected = "subscription" if wants_subscription else "resourceGroup"
        assert target_scope(callee) == expected, f"{rel(path)}: {symbol} targets {target_scope(callee)}"
    for symbol, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", text):
        assert symbol in modules, f"{rel(path)}: {symbol} is not a module"
        outputs = parse(modules[symbol]).get("outputs") or {}
        assert output in outputs, f"{rel(path)}: module {symbol} has no output {output}"


@pytest.mark.parametrize("path", PARAM_FILES, ids=rel)
def test_parameter_files_match_main_bicep(path):
    text = path.read_text()
    assert re.search(r"^using './main\.bicep'$", text, re.M)
    given = re.findall(r"^param (\w+) =", text, re.M)
    assert len(given) == len(set(given)), "a parameter is set twice"
    declared = parse(INFRA / "main.bicep")["parameters"]
    assert set(given) <= set(declared), sorted(set(given) - set(declared))
    required = {n for n, p in declared.items() if "default" not in p}
    assert required <= set(given), sorted(required - set(given))
    allowed_envs = next(d["argument"] for d in declared["environmentName"]["decorators"] if d["type"] == "allowed")
    env = re.search(r"^param environmentName = '(\w+)'", text, re.M).group(1)
    assert env in allowed_envs and path.name == f"main.{env}.bicepparam"
    # Tenant-specific ids come from the environment, never from the committed file.
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text, re.I)


SECURITY_ADMIN_ROLE_ID = "fb1c8493-542b-48eb-b624-b4c8fea62acd"


def test_issue_7_roles_are_parameterised():
    main = parse(INFRA / "main.bicep")["parameters"]
    assert main["grantSentinelResponder"]["type"] == "bool"
    assert main["grantDefenderAlertStateUpdate"]["type"] == "bool"
    sentinel = (INFRA / "app" / "sentinel-workspace.bicep").read_text()
    assert "3e150937-b8fe-4cfb-8069-0eaf05ecd056" in sentinel  # Microsoft Sentinel Responder
    assert "73c42c96-874c-492b-b04d-ab87d138a893" in sentinel  # Log Analytics Reader
    # Defender alert state: the custom role, never Security Admin (policies, exemptions, plans).
    # infra/partner/ is the exception: Azure Lighthouse accepts built-in roles only, and Security
    # Admin is the one built-in that sets alert state (tests/infra/test_partner.py).
    for path in BICEP_FILES:
        if path.is_relative_to(INFRA / "partner"):
            continue
        assert SECURITY_ADMIN_ROLE_ID not in path.read_text(), f"{rel(path)} still uses Security Admin"
    protected = parse(INFRA / "app" / "protected-subscription.bicep")
    (assignment,) = [
        r
        for r in protected["resources"].values()
        if r["type"] == "Microsoft.Authorization/roleAssignments"
        and "defenderAlertStateRoleGuid" in json.dumps(r["config"])
    ]
    assert "grantDefenderAlertStateUpdate" in json.dumps(assignment["config"]["condition"])
    main_text = (INFRA / "main.bicep").read_text()
    assert "defenderAlertStateRoleGuid: customRoles.outputs.defenderAlertStateRoleGuid" in main_text


def _custom_roles() -> dict[str, dict]:
    doc = parse(INFRA / "core" / "custom-roles.bicep")
    return {
        symbol: r["config"]["properties"]
        for symbol, r in doc["resources"].items()
        if r["type"] == "Microsoft.Authorization/roleDefinitions"
    }


def test_custom_roles_are_narrow():
    roles = _custom_roles()
    assert set(roles) == {"networkIsolationRole", "quarantineNsgRole", "defenderAlertStateRole"}
    for symbol in ("networkIsolationRole", "quarantineNsgRole"):
        permissions = roles[symbol]["permissions"]
        actions = [a for p in permissions for a in p["actions"]]
        assert actions and not any("*" in a or a.endswith("/delete") for a in actions), actions
        assert not any(p["dataActions"] for p in permissions)
        assert all(
            a.startswith(
                (
                    "Microsoft.Network/",
                    "Microsoft.Compute/virtualMachines/read",
                    "Microsoft.Resources/subscriptions/resourceGroups/read",
                )
            )
            for a in actions
        )


def test_defender_alert_state_role_reads_alerts_and_sets_in_progress_or_resolved_only():
    """No `alerts/inProgress/action` operation is registered, so the role needs `alerts/*`
    (see custom-roles.bicep); the state changes the app never makes are taken back out."""
    role = _custom_roles()["defenderAlertStateRole"]
    (permission,) = role["permissions"]
    assert set(permission["actions"]) == {
        "Microsoft.Security/locations/alerts/read",
        "Microsoft.Security/locations/alerts/*",
    }
    assert set(permission["notActions"]) == {
        "Microsoft.Security/locations/alerts/activate/action",
        "Microsoft.Security/locations/alerts/dismiss/action",
        "Microsoft.Security/locations/alerts/simulate/action",
    }
    assert not permission["dataActions"] and not permission["notDataActions"]
    # The same assignable scopes (the protected subscriptions) as the other custom roles.
    assert role["assignableScopes"] == _custom_roles()["networkIsolationRole"]["assignableScopes"]
    # The write-back only ever asks for InProgress or Resolved, which the role keeps.
    from shared.models import IncidentStatus
    from shared.writeback import mapping

    action_statuses = [[], ["contained"], ["held"], ["released"], ["failed"], ["contained", "released"]]
    wanted = {
        mapping.defender_action(status, statuses) for status in IncidentStatus for statuses in action_statuses
    } - {None}
    denied = {a.split("/")[-2] for a in permission["notActions"]}
    assert wanted == {"inProgress", "resolve"} and not wanted & denied


def _automation_rules() -> dict[str, dict]:
    doc = parse(INFRA / "app" / "sentinel-workspace.bicep")
    return {
        symbol: r["config"]
        for symbol, r in doc["resources"].items()
        if r["type"] == "Microsoft.SecurityInsights/automationRules"
    }


def test_sentinel_automation_rules_forward_new_and_updated_incidents():
    rules = _automation_rules()
    by_trigger = {}
    for symbol, config in rules.items():
        assert json.dumps(config["condition"]) == json.dumps(rules["automationRule"]["condition"]), (
            f"{symbol}: same guard as the creation rule (only with the Security Insights principal)"
        )
        inner = config["config"]
        logic = inner["properties"]["triggeringLogic"]
        assert logic["triggersOn"] == "Incidents" and logic["isEnabled"] is True
        (action,) = inner["properties"]["actions"]
        assert action["actionType"] == "RunPlaybook"
        assert action["actionConfiguration"]["logicAppResourceId"] == "sentinelPlaybookResourceId"
        by_trigger[logic["triggersWhen"]] = inner
    assert set(by_trigger) == {"Created", "Updated"}
    names = {json.dumps(r["name"]) for r in by_trigger.values()}
    assert len(names) == 2, "each rule needs its own GUID"
    # Updated: only severity, status or owner changes (what shared/writeback/updates.py reads).
    (condition,) = by_trigger["Updated"]["properties"]["triggeringLogic"]["conditions"]
    assert condition["conditionType"] == "Boolean" and condition["conditionProperties"]["operator"] == "Or"
    changed = {
        c["conditionProperties"]["propertyName"]
        for c in condition["conditionProperties"]["innerConditions"]
        if c["conditionType"] == "PropertyChanged"
    }
    assert changed == {"IncidentSeverity", "IncidentStatus", "IncidentOwner"}
    main_text = (INFRA / "main.bicep").read_text()
    assert "createAutomationRule: createSentinelAutomationRule && !empty(sentinelAutomationPrincipalId)" in main_text


def test_production_turns_write_back_on():
    prod = (INFRA / "main.prod.bicepparam").read_text()
    assert re.search(r"^param grantSentinelResponder = true$", prod, re.M)
    assert re.search(r"^param grantDefenderAlertStateUpdate = true$", prod, re.M)


# --------------------------------------------------------------------------- wiring
def _workflow(name: str) -> dict:
    return json.loads((WORKFLOWS / name).read_text())


@pytest.mark.parametrize(
    "name,trigger_path,route",
    [
        ("sentinel-incident-forwarder.json", "/incident-creation", "/api/incidents/sentinel"),
        ("defender-alert-forwarder.json", "/Microsoft.Security/Alert/subscribe", "/api/alerts/defender"),
    ],
)
def test_logic_apps_forward_to_the_ingest_routes_with_a_key_from_key_vault(name, trigger_path, route):
    definition = _workflow(name)
    (trigger,) = definition["triggers"].values()
    assert trigger["type"] == "ApiConnectionWebhook" and trigger["inputs"]["path"] == trigger_path
    get_key = definition["actions"]["Get_ingest_key"]
    assert get_key["inputs"]["authentication"]["type"] == "ManagedServiceIdentity"
    assert get_key["inputs"]["uri"].startswith("@{parameters('keyVaultUri')}secrets/")
    assert set(get_key["runtimeConfiguration"]["secureData"]["properties"]) == {"inputs", "outputs"}
    forward = definition["actions"]["Forward_to_soc_responder"]
    assert forward["inputs"]["method"] == "POST"
    assert forward["inputs"]["uri"] == "@{parameters('functionBaseUrl')}" + route
    assert forward["inputs"]["headers"]["x-functions-key"] == "@{body('Get_ingest_key')?['value']}"
    assert forward["inputs"]["body"] == "@triggerBody()"
    assert forward["runtimeConfiguration"]["secureData"]["properties"] == ["inputs"]
    # A 202 from the app is the answer, not the start of an async poll.
    assert forward["operationOptions"] == "DisableAsyncPattern"
    # Every workflow parameter is supplied by playbooks.bicep, and nothing else.
    playbooks = parse(INFRA / "app" / "playbooks.bicep")["resources"]
    workflow = next(
        r
        for r in playbooks.values()
        if r["type"] == "Microsoft.Logic/workflows" and name in json.dumps(r["config"]["properties"]["definition"])
    )
    supplied = {key.strip("'") for key in workflow["config"]["properties"]["parameters"]}
    assert supplied == set(definition["parameters"])


def test_defender_automation_uses_the_forwarder_trigger():
    (trigger_name,) = _workflow("defender-alert-forwarder.json")["triggers"]
    playbooks = parse(INFRA / "app" / "playbooks.bicep")
    assert playbooks["variables"]["defenderTriggerName"]["value"] == trigger_name
    text = (INFRA / "app" / "protected-resource-group.bicep").read_text()
    assert "listCallbackUrl('${defenderForwarderResourceId}/triggers/${defenderTriggerName}'" in text


# --------------------------------------------------------------------------- secrets
_SECRET_PATTERNS = [
    (re.compile(r"AccountKey\s*=", re.I), "storage account key"),
    (re.compile(r"DefaultEndpointsProtocol\s*=", re.I), "storage connection string"),
    (re.compile(r"SharedAccess(Key|Signature)\s*=", re.I), "shared access key/signature"),
    (re.compile(r"InstrumentationKey\s*=", re.I), "Application Insights key"),
    (re.compile(r"[?&](sig|code)=[A-Za-z0-9%+/=_-]{8,}"), "signed or keyed URL"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "private key"),
    (re.compile(r"\blist(Keys|Secrets|ConnectionStrings)\s*\(", re.I), "keys pulled into a template"),
    (
        re.compile(r"\b(password|client_?secret|api_?key|secret)\b\s*[:=]\s*['\"][^'\"\s$@{]{6,}['\"]", re.I),
        "literal password/secret",
    ),
    (re.compile(r"x-functions-key\"?\s*:\s*\"(?!@)"), "literal function key"),
]


def _high_entropy_tokens(text: str):
    # URLs are paths, not keys; a key inside a URL is caught by the sig=/code= pattern.
    text = re.sub(r"https?://[^\s'\"?]+", " ", text)
    for token in re.findall(r"[A-Za-z0-9+/=_-]{32,}", text):
        if re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", token, re.I):
            continue
        if not (re.search(r"[0-9]", token) and re.search(r"[a-z]", token) and re.search(r"[A-Z]", token)):
            continue
        counts = Counter(token)
        entropy = -sum(c / len(token) * math.log2(c / len(token)) for c in counts.values())
        if entropy > 4.0:
            yield token


def find_secrets(text: str) -> list[str]:
    hits = [label for pattern, label in _SECRET_PATTERNS if pattern.search(text)]
    hits += [f"high-entropy literal {t[:6]}..." for t in _high_entropy_tokens(text)]
    return hits


def _scanned_files():
    for base in (INFRA, SCRIPTS):
        for path in sorted(base.rglob("*")):
            if path.is_file():
                yield path


def test_no_secret_key_or_connection_string_literals():
    offenders = {rel(p): find_secrets(p.read_text()) for p in _scanned_files()}
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, offenders


def test_secret_scanner_catches_the_usual_suspects():
    key = base64.b64encode(os.urandom(64)).decode()
    samples = [
        f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={key};EndpointSuffix=core.windows.net",
        f"param k string = '{key}'",
        "uri: 'https://prod-01.eastus.logic.azure.com/workflows/x/triggers/manual/paths/invoke?sig=" + key[:43] + "'",
        '"x-functions-key": "' + key[:54] + '"',
        "value: storage.listKeys().keys[0].value",
        "password: 'hunter2hunter2'",
        "InstrumentationKey=" + str(uuid.uuid4()),
    ]
    for sample in samples:
        assert find_secrets(sample), sample
    assert not find_secrets("roleDefinitionId: '3e150937-b8fe-4cfb-8069-0eaf05ecd056'")
    assert not find_secrets("'Microsoft.Network/applicationSecurityGroups/joinIpConfiguration/action'")


# --------------------------------------------------------------------------- scripts
@pytest.mark.parametrize(
    "name",
    ["checkov.sh", "grant-graph-permissions.sh", "set-caller-keys.sh", "create-operator-app.sh", "create-soc-app.sh"],
)
def test_scripts_are_executable_bash(name):
    path = SCRIPTS / name
    assert path.stat().st_mode & stat.S_IXUSR, f"{name} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_checkov_script_pins_its_version():
    text = (SCRIPTS / "checkov.sh").read_text()
    assert re.search(r'^CHECKOV_VERSION="3\.3\.\d+"$', text, re.M)
    assert "BC_SKIP_MAPPING=TRUE" in text and "--framework bicep" in text and "--skip-download" in text


FAKE_AZ = r'''#!{python}
"""Stand-in for the az CLI: Graph over `az rest`, state in $FAKE_AZ_STATE."""
import json, os, re, sys, uuid
args = sys.argv[1:]
state_path = os.environ["FAKE_AZ_STATE"]
state = json.load(open(state_path)) if os.path.exists(state_path) else {{"assignments": [], "calls": []}}
def opt(name):
    return args[args.index(name) + 1] if name in args else None
state["calls"].append(args)
out = ""
GRAPH_SP = "11111111-1111-1111-1111-111111111111"
role_id = lambda v: str(uuid.uuid5(uuid.NAMESPACE_URL, v))
if args[:3] == ["deployment", "sub", "show"]:
    out = "22222222-2222-2222-2222-222222222222"
elif args[0] == "rest":
    method, uri, query = opt("--method"), opt("--uri"), opt("--query") or ""
    if method == "GET" and "$filter=appId eq '00000003-0000-0000-c000-000000000000'" in uri:
        out = GRAPH_SP
    elif method == "GET" and uri.endswith(GRAPH_SP + "?$select=appRoles"):
        out = role_id(re.search(r"value=='([^']+)'", query).group(1))
    elif method == "GET" and uri.endswith("/appRoleAssignments"):
        wanted = re.search(r"appRoleId=='([^']+)'", query).group(1)
        out = next((a["id"] for a in state["assignments"] if a["appRoleId"] == wanted), "")
    elif method == "POST" and uri.endswith("/appRoleAssignments"):
        body = json.loads(opt("--body"))
        body["id"] = str(uuid.uuid4())
        state["assignments"].append(body)
json.dump(state, open(state_path, "w"))
if out:
    print(out)
'''


@pytest.fixture
def fake_az(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    az = bin_dir / "az"
    az.write_text(FAKE_AZ.format(python=sys.executable))
    az.chmod(0o755)
    state = tmp_path / "state.json"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_AZ_STATE": str(state)}

    def run(*args):
        proc = subprocess.run(
            ["bash", str(SCRIPTS / "grant-graph-permissions.sh"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        data = json.loads(state.read_text()) if state.exists() else {"assignments": [], "calls": []}
        return proc, data

    return run


def _granted(data):
    return {
        str(uuid.uuid5(uuid.NAMESPACE_URL, p)): p
        for p in (
            "User.Read.All",
            "User.EnableDisableAccount.All",
            "User.RevokeSessions.All",
            "Application.ReadWrite.OwnedBy",
            "Application.ReadWrite.All",
            "Mail.Send",
        )
    }


def test_graph_script_grants_least_privilege_and_is_idempotent(fake_az):
    proc, data = fake_az("--deployment", "soc-prod")
    assert proc.returncode == 0, proc.stderr
    names = _granted(data)
    granted = sorted(names[a["appRoleId"]] for a in data["assignments"])
    assert granted == sorted(
        [
            "User.Read.All",
            "User.EnableDisableAccount.All",
            "User.RevokeSessions.All",
            "Application.ReadWrite.OwnedBy",
            "Mail.Send",
        ]
    )
    assert all(a["principalId"] == "22222222-2222-2222-2222-222222222222" for a in data["assignments"])
    assert all(a["resourceId"] == "11111111-1111-1111-1111-111111111111" for a in data["assignments"])
    assert "New-ApplicationAccessPolicy" in proc.stdout
    proc, data = fake_az("--deployment", "soc-prod")
    assert proc.returncode == 0, proc.stderr
    assert len(data["assignments"]) == 5
    assert proc.stdout.count("already granted") == 5


def test_graph_script_options(fake_az):
    principal = "33333333-3333-3333-3333-333333333333"
    proc, data = fake_az("--principal-id", principal, "--dry-run")
    assert proc.returncode == 0 and data["assignments"] == [] and "would grant" in proc.stdout
    assert not any(c[:3] == ["deployment", "sub", "show"] for c in data["calls"])
    proc, data = fake_az("--principal-id", principal, "--no-mail", "--all-service-principals")
    granted = {_granted(data)[a["appRoleId"]] for a in data["assignments"]}
    assert "Mail.Send" not in granted and "Application.ReadWrite.All" in granted
    assert "WARNING" in proc.stderr
    proc, _ = fake_az("--principal-id", "not-a-guid")
    assert proc.returncode != 0 and "not a GUID" in proc.stderr


# --------------------------------------------------------------------------- docs and code agree
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
# Pages deploy.md links to for the parts they own (parameters, skipped checks).
DEPLOY_DOC_PAGES = [ROOT / "docs" / name for name in ("access-setup.md", "durable-settings.md", "onboarding.md")]


def deploy_docs_text() -> str:
    deploy = DEPLOY_DOC.read_text()
    for page in DEPLOY_DOC_PAGES:
        assert f"]({page.name})" in deploy, f"docs/deploy.md does not link {page.name}"
    return "\n".join([deploy, *(p.read_text() for p in DEPLOY_DOC_PAGES)])


def test_deploy_doc_covers_every_parameter_and_environment_variable():
    doc = deploy_docs_text()
    for name in parse(INFRA / "main.bicep")["parameters"]:
        assert f"`{name}`" in doc, f"docs/deploy.md does not explain parameter {name}"
    for path in PARAM_FILES:
        for variable in re.findall(r"readEnvironmentVariable\('(\w+)'", path.read_text()):
            assert f"`{variable}`" in doc, f"docs/deploy.md does not explain {variable}"
    assert "scripts/grant-graph-permissions.sh" in doc and "az deployment sub create" in doc


@pytest.mark.slow
def test_deploy_doc_lists_every_skipped_check(checkov_report):
    doc = deploy_docs_text()
    for check in checkov_report["results"]["skipped_checks"]:
        assert re.search(rf"\b{check['check_id']}\b", doc), f"docs/deploy.md does not list {check['check_id']}"


@pytest.mark.parametrize("route", ["incidents/sentinel", "alerts/defender"])
def test_the_routes_the_logic_apps_call_exist_and_take_a_function_key(route):
    """The playbooks send x-functions-key; the route must exist with FUNCTION auth."""
    sources = "\n".join(p.read_text() for p in (ROOT / "functions").glob("*.py"))
    assert re.search(rf'route="{route}".*auth_level=func\.AuthLevel\.FUNCTION', sources), route
    host = json.loads((ROOT / "host.json").read_text())
    assert host["extensions"]["http"]["routePrefix"] == "api"
