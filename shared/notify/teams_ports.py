"""What the Teams step needs from a channel poster (issue 16): a port, its answer and its failure.

A partner's (or the SOC's) Teams channel is a Teams Workflows webhook whose URL is a secret: it is kept
in Key Vault and the registry names the secret (``teamsWebhookSecret``). The domain hands the poster the
secret NAME and the card; it never sees the URL. ``shared.adapters.teams_webhook.TeamsWebhookPoster``
satisfies the port (reading the URL through ``shared.adapters.key_vault``); ``shared.runtime`` wires it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from shared.errors import AdapterError


@dataclass(frozen=True)
class PostedCard:
    """What the channel answered: the HTTP status, and the SHA-256 of the webhook URL used (evidence may
    carry the hash, never the URL: whoever has the URL can post to the channel)."""

    status: int
    url_sha256: str


class TeamsDeliveryError(AdapterError):
    """The card could not be posted. ``retry_after``: seconds the channel asked to wait (429/503);
    ``final``: retrying cannot help (no such secret, the webhook refused the card as malformed)."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        final: bool = False,
        retry_after: float | None = None,
        url_sha256: str | None = None,
    ):
        super().__init__(message, status=status)
        self.final = final
        self.retry_after = retry_after
        self.url_sha256 = url_sha256

    def evidence(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": str(self)[:500],
            "final": self.final,
            **({"retryAfterSeconds": self.retry_after} if self.retry_after is not None else {}),
            **({"urlSha256": self.url_sha256} if self.url_sha256 else {}),
        }


class TeamsPoster(Protocol):
    """Posts one Adaptive Card to the channel whose webhook URL is the Key Vault secret ``secret_name``;
    raises ``TeamsDeliveryError`` when it cannot."""

    def post(self, secret_name: str, card: dict[str, Any]) -> PostedCard: ...
