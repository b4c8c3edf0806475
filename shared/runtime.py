"""Composition root: settings, configuration and adapters, built once per process on first use.

Everything here is lazy so a cold start pays only for what the first
invocation needs. ``reset()`` drops the cache (tests change settings).
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from shared.settings import Settings

if TYPE_CHECKING:  # the ports, for the type checker only (cold start imports nothing it does not use)
    from shared.adapters.acs_callback_tokens import AcsCallbackTokens  # issue 12
    from shared.anchor import AnchorArchive, EvidenceIntegrity  # issue 12
    from shared.notify.ports import MailSender, PhoneCaller
    from shared.notify.teams_ports import TeamsPoster  # issue 16

APP_ROOT = Path(__file__).resolve().parent.parent


def _resolve(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else APP_ROOT / p


class AppContext:
    """Lazily built collaborators of the domain."""

    def __init__(self, settings: Settings | None = None):
        self._settings = settings
        self._lock = threading.RLock()

    @cached_property
    def settings(self) -> Settings:
        return self._settings or Settings.from_env()

    @cached_property
    def partners(self):
        from shared.partners import PartnerRegistry

        return PartnerRegistry.load(_resolve(self.settings.partners_file))

    @cached_property
    def rules(self):
        # issue 13: the rules file plus the rules derived from the alert catalogue it names.
        from shared.triage.catalogue import load_rules

        return load_rules(_resolve(self.settings.scoring_rules_file))

    @cached_property
    def store(self):
        from shared.adapters.table_store import TableEvidenceStore

        with self._lock:
            return TableEvidenceStore.from_settings(self.settings)

    @cached_property
    def ingest(self):
        from shared.ingest import IngestService

        # Sentinel updates of known incidents go to their own handler (built on the first one).
        return IngestService(
            self.store,
            self.rules,
            self.partners,
            self.settings,
            source_updates=lambda incident, alert, at: self.sentinel_updates.handle(incident, alert, at),
            suppressions=self.suppressions.suppressing,  # issue 14: maintenance windows
        )

    @cached_property
    def network_isolation(self):
        """Quarantine NSGs and NIC updates on ARM (SDK clients built on first use)."""
        from shared.adapters.arm_network import ArmNetworkIsolation

        return ArmNetworkIsolation(self.settings)

    @cached_property
    def directory(self):
        """Entra ID lockout through Microsoft Graph (SDK client built on first use)."""
        from shared.adapters.graph_directory import GraphDirectory

        return GraphDirectory(self.settings)

    # -- issue 11: each partner's own directory (Graph with that tenant's token) --
    @cached_property
    def directories(self):
        """One Graph directory per tenant (the SOC's own: the managed identity; a partner's: the SOC app)."""
        from shared.adapters.graph_directory import GraphDirectories

        return GraphDirectories(self.settings)

    @cached_property
    def containment(self):
        from shared.adapters.arm_network import ArmNetworkIsolation
        from shared.adapters.graph_directory import GraphDirectories
        from shared.containment.service import ContainmentService

        # Typed here so mypy checks that the adapters satisfy the containment ports (Protocols).
        network: ArmNetworkIsolation = self.network_isolation
        directories: GraphDirectories = self.directories
        return ContainmentService(self.store, self.partners, self.settings, network, directories)

    @cached_property
    def mailer(self) -> MailSender | None:
        """Email through Graph sendMail, or None when MAIL_SENDER is not set (email disabled)."""
        if not self.settings.mail_sender:
            return None
        from shared.adapters.graph_mail import GraphMailer

        return GraphMailer(self.settings)

    @cached_property
    def caller(self) -> PhoneCaller | None:
        """Calls through ACS Call Automation, or None when ACS_ENDPOINT / ACS_CALLER_ID are not set."""
        if not (self.settings.acs_endpoint and (self.settings.acs_caller_id or self.settings.acs_caller_ids)):
            return None
        from shared.adapters.acs_calls import AcsCaller

        return AcsCaller(self.settings)

    @cached_property
    def notifications(self):
        from shared.notify.service import NotificationService

        return NotificationService(
            self.store, self.partners, self.settings, self.mailer, self.caller, teams=self.teams_poster
        )

    @cached_property
    def reviews(self):
        from shared.review.service import ReviewService

        return ReviewService(
            self.store, self.partners, integrity=self.integrity.check
        )  # issue 12: same check as verify

    @cached_property
    def sla_reports(self):
        from shared.reports import SlaReporter

        return SlaReporter(self.store, self.partners)

    @cached_property
    def sentinel_incidents(self):
        """Sentinel incidents on ARM, for the write-back (pipeline client built on first use)."""
        from shared.adapters.sentinel import ArmSentinelIncidents

        return ArmSentinelIncidents(self.settings)

    @cached_property
    def defender_alerts(self):
        """Defender for Cloud alert state on ARM, for the write-back (pipeline client built on first use)."""
        from shared.adapters.defender_alerts import ArmDefenderAlerts

        return ArmDefenderAlerts(self.settings)

    @cached_property
    def writeback(self):
        """Write-back to Sentinel incidents and Defender for Cloud alerts."""
        from shared.writeback.service import WritebackService

        return WritebackService(self.store, self.partners, self.settings, self.sentinel_incidents, self.defender_alerts)

    @cached_property
    def sentinel_updates(self):
        """Incident updates coming back from Sentinel: evidence and priority changes, no write-back loop."""
        from shared.sentinel_updates import SentinelUpdateHandler, default_priority_notifier

        return SentinelUpdateHandler(self.store, self.partners, default_priority_notifier(self.notifications))

    @cached_property
    def log_analytics(self):
        """Log Analytics queries (SDK client built on first use); only used when a workspace is configured."""
        from shared.adapters.log_analytics import LogAnalyticsSource

        return LogAnalyticsSource(self.settings)

    # issue 13: the what-if replay (reads Log Analytics, the rules and the partners; writes nothing)
    @cached_property
    def replay(self):
        from shared.triage.whatif import ReplayService

        # issue 13: every registered partner workspace (issue 11) as well as LOG_ANALYTICS_WORKSPACE_ID
        return ReplayService(
            self.log_analytics if self.settings.log_analytics_workspace_id else None,
            self.rules,
            self.partners,
            self.settings,
            source_for=lambda ws: self._workspace_source((ws.workspaceId,)),
        )

    @cached_property
    def poller(self):
        """The timer's catch-up over SecurityIncident / SecurityAlert rows (``poll_log_analytics``)."""
        from shared.poller import LogAnalyticsPoller

        return LogAnalyticsPoller(self.store, self.ingest, self.log_analytics, self.settings)

    @cached_property
    def investigator(self):
        """Log Analytics enrichment, or None when no workspace is configured (SOC-wide or a partner's).
        Issue 11: an incident of a partner with ``workspaces`` is investigated in those workspaces."""
        partner_workspaces = any(p.workspaces for p in self.partners.partners)
        if not self.settings.log_analytics_workspace_id and not partner_workspaces:
            return None
        from shared.enrichment import IncidentInvestigator

        return IncidentInvestigator(
            self.store,
            self.log_analytics if self.settings.log_analytics_workspace_id else None,
            source_for=self._investigation_source if partner_workspaces else None,
        )

    # -- issue 11: partners' own workspaces --
    def _investigation_source(self, incident):
        partner = self.partners.get(incident.partner_id)
        if partner is None or not partner.workspaces:
            return self.log_analytics if self.settings.log_analytics_workspace_id else None
        return self._workspace_source(tuple(ws.workspaceId for ws in partner.workspaces))

    def _workspace_source(self, workspace_ids: tuple[str, ...]):
        from shared.adapters.log_analytics import LogAnalyticsSource

        with self._lock:
            cache = self.__dict__.setdefault("_workspace_sources", {})
            if workspace_ids not in cache:
                cache[workspace_ids] = LogAnalyticsSource(self.settings, workspace_ids=list(workspace_ids))
            return cache[workspace_ids]

    @cached_property
    def workspace_poll(self):
        """Timer ``poll_partner_workspaces``: each partner workspace since its own watermark."""
        from shared.poller import LogAnalyticsPoller
        from shared.workspace_poll import PartnerWorkspacePoll, incident_refs, watermark_name

        def poller_for(ws):
            source = self._workspace_source((ws.workspaceId,))
            return LogAnalyticsPoller(
                self.store,
                self.ingest,
                source,
                self.settings,
                state_name=watermark_name(ws.workspaceId),
                decorate=incident_refs(ws),
            )

        return PartnerWorkspacePoll(self.partners, self.settings, poller_for)

    # -- issue 11: partner preflight --
    @cached_property
    def preflight(self):
        """``GET /api/partners/{id}/preflight``: Graph per tenant, ARM permissions, workspaces."""
        from shared.adapters.graph_directory import GraphDirectories
        from shared.adapters.preflight_azure import ArmPreflightAccess, GraphTenantAccess
        from shared.preflight.run import PartnerPreflight

        directories: GraphDirectories = self.directories
        return PartnerPreflight(
            self.partners,
            self.settings,
            GraphTenantAccess(self.settings, directories),
            ArmPreflightAccess(self.settings),
        )

    @cached_property
    def daily_preflight(self):
        """The timer ``partner_preflight``: every partner, evidenced, the SOC emailed about those not ready."""
        from shared.evidence import now_ms
        from shared.preflight.daily import DailyPreflight

        return DailyPreflight(self.preflight, self.partners, self.store, self.mailer, now_ms)

    # -- issue 12: evidence anchored outside the tables -------------------------------------------------------
    @cached_property
    def archive(self) -> AnchorArchive | None:
        from shared.adapters.archive_blob import BlobAnchorArchive

        return BlobAnchorArchive.from_settings(self.settings)

    @cached_property
    def integrity(self) -> EvidenceIntegrity:
        from shared.anchor import EvidenceIntegrity

        return EvidenceIntegrity(self.store, self.archive)

    @cached_property
    def acs_callback_tokens(self) -> AcsCallbackTokens:
        from shared.adapters.acs_callback_tokens import AcsCallbackTokens

        return AcsCallbackTokens(self.settings.acs_callback_openid_config, self.settings.acs_resource_id)

    # -- issue 14: maintenance windows ----------------------------------------------------------------
    @cached_property
    def suppressions(self):
        from shared.evidence import now_ms
        from shared.suppressions import SuppressionService

        return SuppressionService(self.store, now_ms)

    # -- issue 16: Teams channels (webhook URLs in Key Vault, named in the partner registry) ---------------
    @cached_property
    def teams_poster(self) -> TeamsPoster | None:
        """Teams Workflows webhooks whose URLs are read from KEY_VAULT_URL, or None when it is not set."""
        if not self.settings.key_vault_url:
            return None
        from shared.adapters.key_vault import KeyVaultSecrets
        from shared.adapters.teams_webhook import TeamsWebhookPoster

        return TeamsWebhookPoster(KeyVaultSecrets(self.settings))


_context: AppContext | None = None
_context_lock = threading.Lock()


def context() -> AppContext:
    """The process-wide context (created on first use)."""
    global _context
    if _context is None:
        with _context_lock:
            if _context is None:
                _context = AppContext()
    return _context


def reset(new: AppContext | None = None) -> None:
    """Forget cached settings and clients (tests, settings reload)."""
    global _context
    with _context_lock:
        _context = new
