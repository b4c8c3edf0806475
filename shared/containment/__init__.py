"""Containment (docs/spec/containment.md, docs/spec/operator-api.md): quarantine NSGs, Entra lockout, guardrails, approval and release.

- ``guardrails``: pure decisions (response mode, protected identities, ``soc-isolation`` tags, guests,
  blast-radius breaker, incident status).
- ``records`` / ``ledger``: the typed ContainmentActions rows, read and written under their ETag.
- ``ports``: the interfaces the Azure adapters implement (errors: ``shared.errors``).
- use cases: ``execute`` (``isolate_vm``, ``lockout``, ``outcome``), ``breaker``, ``incident_status``,
  ``approval``, ``release`` (``restore``); ``service.ContainmentService`` is their facade.
- ``names``: durable names and time bounds of the runs.

This package module re-exports the names other packages use and imports no use case: the triggers
import it at cold start (``function_app`` → ``functions.containment``), so it must not pull in pydantic
and the store. ``list_actions`` is therefore resolved on first use (PEP 562); ``ledger`` imports
nothing from this module, so there is no cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.containment.names import (
    ACTIVITY_TIMEOUT,
    ATTEMPTS,
    IN_PROGRESS_STUCK_AFTER,
    ORCHESTRATOR,
    RETRY_INTERVAL,
    approval_instance_id,
    containment_instance_id,
)

__all__ = [
    "ACTIVITY_TIMEOUT",
    "ATTEMPTS",
    "IN_PROGRESS_STUCK_AFTER",
    "ORCHESTRATOR",
    "RETRY_INTERVAL",
    "approval_instance_id",
    "containment_instance_id",
    "list_actions",
]

if TYPE_CHECKING:
    from shared.containment.ledger import list_actions


def __getattr__(name: str) -> Any:
    if name == "list_actions":
        from shared.containment.ledger import list_actions

        return list_actions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
