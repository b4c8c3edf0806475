"""What the write-back needs from Sentinel and Defender for Cloud (``shared.adapters.sentinel`` and
``defender_alerts`` implement these, ``shared.runtime`` hands them to the service), and the values they exchange.

Adapters raise only the shared adapter errors (``shared.errors.AdapterError`` and its kinds), so the
service can tell a concurrent edit (``ConcurrentEditError``: re-read and merge again), a transient
failure (``TransientError``: retry later, with backoff) and a final one (``final``: evidence it and stop
until something changes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class SentinelIncident:
    """A Sentinel incident as read: its ARM document and the ETag to write it back under."""

    id: str
    document: dict[str, Any]
    etag: str | None

    @property
    def properties(self) -> dict[str, Any]:
        return self.document.get("properties") or {}


@dataclass(frozen=True)
class SentinelComment:
    id: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)


class SentinelIncidents(Protocol):
    """Microsoft Sentinel incidents through ARM (``Microsoft.SecurityInsights/incidents``)."""

    def get_incident(self, incident_id: str) -> SentinelIncident: ...

    def replace_incident(self, incident_id: str, document: dict[str, Any], etag: str | None) -> SentinelIncident:
        """PUT the incident under ``etag`` (If-Match); ``shared.errors.ConcurrentEditError`` when it changed
        meanwhile."""

    def find_comment(self, incident_id: str, comment_id: str) -> tuple[SentinelComment | None, int]:
        """(our comment if it exists, how many comments the incident has) from one listing."""

    def put_comment(self, incident_id: str, comment_id: str, message: str) -> None: ...


class DefenderAlerts(Protocol):
    """Defender for Cloud security alerts through ARM (``Microsoft.Security/locations/{loc}/alerts``)."""

    def get_status(self, alert_id: str) -> str | None:
        """The alert's status (Active, InProgress, Resolved, Dismissed)."""

    def set_state(self, alert_id: str, action: str) -> None:
        """POST ``…/alerts/{name}/{action}`` (activate, inProgress, resolve, dismiss)."""
