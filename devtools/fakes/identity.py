"""Tokens: the App Service managed-identity endpoint, and the check that API requests carry one of its tokens.

The real ``DefaultAzureCredential`` (managed identity only, see ``AzureFake.environment``) gets its tokens
from ``ManagedIdentityEndpoint``; the fake then accepts an API request only with a bearer token issued
there for the API's audience, as Entra ID-protected services do.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devtools.fakes.records import FakeResponse, Headers, RecordedRequest, parse_body
from devtools.fakes.transport import Server, serve


@dataclass
class TokenGrant:
    token: str
    resource: str
    client_id: str | None
    issued_at: float
    expires_on: int
    tenant: str | None = None  # issue 11: a partner tenant's token (None: the managed identity's own tenant)


class ManagedIdentityEndpoint:
    """Plain-HTTP loopback token endpoint in the App Service managed-identity protocol.

    ``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...[&client_id=...]``
    with header ``X-IDENTITY-HEADER: {IDENTITY_HEADER}`` answers
    ``{"access_token", "expires_on", "resource", "token_type", "client_id"}``.
    Usable on its own or (as ``AzureFake.identity``) inside the fake.
    """

    PATH = "/msi/token"

    def __init__(self, *, host: str = "127.0.0.1", token_lifetime_seconds: int = 24 * 3600):
        self.host = host
        self.header_secret = secrets.token_urlsafe(18)
        self.token_lifetime_seconds = token_lifetime_seconds
        self._lock = threading.Lock()
        self._grants: dict[str, TokenGrant] = {}
        self._issued: list[TokenGrant] = []
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------
    def start(self, app: Any = None) -> ManagedIdentityEndpoint:
        if self._server is None:
            self._server = Server((self.host, 0), app or self, "token", None)
            self._thread = serve(self._server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ManagedIdentityEndpoint:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.PATH}"

    def environment(self) -> dict[str, str]:
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.header_secret}

    # tokens ----------------------------------------------------------------
    def issue_token(self, resource: str, client_id: str | None = None, tenant: str | None = None) -> TokenGrant:
        """Issue a token directly (for tests that call the fake without a credential); ``tenant``: a token
        of the fake's Entra token endpoint for that tenant (issue 11)."""
        now = time.time()
        grant = TokenGrant(
            token=f"fake-{'mi' if tenant is None else 'app'}.{secrets.token_urlsafe(24)}",
            resource=resource,
            client_id=client_id,
            issued_at=now,
            expires_on=int(now) + self.token_lifetime_seconds,
            tenant=tenant,
        )
        with self._lock:
            self._grants[grant.token] = grant
            self._issued.append(grant)
        return grant

    def grant_for(self, token: str | None) -> TokenGrant | None:
        if not token:
            return None
        with self._lock:
            return self._grants.get(token)

    def token_requests(self) -> list[TokenGrant]:
        """Every token issued, in order (resource and client_id asked for)."""
        with self._lock:
            return list(self._issued)

    def resources_requested(self) -> list[str]:
        return [g.resource for g in self.token_requests()]

    def answer(self, req: RecordedRequest) -> FakeResponse:
        if req.path != self.PATH or req.method != "GET":
            return FakeResponse(404, {"statusCode": 404, "message": f"No token route {req.method} {req.path}"})
        if req.header("X-IDENTITY-HEADER") != self.header_secret:
            return FakeResponse(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong."})
        resource = req.query.get("resource")
        if not resource:
            return FakeResponse(400, {"statusCode": 400, "message": "resource is required."})
        grant = self.issue_token(resource, req.query.get("client_id"))
        return FakeResponse(
            200,
            {
                "access_token": grant.token,
                "expires_on": str(grant.expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": grant.client_id or "00000000-0000-0000-0000-00000000f4ce",
            },
        )

    # stand-alone app protocol ---------------------------------------------
    def handle_request(self, kind: str, method: str, raw_path: str, headers: Headers, raw: bytes) -> FakeResponse:
        split = urlsplit(raw_path)
        req = RecordedRequest(
            method,
            unquote(split.path),
            raw_path,
            dict(parse_qsl(split.query, keep_blank_values=True)),
            headers,
            parse_body(raw),
            raw,
            time.time(),
            "token",
        )
        return self.answer(req)


def check_bearer_token(
    req: RecordedRequest, identity: ManagedIdentityEndpoint, audiences: Callable[[], set[str]], require_auth: bool
) -> FakeResponse | None:
    """None if ``req`` may be answered, else the 401 the service gives (Graph and ARM word it differently).

    ``audiences()``: the token audiences the addressed API accepts.

    Notes the token's audience on the request either way (``RecordedRequest.token_resource``).
    """
    auth = req.header("Authorization") or ""
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    grant = identity.grant_for(token)
    req.token_resource = grant.resource if grant else None
    req.token_tenant = grant.tenant if grant else None
    if not require_auth or req.api == "unknown":
        return None
    graph = req.api == "graph"
    if not token:
        code, msg = (
            ("InvalidAuthenticationToken", "Access token is empty.")
            if graph
            else ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        )
        return FakeResponse(401, {"error": {"code": code, "message": msg}})
    if grant is None:
        return FakeResponse(
            401,
            {
                "error": {
                    "code": "InvalidAuthenticationToken",
                    "message": "The access token is invalid (not issued by the fake's identity endpoint).",
                }
            },
        )
    if grant.resource.rstrip("/").lower() not in audiences():
        return FakeResponse(
            401,
            {
                "error": {
                    "code": "InvalidAuthenticationTokenAudience",
                    "message": f"The access token has been obtained for the wrong audience or resource '{grant.resource}'. "
                    f"It should exactly match one of {sorted(audiences())}.",
                }
            },
        )
    return None
