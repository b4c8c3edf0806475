"""The one guard of every operator and auditor route (docs/spec/access.md): ``@operator_access("ack")``.

Routes are ``ANONYMOUS`` at the Functions level: App Service Authentication
(Entra ID, ``infra/app/auth-settings.bicep``) sits in front and lets
unauthenticated requests through (the ingest callers and ACS cannot sign in),
so the decision is made here, from ``X-MS-CLIENT-PRINCIPAL``, by
``shared.access.authorize`` and its policy table. Ingest routes keep
``authLevel=FUNCTION`` (a named key per caller and per function).

What the guard does, before the route reads anything:
1. 401 / 403 from the policy (nothing about the incident is revealed first);
2. a malformed ``{id}`` → 400 (before it reaches a table query);
3. the route body's ``actor`` becomes the signed-in principal (a JSON object
   body only; a differing one was refused in 1), so every route records the
   authenticated actor without reading the header itself;
4. the request runs "as" that caller: events it writes for that actor carry
   ``actorVerified`` (and the principal's object id) in their hashed data.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from functions.http import error_response
from shared import access, runtime


def _body_object(req: func.HttpRequest) -> dict | None:
    """The JSON object body, or None (absent, not JSON, not an object: the route's own checks answer that)."""
    raw = req.get_body() or b""
    if not raw.strip() or len(raw) > 1024 * 1024:
        return None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _with_actor(req: func.HttpRequest, body: dict, actor: str) -> func.HttpRequest:
    """The same request with ``actor`` set to the authenticated name."""
    return func.HttpRequest(
        method=req.method,
        url=req.url,
        headers=dict(req.headers),
        params=dict(req.params),
        route_params=dict(req.route_params),
        body=json.dumps({**body, "actor": actor}).encode("utf-8"),
    )


def _find_request(args: tuple, kwargs: dict) -> tuple[func.HttpRequest, str | int]:
    for name, value in kwargs.items():
        if isinstance(value, func.HttpRequest):
            return value, name
    for i, value in enumerate(args):
        if isinstance(value, func.HttpRequest):
            return value, i
    raise TypeError("operator_access guards HTTP routes only")


def _admit(action: str, req: func.HttpRequest) -> tuple[access.Caller, func.HttpRequest]:
    body = _body_object(req) if req.method.upper() in ("POST", "PUT", "PATCH") else None
    mode = runtime.context().settings.operator_auth
    caller = access.authorize(
        action,
        mode,
        req.headers.get(access.PRINCIPAL_HEADER),
        body.get("actor") if body is not None else None,
        urlsplit(req.url).hostname or "",
    )
    for name in ("id",):
        if name in req.route_params:
            access.validate_route_id(req.route_params.get(name, ""), name)
    if caller.verified and body is not None and caller.actor:
        req = _with_actor(req, body, caller.actor)
    return caller, req


def operator_access(action: str) -> Callable[[Callable], Callable]:
    """Decorator (under ``@bp.route`` / ``@bp.durable_client_input``, above ``@handle_errors``)."""
    access.required_roles(action)  # an action missing from the policy table fails at import, not at run time

    def decorate(fn: Callable) -> Callable:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__name__}: operator routes are async")

        @functools.wraps(fn)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            req, where = _find_request(args, kwargs)
            try:
                caller, req = _admit(action, req)
            except Exception as exc:
                return error_response(exc)
            if isinstance(where, str):
                kwargs[where] = req
            else:
                args = (*args[:where], req, *args[where + 1 :])
            with access.acting_as(caller):
                return await fn(*args, **kwargs)

        guarded.operator_action = action  # type: ignore[attr-defined]  # read by the route-coverage test
        return guarded

    return decorate
