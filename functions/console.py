"""Issue 16: the console (docs/spec/console.md) — server-rendered pages for analysts, leads and auditors.

- ``GET /api/console`` (queue), ``GET /api/console/incidents/{id}`` (one incident), ``GET /api/console/audit``,
  ``GET /api/console/static/console.css``;
- ``GET /api/console/incidents/{id}/{action}`` shows what the action will do (a GET never acts) and its
  form; ``POST`` to the same URL does it by calling the JSON operator route's own handler (same guard,
  same use case, same evidence), then answers 303 to the incident page showing the new state.

Every page: strict CSP (no script at all, styles from this app only), no framing, no caching.
POSTs: same-origin (``Origin`` / ``Sec-Fetch-Site``) and a double-submit CSRF token bound by HMAC to
the signed-in user (``shared/console/csrf.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import azure.durable_functions as df
import azure.functions as func

from functions import containment, notify
from functions.access import operator_access
from functions.http import error_response, handle_errors
from shared import access, runtime
from shared.errors import IncidentNotFoundError, UnauthorizedError, ValidationError

log = logging.getLogger(__name__)
bp = df.Blueprint()

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer a browser sends ``Origin: null`` with the console's own
    # form posts, and the origin check needs the real one; other sites still get no referrer.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_CSS = (Path(__file__).resolve().parent.parent / "shared" / "console" / "console.css").read_text("utf-8")
_RANDOM_KEY = secrets.token_bytes(32)

# The JSON operator routes the console's forms drive (their guarded handlers: same checks, same use case).
_JSON_ROUTES: dict[str, Any] = {
    "ack": notify.acknowledge_incident,
    "priority": notify.change_incident_priority,
    "call": notify.request_call_escalation,
    "approve": containment.approve_containment,
    "release": containment.release_containment,
}


def _guarded_handler(action: str) -> Any:
    """The ``@operator_access`` handler under the route's Functions and Durable wrappers."""
    user = _JSON_ROUTES[action]._function.get_user_function()
    # A durable-client route's user function is the SDK's middleware (it builds the client from the binding
    # string); the guarded handler under it takes the client we already have.
    guarded = getattr(user, "client_function", None) or user
    if getattr(guarded, "operator_action", None) != action or not inspect.iscoroutinefunction(guarded):
        raise RuntimeError(f"the {action} route is not an @operator_access({action!r}) handler")
    return guarded


_HANDLERS = {action: _guarded_handler(action) for action in _JSON_ROUTES}


def _html(status: int, body: str, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        body,
        status_code=status,
        mimetype="text/html",
        charset="utf-8",
        headers={**SECURITY_HEADERS, "Content-Type": "text/html; charset=utf-8", **(headers or {})},
    )


def _viewer(caller: access.Caller | None) -> Any:
    from shared.console.pages import Viewer

    roles = caller.roles if caller else frozenset()
    may = frozenset(a for a, allowed in access.POLICY.items() if roles & allowed)
    return Viewer(name=(caller.actor if caller and caller.actor else "local operator"), roles=roles, may=may)


def _csrf_key() -> bytes:
    key = runtime.context().settings.console_csrf_key
    # An unresolved Key Vault reference reaches the app as its own (public) text: never a key.
    if not key or key.startswith("@Microsoft.KeyVault("):
        return _RANDOM_KEY
    return key.encode("utf-8")


def _origin(req: func.HttpRequest) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


