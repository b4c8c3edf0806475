"""Entra ID tenants in the fake (issue 11): per-tenant tokens, Lighthouse delegation, ARM permissions.

- **Token endpoint** ``POST /{tenant}/oauth2/v2.0/token`` (client credentials with a client assertion,
  as ``azure.identity.ClientAssertionCredential`` sends it when ``AZURE_AUTHORITY_HOST`` points here).
  The assertion must be a token of the fake's managed-identity endpoint for ``api://AzureADTokenExchange``
  (the federated credential); the client id must be ``soc_app_client_id`` when one is set; the tenant
  must be known (``add_tenant``) and have consented, else Entra's own errors (AADSTS90002, AADSTS700016).
  Tokens issued here carry their tenant (``TokenGrant.tenant``, ``RecordedRequest.token_tenant``).
- **Graph** (``graph.py``): a user or service principal seeded with ``tenant=`` is seen only with a token
  of that tenant (others get 404), as each tenant's directory is its own.
- **Lighthouse**: once ``delegate(...)`` was called, ARM refuses (403 ``AuthorizationFailed``) any request
  under a subscription not delegated.
- **Permissions**: ``GET /subscriptions/{s}/providers/Microsoft.Authorization/permissions`` answers what
  ``set_permissions`` set for the subscription (default: ``*``, the fake's identity may do anything).
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

from devtools.fakes.records import FakeResponse, RecordedRequest
from devtools.fakes.server import ENTRA_TOKEN_PATH, FakeServer

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)(/.*)?$", re.IGNORECASE)
_PERMISSIONS = re.compile(r"^/subscriptions/([^/]+)/providers/Microsoft\.Authorization/permissions$", re.IGNORECASE)


class TenantsFake(FakeServer):
    """The tenancy part of ``AzureFake`` (see the module docstring)."""

    def _init_state(self) -> None:
        super()._init_state()
        self._tenants: dict[str, bool] = {}  # tenant id -> consented
        self._delegated: set[str] | None = None
        self._permissions: dict[str, list[dict]] = {}
        #: The SOC app's client id the token endpoint accepts (None: any).
        self.soc_app_client_id: str | None = None

    # -- seeding -----------------------------------------------------------------------------
    def add_tenant(self, tenant_id: str, *, consented: bool = True) -> None:
        """A partner's Entra tenant; ``consented``: its admin consented to the SOC's app."""
        with self._lock:
            self._tenants[tenant_id.lower()] = consented

    def delegate(self, *subscription_ids: str) -> None:
        """Azure Lighthouse: these subscriptions (and, from now on, only delegated ones) answer ARM."""
        with self._lock:
            self._delegated = (self._delegated or set()) | {s.lower() for s in subscription_ids}

    def set_permissions(self, subscription_id: str, permissions: list[dict[str, Any]]) -> None:
        """What ``Microsoft.Authorization/permissions`` answers for the subscription (its ``value``)."""
        with self._lock:
            self._permissions[subscription_id.lower()] = copy.deepcopy(permissions)

    def tenant_token_requests(self, tenant: str | None = None) -> list[RecordedRequest]:
        """Requests to the Entra token endpoint (of one tenant, or all), faulted ones included."""
        out = []
        for r in self.requests(api="token", include_tokens=True):
            m = ENTRA_TOKEN_PATH.match(r.path)
            if m and (tenant is None or m.group(1).lower() == tenant.lower()):
                out.append(r)
        return out

    # -- answers -----------------------------------------------------------------------------
    def _entra_token_answer(self, req: RecordedRequest) -> FakeResponse | None:
        m = ENTRA_TOKEN_PATH.match(req.path)
        if m is None:
            return None
        tenant = m.group(1).lower()
        form = dict(parse_qsl(req.raw_body.decode("utf-8", "replace")))
        if req.method != "POST" or form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", "AADSTS70003: only client_credentials is faked.")
        if tenant not in self._tenants:
            return _aad_error(400, "invalid_request", f"AADSTS90002: Tenant '{tenant}' not found.")
        client_id = form.get("client_id") or ""
        if self.soc_app_client_id and client_id.lower() != self.soc_app_client_id.lower():
            return _aad_error(
                400, "unauthorized_client", f"AADSTS700016: Application with identifier '{client_id}' was not found."
            )
        grant = self.identity.grant_for(form.get("client_assertion"))
        if (
            form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            or grant is None
            or grant.tenant is not None
            or grant.resource.rstrip("/") != TOKEN_EXCHANGE_AUDIENCE
        ):
            return _aad_error(
                401,
                "invalid_client",
                "AADSTS700211: No matching federated identity record found for presented assertion.",
            )
        if not self._tenants[tenant]:
            return _aad_error(
                400,
                "unauthorized_client",
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the directory "
                f"'{tenant}'. This can happen if the application has not been installed by the administrator "
                "of the tenant or consented to by any user in the tenant.",
            )
        scope = (form.get("scope") or "").split(" ")[0]
        resource = scope[: -len("/.default")] if scope.endswith("/.default") else scope
        issued = self.identity.issue_token(resource, client_id, tenant=tenant)
        lifetime = max(60, issued.expires_on - int(time.time()))
        return FakeResponse(
            200,
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": issued.token,
            },
        )

    def _tenancy_answer(self, req: RecordedRequest) -> FakeResponse | None:
        if req.api != "arm":
            return None
        m = _SUBSCRIPTION.match(req.path)
        if m is None:
            return None
        sub = m.group(1).lower()
        if self._delegated is not None and sub not in self._delegated:
            return FakeResponse(
                403,
                {
                    "error": {
                        "code": "AuthorizationFailed",
                        "message": f"The client does not have authorization to perform action over scope "
                        f"'/subscriptions/{sub}' or the scope is invalid.",
                    }
                },
            )
        if _PERMISSIONS.match(req.path) and req.method == "GET":
            value = self._permissions.get(sub)
            if value is None:
                value = [{"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}]
            return FakeResponse(200, {"value": copy.deepcopy(value)})
        return None


def _aad_error(status: int, error: str, description: str) -> FakeResponse:
    return FakeResponse(
        status,
        {
            "error": error,
            "error_description": description,
            "error_codes": [int(re.search(r"AADSTS(\d+)", description).group(1))],  # type: ignore[union-attr]
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
            "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()),
        },
    )
