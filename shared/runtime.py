"""Composition root: settings, configuration and adapters, built once per process on first use.

Everything here is lazy so a cold start pays only for what the first
invocation needs. ``reset()`` drops the cache (tests change settings).
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path

from shared.settings import Settings

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
        from shared.scoring import ScoringRules

        return ScoringRules.load(_resolve(self.settings.scoring_rules_file))

    @cached_property
    def store(self):
        from shared.store import TableEvidenceStore

        with self._lock:
            return TableEvidenceStore.from_settings(self.settings)

    @cached_property
    def ingest(self):
        from shared.ingest import IngestService

        # Sentinel updates of known incidents go to the write-back's handler (built on the first one).
        return IngestService(
            self.store,
            self.rules,
            self.partners,
            self.settings,
            source_updates=lambda incident, alert, at: self.sentinel_updates.handle(incident, alert, at),
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

    @cached_property
    def containment(self):
        from shared.adapters.arm_network import ArmNetworkIsolation
        from shared.adapters.graph_directory import GraphDirectory
        from shared.containment.service import ContainmentService

        # Typed here so mypy checks that the adapters satisfy the containment ports (Protocols).
        network: ArmNetworkIsolation = self.network_isolation
        directory: GraphDirectory = self.directory
        return ContainmentService(self.store, self.partners, self.settings, network, directory)

    @cached_property
    def notifications(self):
        from shared.notify.service import NotificationService

        return NotificationService(self.store, self.partners, self.settings)

    @cached_property
    def reviews(self):
        from shared.review import ReviewService

        return ReviewService(self.store, self.partners)

    @cached_property
    def sla_reports(self):
        from shared.reports import SlaReporter

        return SlaReporter(self.store, self.partners)

    @cached_property
    def writeback(self):
        """Write-back to Sentinel incidents and Defender for Cloud alerts (ARM clients built on first use)."""
        from shared.writeback.service import WritebackService

        return WritebackService(self.store, self.partners, self.settings)

    @cached_property
    def sentinel_updates(self):
        """Incident updates coming back from Sentinel: evidence and priority changes, no write-back loop."""
        from shared.writeback.updates import SentinelUpdateHandler, default_priority_notifier

        return SentinelUpdateHandler(self.store, self.partners, default_priority_notifier(self.notifications))

    @cached_property
    def investigator(self):
        """Log Analytics enrichment, or None when no workspace is configured."""
        if not self.settings.log_analytics_workspace_id:
            return None
        from shared.adapters.log_analytics import LogAnalyticsSource
        from shared.enrichment import IncidentInvestigator

        return IncidentInvestigator(self.store, LogAnalyticsSource(self.settings))


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
