"""``ContainmentService``: the one entry point the triggers and tests use (a facade over the use cases).

Each use case lives in its own module and is wired here from the ports ``shared/runtime.py`` hands in:

- ``execute``: run one planned action (``isolate_vm`` / ``lockout``), or record it failed after retries;
- ``incident_status``: conclude a run (incident status, first-response stamp);
- ``approval``: approve / reject held actions;
- ``release``: restore the exact prior state (``restore``) and withdraw what never ran.

Rows are typed ``records.ActionRecord`` read and written by ``ledger.Ledger``; the blast-radius
breaker is ``breaker.BlastRadiusBreaker``; how an attempt's outcome is recorded is ``outcome.Outcomes``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.containment.approval import Approvals
from shared.containment.breaker import BlastRadiusBreaker
from shared.containment.execute import ActionExecutor
from shared.containment.incident_status import IncidentUpdates
from shared.containment.isolate_vm import VmIsolation
from shared.containment.ledger import Ledger, list_actions
from shared.containment.lockout import AccountLockout
from shared.containment.outcome import Outcomes
from shared.containment.ports import Directory, NetworkIsolation
from shared.containment.release import Release
from shared.containment.restore import Restorer
from shared.evidence import now_ms
from shared.partners import PartnerRegistry
from shared.settings import Settings
from shared.store import EvidenceStore


class ContainmentService:
    """Contain, approve, release — with the guardrails of docs/spec/containment.md, every step evidenced."""

    def __init__(
        self,
        store: EvidenceStore,
        partners: PartnerRegistry,
        settings: Settings,
        network: NetworkIsolation,
        directory: Directory,
        clock: Callable[[], datetime] = now_ms,
    ):
        self.store, self.clock = store, clock
        ledger = Ledger(store, clock)
        self.incidents = IncidentUpdates(store, ledger, clock)
        outcomes = Outcomes(store, ledger, clock)
        breaker = BlastRadiusBreaker(store, settings, clock)
        self.executor = ActionExecutor(
            ledger,
            self.incidents,
            outcomes,
            VmIsolation(network, breaker, outcomes, clock),
            AccountLockout(directory, partners, breaker, outcomes, clock),
            clock,
        )
        self.approvals = Approvals(store, ledger, self.incidents, clock)
        self.releases = Release(
            store, ledger, self.incidents, Restorer(store, ledger, network, directory, clock), clock
        )

    def list_actions(self, incident_id: str) -> list[dict[str, Any]]:
        """Summaries of the incident's actions (404 if the incident is unknown)."""
        self.incidents.get(incident_id)
        return list_actions(self.store, incident_id)

    # -- durable activities ------------------------------------------------------------------------
    def execute(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run one planned action → its summary (``TransientError``: retried by the orchestration)."""
        return self.executor.execute(request)

    def record_failure(self, request: dict[str, Any]) -> dict[str, Any]:
        """Retries exhausted: record the action failed and escalate."""
        return self.executor.record_failure(request)

    def conclude(self, request: dict[str, Any]) -> dict[str, Any]:
        """After a run: the incident's status from its actions, and the run's outcome evidenced."""
        return self.incidents.conclude(request)

    # -- operator routes ---------------------------------------------------------------------------
    def decide(self, incident_id: str, actor: str, decision: str, reason: str | None) -> dict[str, Any]:
        """Approve (run) or reject (block) the held actions; approvals return the runs to start."""
        return self.approvals.decide(incident_id, actor, decision, reason)

    def release_runs(self, incident_id: str) -> list[str]:
        """Durable instance ids the release route must find not running before it releases."""
        return self.releases.runs(incident_id)

    def release(
        self,
        incident_id: str,
        actor: str,
        reason: str,
        running: list[str] | None = None,
        checked_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Restore exactly what this incident's containment changed; harmless to repeat."""
        return self.releases.release(incident_id, actor, reason, running, checked_at)
