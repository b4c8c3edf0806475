"""Issue 11 (item 5): the Azure Lighthouse delegation a partner deploys (infra/partner/)."""

from __future__ import annotations

import re
from pathlib import Path

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
PARTNER = ROOT / "infra" / "partner"
PARTNER_BICEP = sorted(PARTNER.glob("*.bicep"))

# The roles the SOC identity needs in a partner subscription: built-in roles only (Lighthouse
# accepts no custom role, no Owner, no role with DataActions). Why each: infra/partner/lighthouse.bicep.
REQUIRED_BUILTIN_ROLES = {
    "4d97b98b-1d4f-4787-a291-c67834d212e7": "Network Contributor",  # NIC write + joins, quarantine NSG
    "3e150937-b8fe-4cfb-8069-0eaf05ecd056": "Microsoft Sentinel Responder",  # incident write-back
    "73c42c96-874c-492b-b04d-ab87d138a893": "Log Analytics Reader",  # queries; */read covers VMs and NICs
}
OPTIONAL_BUILTIN_ROLES = {
    "fb1c8493-542b-48eb-b624-b4c8fea62acd": "Security Admin",  # Defender alert state (delegateDefenderAlertState)
}
NEVER = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _doc() -> dict:
    return BicepParser().parse(file_path=PARTNER / "lighthouse.bicep")


def _role_ids_granted(doc: dict) -> dict[str, set[str]]:
    """{'always': {...}, 'optional': {...}} of role definition ids in the authorizations."""
    variables = doc["variables"]

    def ids(auths) -> set[str]:
        found = set()
        for auth in auths:
            assert set(auth) == {"principalId", "principalIdDisplayName", "roleDefinitionId"}, auth
            assert auth["principalId"] == "socPrincipalId"
            value = variables[auth["roleDefinitionId"]]["value"]
            assert GUID.match(value), f"{auth['roleDefinitionId']} is not a built-in role GUID"
            found.add(value)
        return found

    optional = variables["defenderAuthorizations"]["value"]
    assert optional["operator"]["type"] == "conditional"
    assert optional["operator"]["operands"]["condition"] == "delegateDefenderAlertState"
    return {
        "always": ids(variables["baseAuthorizations"]["value"]),
        "optional": ids(optional["operator"]["operands"]["true_value"]),
    }


def test_partner_files_are_there():
    assert [p.name for p in PARTNER_BICEP] == ["lighthouse.bicep"]
    assert (PARTNER / "lighthouse.example.bicepparam").exists()


def test_delegation_uses_exactly_the_required_built_in_roles():
    granted = _role_ids_granted(_doc())
    assert granted["always"] == set(REQUIRED_BUILTIN_ROLES), {
        "missing": [REQUIRED_BUILTIN_ROLES[i] for i in set(REQUIRED_BUILTIN_ROLES) - granted["always"]],
        "extra": sorted(granted["always"] - set(REQUIRED_BUILTIN_ROLES)),
    }
    assert granted["optional"] == set(OPTIONAL_BUILTIN_ROLES)
    text = (PARTNER / "lighthouse.bicep").read_text()
    for role_id in NEVER:
        assert role_id not in text, f"{NEVER[role_id]} must never be delegated"
    # A comment per role says why.
    for name in {**REQUIRED_BUILTIN_ROLES, **OPTIONAL_BUILTIN_ROLES}.values():
        assert re.search(rf"^// {re.escape(name)}: ", text, re.M), f"no why-comment for {name}"


def test_every_partner_role_id_is_a_built_in_not_a_custom_definition():
    for path in PARTNER_BICEP:
        doc = BicepParser().parse(file_path=path)
        types = {r["type"] for r in doc["resources"].values()}
        assert "Microsoft.Authorization/roleDefinitions" not in types, "Lighthouse accepts no custom role"
        assert "customRoles" not in path.read_text()


def test_registration_definition_and_assignment_at_subscription_scope():
    doc = _doc()
    assert doc["globals"]["scope"]["value"] == "subscription"
    resources = {r["type"]: r["config"] for r in doc["resources"].values()}
    definition = resources["Microsoft.ManagedServices/registrationDefinitions"]
    assert definition["properties"]["managedByTenantId"] == "socTenantId"
    assert definition["name"] == "definitionName"
    assert doc["variables"]["definitionName"]["value"]["function"]["type"] == "guid"
    assignment = resources["Microsoft.ManagedServices/registrationAssignments"]
    assert assignment["properties"]["registrationDefinitionId"] == {
        "operator": {
            "type": "property_accessor",
            "operands": {"operand_1": "registrationDefinition", "operand_2": "id"},
        }
    }
    assert "scope" not in assignment  # the subscription being deployed to
    # Network Contributor cannot create resource groups: the partner's deployment does.
    group = resources["Microsoft.Resources/resourceGroups"]
    assert group["name"] == "quarantineResourceGroupName"
    main = BicepParser().parse(file_path=ROOT / "infra" / "main.bicep")["parameters"]
    assert doc["parameters"]["quarantineResourceGroupName"]["default"] == main["quarantineResourceGroupName"]["default"]
    for name in ("socTenantId", "socPrincipalId"):
        assert doc["parameters"][name].get("default") is None, f"{name} must be given"


def test_example_parameter_file_names_the_template_and_holds_no_ids():
    text = (PARTNER / "lighthouse.example.bicepparam").read_text()
    assert re.search(r"^using './lighthouse\.bicep'$", text, re.M)
    given = set(re.findall(r"^param (\w+) =", text, re.M))
    declared = _doc()["parameters"]
    assert given <= set(declared) and {"socTenantId", "socPrincipalId"} <= given
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text, re.I)


def test_onboarding_doc_covers_both_sides():
    doc = (ROOT / "docs" / "onboarding.md").read_text()
    for needle in (
        "infra/partner/lighthouse.bicep",
        "https://login.microsoftonline.com/{partnerTenant}/adminconsent?client_id={SOC_APP_CLIENT_ID}",
        "scripts/create-soc-app.sh",
        "api://AzureADTokenExchange",
        "User.EnableDisableAccount.All",
        "User.RevokeSessions.All",
        "User.Read.All",
        "Application.ReadWrite.OwnedBy",
        *REQUIRED_BUILTIN_ROLES.values(),
        *OPTIONAL_BUILTIN_ROLES.values(),
    ):
        assert needle in doc, f"docs/onboarding.md does not mention {needle}"
