"""What the write-back needs from Sentinel and Defender for Cloud (the adapters implement these), and the errors.

Adapters raise only ``WritebackError`` subclasses, so the service can tell a
concurrent edit (re-read and merge again), a transient failure (retry later,
with backoff) and a final one (evidence it and stop until something changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class WritebackError(Exception):
    """A write-back call failed. ``final``: retrying the same request cannot succeed."""

    final = False

    def __init__(self, reason: str, *, status: int | None = None, code: str | None = None):
        super().__init__(reason)
        self.reason, self.status, self.code = reason, status, code

    def evidence(self) -> dict[str, Any]:
        """What the timeline records about the failure (no secrets, no response bodies)."""
        return {"reason": self.reason[:500], "status": self.status, "code": self.code, "final": self.final}


class TransientWritebackError(WritebackError):
    """429, 5xx, a timeout or a dropped connection, after the client's own retries."""


class ConcurrentEditError(WritebackError):
    """Someone changed the resource between our read and our write (HTTP 412, or 409 on a stale etag)."""


class TargetNotFoundError(WritebackError):
    """The Sentinel incident or Defender alert does not exist (deleted, or a wrong id)."""

    final = True


class AccessDeniedError(WritebackError):
    """The app's identity may not do this (grant Microsoft Sentinel Responder / the alert-state role)."""

    final = True


class RequestRejectedError(WritebackError):
    """The service refused the request as invalid (400 and the like)."""

    final = True


@dataclass
class SentinelIncident:
    """A Sentinel incident as read: its ARM document and the ETag to write it back under."""

    id: str
    document: dict[str, Any]
    etag: str | None

    @property
    def properties(self) -> dict[str, Any]:
        return self.document.get("properties") or {}


@dataclass
class SentinelComment:
    id: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


class SentinelIncidents(Protocol):
    """Microsoft Sentinel incidents through ARM (``Microsoft.SecurityInsights/incidents``)."""

    def get_incident(self, incident_id: str) -> SentinelIncident: ...

    def replace_incident(self, incident_id: str, document: dict[str, Any], etag: str | None) -> SentinelIncident:
        """PUT the incident under ``etag`` (If-Match); ``ConcurrentEditError`` when it changed meanwhile."""

    def find_comment(self, incident_id: str, comment_id: str) -> tuple[SentinelComment | None, int]:
        """(our comment if it exists, how many comments the incident has) from one listing."""

    def put_comment(self, incident_id: str, comment_id: str, message: str) -> None: ...


class DefenderAlerts(Protocol):
    """Defender for Cloud security alerts through ARM (``Microsoft.Security/locations/{loc}/alerts``)."""

    def get_status(self, alert_id: str) -> str | None:
        """The alert's status (Active, InProgress, Resolved, Dismissed)."""

    def set_state(self, alert_id: str, action: str) -> None:
        """POST ``…/alerts/{name}/{action}`` (activate, inProgress, resolve, dismiss)."""
