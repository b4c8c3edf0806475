"""Defender for Cloud alert state through Azure Resource Manager, behind ``shared.writeback.ports.DefenderAlerts``.

REST on the same ARM pipeline as the Sentinel adapter, API version
``2022-01-01`` (the current one for ``Microsoft.Security/locations/alerts``),
rather than ``azure-mgmt-security`` for two calls:

- ``GET {alertId}``: the alert's ``properties.status`` (Active, InProgress,
  Resolved, Dismissed), read before a change so an alert a person dismissed or
  resolved is left alone;
- ``POST {alertId}/{activate|inProgress|resolve|dismiss}`` → 204. The alert id
  is resource-group- or subscription-level, as the alert came in. These POSTs
  are idempotent, so they are retried like PUTs (429/5xx/timeouts).
"""

from __future__ import annotations

from typing import Any

from shared.adapters.sentinel import ArmRest
from shared.errors import RequestRejectedError
from shared.settings import Settings

DEFENDER_ALERTS_API_VERSION = "2022-01-01"
ACTIONS = ("activate", "inProgress", "resolve", "dismiss")


class ArmDefenderAlerts:
    """``DefenderAlerts`` on ARM."""

    def __init__(self, settings: Settings, client: Any = None, api_version: str = DEFENDER_ALERTS_API_VERSION):
        self.rest = ArmRest(settings, client)
        self.api_version = api_version

    def get_status(self, alert_id: str) -> str | None:
        _, payload, _ = self.rest.send(
            "GET", self.rest.url(alert_id, self.api_version), what="read the Defender for Cloud alert"
        )
        status = ((payload or {}).get("properties") or {}).get("status")
        return str(status) if status else None

    def set_state(self, alert_id: str, action: str) -> None:
        if action not in ACTIONS:
            raise RequestRejectedError(f"unknown alert action {action!r}", code="InvalidAction")
        self.rest.send(
            "POST",
            self.rest.url(alert_id, self.api_version, f"/{action}"),
            retry_post=True,
            what=f"set the Defender for Cloud alert to {action}",
        )
