"""Double-submit CSRF tokens bound to the signed-in user (issue 16). Pure.

A console form carries a token that is also set as a cookie. A POST is accepted only when the form
and the cookie agree AND the token's HMAC (key from ``CONSOLE_CSRF_KEY``) was made for the user who
is signed in now: a token lifted from another user's page, or planted as a cookie by a sibling
subdomain, does not verify for this user. The routes also refuse cross-site requests by their
``Origin`` / ``Sec-Fetch-Site`` headers (``same_origin``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

COOKIE = "console_csrf"
FIELD = "csrf"
MAX_AGE_SECONDS = 12 * 3600  # a working shift; the page is simply reloaded for a fresh one


def _mac(key: bytes, principal: str, issued: int, nonce: str) -> str:
    msg = f"{principal.casefold()}\n{issued}\n{nonce}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode("ascii").rstrip("=")


def issue(key: bytes, principal: str, now: float | None = None) -> str:
    """A fresh token for ``principal``."""
    issued = int(now if now is not None else time.time())
    nonce = secrets.token_urlsafe(12)
    return f"{issued}.{nonce}.{_mac(key, principal, issued, nonce)}"


def valid(
    key: bytes, principal: str, form_token: str | None, cookie_token: str | None, now: float | None = None
) -> bool:
    """The form and cookie tokens agree, were made for ``principal`` with ``key``, and are not stale."""
    if not form_token or not cookie_token or not hmac.compare_digest(form_token, cookie_token):
        return False
    parts = form_token.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return False
    issued, nonce, mac = int(parts[0]), parts[1], parts[2]
    age = (now if now is not None else time.time()) - issued
    if age < -300 or age > MAX_AGE_SECONDS:
        return False
    return hmac.compare_digest(mac, _mac(key, principal, issued, nonce))


def same_origin(origin: str | None, fetch_site: str | None, own_origin: str) -> bool:
    """Whether a state-changing request comes from the console itself (browsers send one of the two)."""
    if fetch_site is not None and fetch_site.strip().lower() not in ("same-origin", "none"):
        return False
    if origin is not None and origin.strip() and origin.strip().lower() != "null":
        return origin.strip().rstrip("/").lower() == own_origin.rstrip("/").lower()
    if origin is not None and origin.strip().lower() == "null":
        return False
    return fetch_site is not None  # neither header: not a browser form we served
