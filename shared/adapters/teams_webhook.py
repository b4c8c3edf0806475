"""Teams channels through Teams Workflows webhooks (issue 16): one Adaptive Card per POST.

The webhook URL (a "When a Teams webhook request is received" workflow, "Post card in a chat or
channel") is a secret: the ``sig`` in its query lets anyone post to the channel. It is read from Key
Vault by secret name (``shared.adapters.key_vault``) and used for one request; what leaves this module
is its SHA-256 (evidence) and the HTTP status. Errors never carry the URL: ``requests`` puts it in its
exception texts, so those are reduced to their type.

The body is the message shape the Workflows template expects::

    {"type": "message",
     "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                      "contentUrl": null, "content": <the Adaptive Card>}]}

A workflow answers 202 Accepted (200 from some templates) once it has taken the message. Bounded
timeouts and no redirects: a slow channel costs at most ``TIMEOUT`` per card, and the URL is never
forwarded to another host. Retrying is the Teams step's job (``shared.notify.teams``), not this module's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from shared.errors import AdapterError
from shared.notify.teams_ports import PostedCard, TeamsDeliveryError

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
TIMEOUT = (5.0, 10.0)  # connect, read (seconds)
MAX_RETRY_AFTER = 3600.0


_SIG = re.compile(r"(?i)\b(sig|code)=[^&\s\"']+")


class _RedactSignatures(logging.Filter):
    """urllib3 logs each request line (path and query) at DEBUG: the webhook's ``sig`` must not reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SIG.search(message):
            record.msg, record.args = _SIG.sub(r"\1=REDACTED", message), ()
        return True


_redacting = False


def _redact_request_logs() -> None:
    global _redacting
    if not _redacting:
        logging.getLogger("urllib3.connectionpool").addFilter(_RedactSignatures())
        _redacting = True


class SecretReader(Protocol):
    def secret(self, name: str) -> str: ...

    def forget(self, name: str) -> None: ...


def message_for(card: dict[str, Any]) -> dict[str, Any]:
    """The Workflows webhook body carrying one Adaptive Card."""
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
    }


class TeamsWebhookPoster:
    """Posts cards to the channel whose webhook URL is the named Key Vault secret."""

    def __init__(self, secrets: SecretReader, timeout: tuple[float, float] | None = None):
        self.secrets, self._timeout = secrets, timeout
        _redact_request_logs()

    @property
    def timeout(self) -> tuple[float, float]:
        return self._timeout or TIMEOUT  # read when posting: tests shorten the module's TIMEOUT

    def post(self, secret_name: str, card: dict[str, Any]) -> PostedCard:
        import requests

        try:
            url = self.secrets.secret(secret_name)
        except AdapterError as exc:
            raise TeamsDeliveryError(f"webhook URL unavailable: {exc.reason}", exc.status, final=exc.final) from None
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        if not url.lower().startswith("https://"):
            raise TeamsDeliveryError(
                f"Key Vault secret {secret_name!r} is not an https webhook URL", final=True, url_sha256=digest
            )
        body = json.dumps(message_for(card), ensure_ascii=False).encode("utf-8")
        try:
            resp = requests.post(
                url,
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise TeamsDeliveryError("the Teams webhook did not answer in time", url_sha256=digest) from None
        except requests.RequestException as exc:
            raise TeamsDeliveryError(
                f"the Teams webhook could not be reached ({type(exc).__name__})", url_sha256=digest
            ) from None
        status = resp.status_code
        if 200 <= status < 300:
            return PostedCard(status, digest)
        if status in (401, 403, 404, 410):
            # Revoked, disabled or rotated: read the secret again next time instead of the cached URL.
            self.secrets.forget(secret_name)
        transient = status in (408, 429) or status >= 500 or status in (401, 403, 404, 410)
        raise TeamsDeliveryError(
            f"the Teams webhook answered HTTP {status}",
            status,
            final=not transient,
            retry_after=_retry_after(resp.headers.get("Retry-After")),
            url_sha256=digest,
        )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            from datetime import UTC, datetime

            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
