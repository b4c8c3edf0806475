"""Issue 16: the app reads Teams webhook URLs from its Key Vault — Secrets User on that vault, nothing wider."""

from __future__ import annotations

import json

from pycep import BicepParser

from tests.fixtures.app import ROOT

SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"


def test_the_app_identity_may_read_secrets_of_its_vault_only():
    vault = BicepParser().parse(file_path=ROOT / "infra/core/key-vault.bicep")
    assignments = {
        symbol: json.dumps(r["config"])
        for symbol, r in vault["resources"].items()
        if r["type"] == "Microsoft.Authorization/roleAssignments"
    }
    app = [text for text in assignments.values() if "appPrincipalId" in text]
    assert len(app) == 1, "exactly one role for the app's identity on the vault"
    assert "keyVaultSecretsUserRoleId" in app[0] and '"scope"' in app[0] and "vault" in app[0]
    text = (ROOT / "infra/core/key-vault.bicep").read_text()
    assert f"keyVaultSecretsUserRoleId = '{SECRETS_USER}'" in text
    assert "keyVaultSecretsOfficerRoleId" not in app[0]
    main = (ROOT / "infra/main.bicep").read_text()
    assert "appPrincipalId: identities.outputs.appPrincipalId // issue 16" in main
    assert "KEY_VAULT_URL: keyVault.outputs.keyVaultUri" in main
