"""The signed token ACS Call Automation puts in each callback's ``Authorization: Bearer`` header (issue 12).

Microsoft documents it as an RS256 JWT with a 5-minute lifetime, issued by
``https://acscallautomation.communication.azure.com`` for the audience of the Communication Services
resource's immutable resource id, its keys published through the OpenID configuration
``https://acscallautomation.communication.azure.com/calling/.well-known/acsopenidconfiguration``
(``ACS_CALLBACK_OPENID_CONFIG``). The configuration and its JWKS are cached for an hour; an unknown key
id fetches them again (key rollover), at most once a minute.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from shared.errors import UnauthorizedError

CACHE_SECONDS = 3600
REFRESH_MIN_SECONDS = 60
LEEWAY_SECONDS = 60


class CallbackTokenRejected(UnauthorizedError):
    """The callback's token is not a valid ACS token for this resource (the reason is logged, not returned)."""

    def __init__(self, reason: str):
        super().__init__(
            "call event rejected", [{"field": "callback", "message": "unknown or unauthorised call event"}]
        )
        self.reason = reason


class AcsCallbackTokens:
    """Verifies callback tokens against the OpenID configuration's keys and issuer, and the resource's audience."""

    def __init__(self, openid_config_url: str, audience: str | None):
        self.openid_config_url, self.audience = openid_config_url, audience
        self._lock = threading.Lock()
        self._issuer: str | None = None
        self._keys: dict[str, Any] = {}
        self._fetched = 0.0

    def _fetch(self) -> None:
        import jwt
        import requests

        config = requests.get(self.openid_config_url, timeout=10).json()
        jwks = requests.get(config["jwks_uri"], timeout=10).json()
        keys = {}
        for k in jwks.get("keys", []):
            if k.get("kid"):
                keys[k["kid"]] = jwt.PyJWK.from_dict(k).key
        self._issuer, self._keys, self._fetched = str(config["issuer"]), keys, time.monotonic()

    def _key(self, kid: str) -> tuple[Any, str]:
        with self._lock:
            age = time.monotonic() - self._fetched
            if not self._keys or age > CACHE_SECONDS or (kid not in self._keys and age > REFRESH_MIN_SECONDS):
                try:
                    self._fetch()
                except Exception as exc:  # no keys, no trust: refuse rather than accept unverified
                    raise CallbackTokenRejected(f"ACS OpenID configuration unavailable: {type(exc).__name__}") from None
            if kid not in self._keys:
                raise CallbackTokenRejected(f"token signed with an unknown key {kid[:40]!r}")
            return self._keys[kid], str(self._issuer)

    def verify(self, authorization: str) -> dict[str, Any]:
        """The token's claims, or CallbackTokenRejected."""
        import jwt

        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise CallbackTokenRejected("Authorization header is not a bearer token")
        try:
            kid = str(jwt.get_unverified_header(token).get("kid") or "")
        except jwt.PyJWTError as exc:
            raise CallbackTokenRejected(f"malformed token: {exc}") from None
        key, issuer = self._key(kid)
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                issuer=issuer,
                audience=self.audience,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise CallbackTokenRejected(f"invalid token: {type(exc).__name__}: {exc}") from None
