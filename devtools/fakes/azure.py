"""``AzureFake``: the faked services on one loopback HTTPS port, and which of them answers a request."""

from __future__ import annotations

import os

from devtools.fakes.acs import ACS_AUDIENCE, AcsCallbackSigner, AcsFake, acs_openid_answer
from devtools.fakes.arm import ArmFake
from devtools.fakes.graph import GraphFake
from devtools.fakes.identity import check_bearer_token
from devtools.fakes.key_vault import KEY_VAULT_AUDIENCE, KeyVaultFake
from devtools.fakes.log_analytics import LogAnalyticsFake
from devtools.fakes.records import FakeResponse, RecordedRequest, coerce
from devtools.fakes.teams import TeamsFake
from devtools.fakes.tenants import TenantsFake


class AzureFake(TenantsFake, ArmFake, GraphFake, LogAnalyticsFake, AcsFake, KeyVaultFake, TeamsFake):
    """Loopback HTTPS fake of ARM, Microsoft Graph, Log Analytics, ACS Call Automation, Key Vault secrets
    and Teams Workflows webhooks (issue 16).

    Usage::

        with AzureFake() as fake:
            os.environ.update(fake.environment())
            fake.add_nic(nic_id, "westeurope")
            ... real SDK clients ...
            assert fake.writes() == []
    """

    def __init__(self, *, host: str = "127.0.0.1", require_auth: bool = True, lro_retry_after_ms: int = 50):
        #: API requests must carry a bearer token issued by ``identity`` for the right audience.
        self.require_auth = require_auth
        #: Long-running-operation answers carry ``retry-after-ms`` (azure-core polls after it).
        #: Not ``Retry-After: 0``: azure-core then falls back to the client's polling_interval
        #: (30 s), and azure-mgmt-network parses Retry-After as an int (no fractions).
        self.lro_retry_after_ms = lro_retry_after_ms
        #: issue 12: signs ACS callback tokens (``acs_callback_signer.token(audience)``); survives reset().
        self.acs_callback_signer = AcsCallbackSigner()
        super().__init__(host=host)

    def reset(self) -> None:
        """Fresh state: store, users, mail, calls, Log Analytics answers, faults, routes and log.

        Issued tokens survive (credentials cache them across tests). Requests still
        delayed by an injected fault are answered by a dropped connection.
        """
        with self._lock:
            super().reset()
            self.require_auth = True

    def environment(self) -> dict[str, str]:
        """Environment variables pointing the app (and the SDKs) at the fake."""
        no_proxy = ",".join(
            x for x in (os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), "127.0.0.1,localhost") if x
        )
        return {
            "ARM_ENDPOINT": self.url,
            "GRAPH_ENDPOINT": self.url,
            "LOG_ANALYTICS_ENDPOINT": self.url,
            "ACS_ENDPOINT": self.url,
            "KEY_VAULT_URL": self.url,  # issue 16
            **self.identity.environment(),
            # Only managed identity in DefaultAzureCredential's chain: no silent fall-back
            # to a developer's Azure CLI login.
            "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
            # requests (azure-core's transport) reads REQUESTS_CA_BUNDLE per request;
            # httpx (msgraph-sdk) and aiohttp/ssl read SSL_CERT_FILE when a client is made.
            "REQUESTS_CA_BUNDLE": self.ca_bundle_path,
            "SSL_CERT_FILE": self.ca_bundle_path,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    def _answer(self, req: RecordedRequest) -> FakeResponse:
        if req.api == "token":
            entra = self._entra_token_answer(req)  # issue 11: per-tenant tokens
            return entra if entra is not None else self.identity.answer(req)
        if req.api == "acs" and req.path.startswith("/calling/.well-known/"):  # issue 12: anonymous, like ACS's
            answer = acs_openid_answer(self.url, self.acs_callback_signer, req.path)
            if answer is not None:
                return answer
        if req.api == "teams":  # issue 16: a webhook's credential is the sig in its URL, not a token
            return self._teams_answer(req)
        if req.api == "keyvault" and not req.header("Authorization"):
            return self.key_vault_challenge()  # issue 16: Key Vault's challenge names tenant and audience
        denied = self._check_auth(req)
        if denied is not None:
            return denied
        tenancy = self._tenancy_answer(req)  # issue 11: Lighthouse delegation, ARM permissions
        if tenancy is not None:
            return tenancy
        for methods, pattern, handler in self._routes:
            m = pattern.search(req.path)
            if m and (methods is None or req.method in methods):
                return coerce(handler(req, m))
        if req.api == "arm":
            return self._arm_answer(req)
        if req.api == "graph":
            return self._graph_answer(req)
        if req.api == "logs":
            return self._logs_answer(req)
        if req.api == "acs":
            return self._acs_answer(req)
        if req.api == "keyvault":
            return self._key_vault_answer(req)
        return FakeResponse(
            404, {"error": {"code": "NoRoute", "message": f"azure_fake: no route for {req.method} {req.path}"}}
        )

    def _audiences(self, api: str) -> set[str]:
        if api == "acs":
            return {ACS_AUDIENCE}
        if api == "keyvault":
            return {KEY_VAULT_AUDIENCE}
        return {self.url.lower(), f"https://localhost:{self.port}"}

    def _check_auth(self, req: RecordedRequest) -> FakeResponse | None:
        return check_bearer_token(req, self.identity, lambda: self._audiences(req.api), self.require_auth)
