"""The timer poll of each partner's own Sentinel workspaces (issue 11, docs/spec/tenancy.md).

Every workspace in a partner's ``workspaces`` is polled like the SOC-wide ``LOG_ANALYTICS_WORKSPACE_ID``
(``LogAnalyticsPoller``: ``SecurityIncident`` / ``SecurityAlert`` since a watermark), through Lighthouse
with the managed identity, each with its own watermark (state ``log-analytics-watermark-{workspaceId}``),
so one slow or refused workspace neither blocks nor skips the others. A partner workspace that is also
the SOC-wide one is left to ``poll_log_analytics``. Rows resolve to their partner by workspace id, and a
``SecurityIncident`` row gets its incident's ARM id (built from the registry's subscription, resource group
and workspace name), so the write-back reaches the partner's Sentinel incident through Lighthouse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from shared.models import Alert
from shared.partners import PartnerRegistry, Workspace
from shared.poller import STATE_NAME, LogAnalyticsPoller, PollReport
from shared.settings import Settings
from shared.sources import SENTINEL_REF, sentinel_incident_id

log = logging.getLogger("soc_responder.poller")


def watermark_name(workspace_id: str) -> str:
    return f"{STATE_NAME}-{workspace_id.lower()}"


def incident_refs(workspace: Workspace) -> Callable[[str, Alert], Alert]:
    """The poller's ``decorate``: a polled Sentinel incident of this workspace carries its ARM id."""

    def decorate(table: str, alert: Alert) -> Alert:
        if table != "SecurityIncident" or alert.extended_properties.get(SENTINEL_REF):
            return alert
        rid = sentinel_incident_id(
            None,
            subscription=workspace.subscriptionId,
            resource_group=workspace.resourceGroup,
            workspace=workspace.workspaceName,
            name=alert.source_id,
        )
        if rid is None:
            return alert
        return alert.model_copy(update={"extended_properties": {**alert.extended_properties, SENTINEL_REF: rid}})

    return decorate


@dataclass(frozen=True)
class WorkspacePoll:
    partner: str
    workspace: str
    report: PollReport


class PartnerWorkspacePoll:
    def __init__(
        self, partners: PartnerRegistry, settings: Settings, poller_for: Callable[[Workspace], LogAnalyticsPoller]
    ):
        self.partners, self.settings, self.poller_for = partners, settings, poller_for

    def workspaces(self) -> list[tuple[str, Workspace]]:
        shared = (self.settings.log_analytics_workspace_id or "").lower()
        return [(p.id, ws) for p in self.partners.partners for ws in p.workspaces if ws.workspaceId != shared]

    def poll(self) -> list[WorkspacePoll]:
        out = []
        for partner, ws in self.workspaces():
            try:
                report = self.poller_for(ws).poll()
            except Exception as exc:  # one workspace's failure must not stop the others
                log.warning("poll of %s's workspace %s failed: %s", partner, ws.workspaceName, exc)
                report = PollReport("", "", errors=[f"poll failed ({type(exc).__name__})"])
            out.append(WorkspacePoll(partner, ws.workspaceName, report))
        return out
