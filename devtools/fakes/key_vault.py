"""Key Vault secrets in the fake (issue 16): ``GET /secrets/{name}[/{version}]?api-version=…``.

As Key Vault does, a request without a token is answered ``401`` with a challenge naming the vault's
tenant and the token audience (``WWW-Authenticate: Bearer authorization="…/{tenant}",
resource="https://vault.azure.net"``); the SDK then asks its credential for that audience, and the fake
accepts only a token issued for ``https://vault.azure.net``. Secrets are set with ``set_secret``;
an unknown name is Key Vault's ``404 SecretNotFound``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from devtools.fakes.records import FakeResponse, RecordedRequest
from devtools.fakes.server import FakeServer

KEY_VAULT_AUDIENCE = "https://vault.azure.net"
#: The tenant the fake's vault lives in (the SOC's own), named by its challenge.
KEY_VAULT_TENANT = "6f1c6e1a-5b1e-4b8e-9d2a-50c0c0a7e001"


class KeyVaultFake(FakeServer):
    """The Key Vault part of ``AzureFake``."""

    def _init_state(self) -> None:
        super()._init_state()
        self._secrets: dict[str, tuple[str, str, int]] = {}  # name (lower) -> (value, version, updated)

    def set_secret(self, name: str, value: str) -> str:
        """Create or update a secret (a new version); returns the version."""
        version = uuid.uuid4().hex
        with self._lock:
            self._secrets[name.lower()] = (value, version, int(time.time()))
        return version

    def key_vault_challenge(self) -> FakeResponse:
        return FakeResponse(
            401,
            {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}},
            {
                "WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/{KEY_VAULT_TENANT}", '
                f'resource="{KEY_VAULT_AUDIENCE}"'
            },
        )

    def _key_vault_answer(self, req: RecordedRequest) -> FakeResponse:
        parts = req.path.strip("/").split("/")
        if req.method != "GET" or len(parts) not in (2, 3) or parts[0] != "secrets":
            return FakeResponse(405, {"error": {"code": "BadParameter", "message": f"{req.method} {req.path}"}})
        if not req.query.get("api-version"):
            return FakeResponse(400, {"error": {"code": "BadParameter", "message": "api-version is required"}})
        with self._lock:
            found = self._secrets.get(parts[1].lower())
        if found is None or (len(parts) == 3 and parts[2] and parts[2] != found[1]):
            return FakeResponse(
                404,
                {
                    "error": {
                        "code": "SecretNotFound",
                        "message": f"A secret with (name/id) {parts[1]} was not found in this key vault.",
                    }
                },
            )
        value, version, updated = found
        body: dict[str, Any] = {
            "value": value,
            "id": f"{self.url}/secrets/{parts[1]}/{version}",
            "attributes": {
                "enabled": True,
                "created": updated,
                "updated": updated,
                "recoveryLevel": "Recoverable+Purgeable",
            },
            "tags": {},
        }
        return FakeResponse(200, body)
