"""Teams Workflows webhooks in the fake (issue 16): the channels cards are posted to.

``teams_webhook(channel)`` makes a workflow and returns its URL (the shape Power Automate gives:
``/powerautomate/automations/direct/workflows/{id}/triggers/manual/paths/invoke?api-version=1&…&sig=…``);
a POST to it with the right ``sig`` and a message carrying one Adaptive Card is answered ``202`` and
recorded (``teams_posts()``); a wrong ``sig`` is ``401``, a body that is not such a message ``400``.
No bearer token: the ``sig`` is the credential. Faults and latency as for every API (``api="teams"``).
"""

from __future__ import annotations

import copy
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from devtools.fakes.records import FakeResponse, RecordedRequest
from devtools.fakes.server import FakeServer

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
WORKFLOW_PREFIX = "/powerautomate/automations/direct/workflows/"


@dataclass
class TeamsPost:
    """One card a channel received."""

    channel: str
    card: dict[str, Any]
    message: dict[str, Any]
    received_at: float


class TeamsFake(FakeServer):
    """The Teams Workflows part of ``AzureFake``."""

    def _init_state(self) -> None:
        super()._init_state()
        self._workflows: dict[str, tuple[str, str]] = {}  # workflow id -> (channel, sig)
        self._teams_posts: list[TeamsPost] = []

    def teams_webhook(self, channel: str) -> str:
        """A new workflow posting to ``channel``; its URL (a secret: keep it in Key Vault)."""
        workflow, sig = uuid.uuid4().hex, secrets.token_urlsafe(32)
        with self._lock:
            self._workflows[workflow] = (channel, sig)
        return (
            f"{self.url}{WORKFLOW_PREFIX}{workflow}/triggers/manual/paths/invoke"
            f"?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}"
        )

    def teams_posts(self, channel: str | None = None) -> list[TeamsPost]:
        with self._lock:
            return [copy.deepcopy(p) for p in self._teams_posts if channel is None or p.channel == channel]

    def _teams_answer(self, req: RecordedRequest) -> FakeResponse:
        parts = req.path[len(WORKFLOW_PREFIX) :].split("/")
        found = self._workflows.get(parts[0]) if parts else None
        if req.method != "POST" or found is None or parts[1:] != ["triggers", "manual", "paths", "invoke"]:
            return FakeResponse(404, {"error": {"code": "WorkflowNotFound", "message": "The workflow was not found."}})
        channel, sig = found
        if req.query.get("sig") != sig:
            return FakeResponse(
                401, {"error": {"code": "DirectApiAuthorizationRequired", "message": "The signature is invalid."}}
            )
        body = req.json
        attachments = body.get("attachments") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or body.get("type") != "message"
            or not isinstance(attachments, list)
            or len(attachments) != 1
            or attachments[0].get("contentType") != ADAPTIVE_CARD
            or not isinstance(attachments[0].get("content"), dict)
            or attachments[0]["content"].get("type") != "AdaptiveCard"
        ):
            return FakeResponse(
                400,
                {"error": {"code": "InvalidRequestContent", "message": "Expected a message with one Adaptive Card."}},
            )
        self._teams_posts.append(TeamsPost(channel, attachments[0]["content"], body, time.time()))
        return FakeResponse(202, None)