def _cookie(req: func.HttpRequest, name: str) -> str | None:
    for part in (req.headers.get("cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _token_for(req: func.HttpRequest, caller: access.Caller | None) -> tuple[str, dict[str, str]]:
    """This user's CSRF token (the cookie's, when it still verifies) and the Set-Cookie header to send."""
    from shared.console import csrf

    name = (caller.actor if caller else None) or ""
    current = _cookie(req, csrf.COOKIE)
    token = current if current and csrf.valid(_csrf_key(), name, current, current) else csrf.issue(_csrf_key(), name)
    secure = "; Secure" if urlsplit(req.url).scheme == "https" else ""
    cookie = (
        f"{csrf.COOKIE}={token}; Path=/api/console; HttpOnly; SameSite=Strict; Max-Age={csrf.MAX_AGE_SECONDS}{secure}"
    )
    return token, {"Set-Cookie": cookie}


def _now() -> datetime:
    return datetime.now(UTC)


def _error_page(exc: BaseException, caller: access.Caller | None) -> func.HttpResponse:
    from shared.console.pages import message_page

    status = error_response(exc).status_code
    return _html(status, message_page(f"Error {status}", str(exc) or type(exc).__name__, _viewer(caller)))


# -- pages ------------------------------------------------------------------------------------------------------------
@bp.route(route="console/static/console.css", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("console")
@handle_errors
async def console_css(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        _CSS,
        status_code=200,
        mimetype="text/css",
        charset="utf-8",
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/css; charset=utf-8",
            "Cache-Control": "private, max-age=300",
        },
    )


def _queue(params: dict[str, str], caller: access.Caller | None) -> str:
    from shared.console.pages import queue_page
    from shared.console.queue import QueueQuery, load_queue

    query = QueueQuery.parse(params)
    return queue_page(load_queue(runtime.context().store, query), _viewer(caller), _now())


@bp.route(route="console", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("console")
@handle_errors
async def console_queue(req: func.HttpRequest) -> func.HttpResponse:
    """The queue: open incidents, held approvals and failed containments first; filters; pages."""
    caller = access.current_caller()
    try:
        return _html(200, await asyncio.to_thread(_queue, dict(req.params), caller))
    except ValidationError as exc:
        return _error_page(exc, caller)


def _incident_view(incident_id: str, done: str | None) -> Any:
    from shared.console.pages import IncidentView
    from shared.containment import list_actions
    from shared.masking import mask_phones

    ctx = runtime.context()
    got = ctx.store.get_incident(incident_id)
    if got is None:
        raise IncidentNotFoundError(incident_id)
    try:
        verdict = ctx.integrity.verify(incident_id)
    except IncidentNotFoundError:
        verdict = {"valid": False, "reason": "not found"}
    return IncidentView(
        incident=got[0],
        actions=list_actions(ctx.store, incident_id),
        notifications=mask_phones(ctx.store.list_records("Notifications", incident_id)),
        timeline=ctx.store.list_events(incident_id),
        verdict=verdict,
        done=done,
    )


_DONE = {
    "ack": "acknowledged",
    "priority": "priority changed",
    "call": "call requested",
    "approve": "decision recorded",
    "release": "release requested",
}


@bp.route(route="console/incidents/{id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("console")
@handle_errors
async def console_incident(req: func.HttpRequest) -> func.HttpResponse:
    """One incident: why this priority, alerts, entities, containment, escalation, timeline, chain check."""
    from shared.console.pages import incident_page

    caller = access.current_caller()
    done = _DONE.get(req.params.get("done") or "")
    try:
        view = await asyncio.to_thread(_incident_view, req.route_params.get("id", ""), done)
    except IncidentNotFoundError as exc:
        return _error_page(exc, caller)
    return _html(200, incident_page(view, _viewer(caller), _now()))


@bp.route(route="console/audit", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@operator_access("evidence")
@handle_errors
async def console_audit(req: func.HttpRequest) -> func.HttpResponse:
    """Export a range, find reviews, see the latest evidence anchor."""
    from shared.console.pages import audit_page

    def latest() -> dict[str, Any] | None:
        got = runtime.context().integrity.latest_anchor()
        if got is None:
            return None
        name, manifest = got
        return {"name": name, "anchoredAt": manifest.anchored_at, "incidents": len(manifest.incidents)}

    anchor = await asyncio.to_thread(latest)
    caller = access.current_caller()
    return _html(200, audit_page(_viewer(caller), anchor, _now().date().isoformat()))


# -- forms: what will happen (GET), do it (POST) ------------------------------------------------------------------------
def _form_page(action: str, incident_id: str, caller: access.Caller | None, token: str, error: str | None) -> str:
    from shared.console.pages import confirm_page
    from shared.containment import list_actions

    ctx = runtime.context()
    got = ctx.store.get_incident(incident_id)
    if got is None:
        raise IncidentNotFoundError(incident_id)
    return confirm_page(action, got[0], list_actions(ctx.store, incident_id), _viewer(caller), token, error)


async def _show_form(
    action: str, req: func.HttpRequest, status: int = 200, error: str | None = None
) -> func.HttpResponse:
    caller = access.current_caller()
    token, cookie = _token_for(req, caller)
    try:
        page = await asyncio.to_thread(_form_page, action, req.route_params.get("id", ""), caller, token, error)
    except IncidentNotFoundError as exc:
        return _error_page(exc, caller)
    return _html(status, page, cookie)


_FIELDS = {
    "ack": ("note",),
    "priority": ("priority", "reason"),
    "call": ("reason",),
    "approve": ("decision", "reason"),
    "release": ("reason",),
}


async def _do(action: str, req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    from shared.console import csrf

    caller = access.current_caller()
    if caller is None or not caller.verified or not caller.actor:
        return _error_page(UnauthorizedError("the console acts only for a signed-in user"), caller)
    form = dict(parse_qsl((req.get_body() or b"").decode("utf-8", "replace"), keep_blank_values=True))
    if not csrf.same_origin(
        req.headers.get("origin"), req.headers.get("sec-fetch-site"), _origin(req)
    ) or not csrf.valid(_csrf_key(), caller.actor, form.get(csrf.FIELD), _cookie(req, csrf.COOKIE)):
        return await _show_form(
            action, req, 403, "the form expired or did not come from this console: review it and submit again"
        )
    body = {name: form[name] for name in _FIELDS[action] if form.get(name, "").strip()}
    inner = func.HttpRequest(
        method="POST",
        url=req.url.rsplit("/console/incidents/", 1)[0] + f"/incidents/{req.route_params.get('id', '')}/{action}",
        headers={k: v for k, v in req.headers.items() if k.lower() not in ("content-type", "content-length", "cookie")}
        | {"content-type": "application/json"},
        params={},
        route_params={"id": req.route_params.get("id", "")},
        body=json.dumps(body).encode("utf-8"),
    )
    resp = await _HANDLERS[action](req=inner, client=client)
    if resp.status_code >= 400:
        try:
            message = json.loads(resp.get_body()).get("error") or resp.get_body().decode("utf-8", "replace")
        except ValueError:
            message = resp.get_body().decode("utf-8", "replace")
        return await _show_form(action, req, resp.status_code, message)
    location = f"/api/console/incidents/{req.route_params.get('id', '')}?done={action}"
    return func.HttpResponse(status_code=303, headers={**SECURITY_HEADERS, "Location": location})


def _routes(action: str) -> None:
    """GET (what will happen + the form) and POST (do it) for one action, both under its own policy."""

    async def show(req: func.HttpRequest) -> func.HttpResponse:
        return await _show_form(action, req)

    async def act(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
        return await _do(action, req, client)

    show.__name__ = show.__qualname__ = f"console_{action}_form"
    act.__name__ = act.__qualname__ = f"console_{action}"
    bp.route(route=f"console/incidents/{{id}}/{action}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)(
        operator_access(action)(handle_errors(show))
    )
    bp.route(route=f"console/incidents/{{id}}/{action}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)(
        bp.durable_client_input(client_name="client")(operator_access(action)(handle_errors(act)))
    )


for _action in _JSON_ROUTES:
    _routes(_action)
