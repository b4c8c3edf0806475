"""Who may act (docs/spec/access.md): the signed-in operator, the route's app role, the actor recorded. Pure.

App Service Authentication (Entra ID) validates the caller's token and hands
the code ``X-MS-CLIENT-PRINCIPAL``: base64 of
``{"auth_typ", "name_typ", "role_typ", "claims": [{"typ", "val"}, ...]}``.
This module is the ONE place that decides, for every operator and auditor
route, whether that principal may act and under which name:

- no principal → 401; a principal without one of the route's app roles → 403;
- the actor recorded in evidence is the principal; a body ``actor`` that names
  someone else → 403 (an analyst cannot record a decision as their CISO);
- ``OPERATOR_AUTH=function-key`` (local runs without App Service
  Authentication only) accepts the body actor, and every event written for
  that request carries ``actorVerified: false`` in its hashed data.

The caller of the request being served travels in a context variable so the
evidence chain (``shared.evidence.chain``) can stamp the events it writes
without every use case threading a flag through (``asyncio.to_thread`` copies
the context into the worker thread).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from shared.errors import ForbiddenError, UnauthorizedError, ValidationError

PRINCIPAL_HEADER = "x-ms-client-principal"
ENTRA, FUNCTION_KEY = "entra", "function-key"
OPERATOR_AUTH_MODES = (ENTRA, FUNCTION_KEY)

RESPONDER, APPROVER, AUDITOR = "Responder", "Approver", "Auditor"
APP_ROLES = (RESPONDER, APPROVER, AUDITOR)
# Who may do what (docs/spec/access.md). A lead (Approver) may do anything an analyst may; everybody with a role may read.
_RESPOND = frozenset({RESPONDER, APPROVER})
_APPROVE = frozenset({APPROVER})
_READ = frozenset({AUDITOR, RESPONDER, APPROVER})
POLICY: dict[str, frozenset[str]] = {
    # analysts: contact made, phone escalation, priority
    "ack": _RESPOND,
    "call": _RESPOND,
    "priority": _RESPOND,
    "review.submit": _RESPOND,  # root cause, impact, action items of the post-incident review
    # leads: decisions that change a partner's estate or re-run detection
    "approve": _APPROVE,
    "release": _APPROVE,
    "approvals": _APPROVE,  # POST /api/approvals (bulk)
    "suppressions": _APPROVE,  # POST /api/partners/{id}/suppressions
    "replay": _APPROVE,  # POST /api/replay
    # auditors and the SOC: reads
    "incident": _READ,
    "verify": _READ,
    "review": _READ,
    "evidence": _READ,
    "reports": _READ,
    "preflight": _READ,
    # issue 16: the console's pages (its forms use the actions above)
    "console": _READ,
}

# Claim types Entra ID / App Service use for roles and for the user's name.
_ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
_NAME_CLAIMS = (
    "preferred_username",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "upn",
    "email",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
)
_OID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_PRINCIPAL_BYTES = 32 * 1024


@dataclass(frozen=True)
class Principal:
    """The signed-in caller App Service Authentication vouches for."""

    name: str
    roles: frozenset[str]
    object_id: str | None = None
    auth_type: str = ""


@dataclass(frozen=True)
class Caller:
    """Who a request acts as: the actor written to evidence, and whether the platform vouched for it."""

    actor: str | None
    verified: bool
    roles: frozenset[str] = frozenset()
    object_id: str | None = None

    def stamp(self) -> dict[str, Any]:
        """The evidence fields every event this caller writes carries (hashed with the event)."""
        out: dict[str, Any] = {"actorVerified": self.verified}
        if self.object_id:
            out["actorObjectId"] = self.object_id
        return out


def parse_principal(header: str | None) -> Principal | None:
    """``X-MS-CLIENT-PRINCIPAL`` → Principal; None when absent. A header that is not a principal → 401."""
    if header is None or not header.strip():
        return None
    if len(header) > MAX_PRINCIPAL_BYTES:
        raise UnauthorizedError("the client principal is not valid")
    try:
        doc = json.loads(base64.b64decode(header.strip() + "=" * (-len(header.strip()) % 4), validate=False))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise UnauthorizedError("the client principal is not valid") from None
    claims = doc.get("claims") if isinstance(doc, dict) else None
    if not isinstance(claims, list):
        raise UnauthorizedError("the client principal is not valid")
    pairs = [
        (str(c.get("typ")), str(c.get("val")))
        for c in claims
        if isinstance(c, dict) and isinstance(c.get("typ"), str) and isinstance(c.get("val"), str)
    ]
    role_types = {*_ROLE_CLAIMS, *([doc["role_typ"]] if isinstance(doc.get("role_typ"), str) else [])}
    roles = frozenset(v for t, v in pairs if t in role_types)
    name_types = [*_NAME_CLAIMS, *([doc["name_typ"]] if isinstance(doc.get("name_typ"), str) else []), "name"]
    name = next((v.strip() for want in name_types for t, v in pairs if t == want and v.strip()), "")
    if not name:  # an application (client-credentials token, e.g. a SOAR) acts under its client id
        app_id = next((v.strip() for want in ("azp", "appid") for t, v in pairs if t == want and v.strip()), "")
        name = f"app:{app_id}" if app_id else ""
    if not name or len(name) > 256 or _CONTROL.search(name):
        raise UnauthorizedError("the client principal names nobody")
    oid = next((v for want in _OID_CLAIMS for t, v in pairs if t == want), None)
    return Principal(name=name, roles=roles, object_id=oid, auth_type=str(doc.get("auth_typ") or ""))


def required_roles(action: str) -> frozenset[str]:
    """The app roles that may take ``action``; an action missing from the policy is a programming error."""
    return POLICY[action]


LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def authorize(action: str, mode: str, principal_header: str | None, body_actor: Any, host: str = "localhost") -> Caller:
    """Decide one request: the Caller it acts as, or UnauthorizedError (401) / ForbiddenError (403)."""
    allowed = required_roles(action)
    # A request URL without a host (a caller that builds the request itself, e.g. a test harness) is local:
    # the Functions host always passes the full URL, so a deployed app never sees one.
    if mode == FUNCTION_KEY and host and host.lower() not in LOCAL_HOSTS:
        # A deployment left in local mode would let anyone act as anyone: it answers local requests only.
        raise ForbiddenError(
            "OPERATOR_AUTH=function-key answers local requests only",
            [{"field": "OPERATOR_AUTH", "message": "set entra where the app is reachable from elsewhere"}],
        )
    if mode == FUNCTION_KEY:
        # Local runs only: nobody vouches for the name; the evidence says so.
        actor = body_actor.strip() if isinstance(body_actor, str) and body_actor.strip() else None
        return Caller(actor=actor, verified=False)
    principal = parse_principal(principal_header)
    if principal is None:
        raise UnauthorizedError("sign-in required", [{"field": "authorization", "message": "no signed-in principal"}])
    if not principal.roles & allowed:
        raise ForbiddenError(
            "the signed-in user lacks the app role for this route",
            [{"field": "roles", "message": f"requires one of {', '.join(sorted(allowed))}"}],
        )
    if body_actor is not None and not (
        isinstance(body_actor, str) and body_actor.strip().casefold() == principal.name.casefold()
    ):
        raise ForbiddenError(
            "actor must be the signed-in user",
            [{"field": "actor", "message": "the actor is taken from the sign-in; it may be omitted"}],
        )
    return Caller(actor=principal.name, verified=True, roles=principal.roles, object_id=principal.object_id)


def validate_route_id(value: str, field: str = "id") -> str:
    """A route id as the app issues them; anything else (``a/b``, quotes, control characters) → 400."""
    if not _ROUTE_ID.fullmatch(value or ""):
        raise ValidationError(
            f"invalid {field}", [{"field": field, "message": "letters, digits, '-', '_', '.', ':' (at most 200)"}]
        )
    return value


_ROUTE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")

# -- the caller of the request being served ------------------------------------------------------------
_CALLER: ContextVar[Caller | None] = ContextVar("soc_responder_caller", default=None)


def current_caller() -> Caller | None:
    return _CALLER.get()


@contextmanager
def acting_as(caller: Caller) -> Iterator[Caller]:
    token = _CALLER.set(caller)
    try:
        yield caller
    finally:
        _CALLER.reset(token)


def stamp_for(actor: str) -> dict[str, Any]:
    """Evidence fields for an event written by ``actor`` during the current request (empty outside one)."""
    caller = _CALLER.get()
    if caller is None or caller.actor is None or actor.casefold() != caller.actor.casefold():
        return {}
    return caller.stamp()


def principal_header(name: str, roles: tuple[str, ...] | list[str], *, object_id: str | None = None) -> str:
    """The header App Service Authentication would send for ``name`` with ``roles`` (demo, tests, docs)."""
    claims = [{"typ": "preferred_username", "val": name}, *({"typ": "roles", "val": r} for r in roles)]
    if object_id:
        claims.append({"typ": _OID_CLAIMS[0], "val": object_id})
    doc = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": claims}
    return base64.b64encode(json.dumps(doc).encode("utf-8")).decode("ascii")
