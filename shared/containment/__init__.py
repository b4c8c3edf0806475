"""Containment (SPEC 4): quarantine NSGs, Entra lockout, guardrails, approval and release.

- ``guardrails``: pure decisions (response mode, protected identities,
  ``soc-isolation`` tags, guests, blast-radius breaker, incident status).
- ``records``: the ContainmentActions rows and their public summaries.
- ``ports``: the interfaces the Azure adapters implement, and their errors.
- ``service``: ``ContainmentService`` (execute, record a final failure,
  conclude, approve/reject, release) and ``list_actions``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

ORCHESTRATOR = "containment_orchestrator"

# Durable retry options of ``containment_execute`` (functions/containment.py): each attempt already
# includes the SDKs' own retries; three attempts 15 s apart.
ATTEMPTS = 3
RETRY_INTERVAL = timedelta(seconds=15)
# host.json ``functionTimeout``: the longest one activity attempt can run before the host kills it.
ACTIVITY_TIMEOUT = timedelta(minutes=10)
# An ``in-progress`` row not updated for longer than every attempt of ``containment_execute`` and of
# ``containment_record_failure`` (same retry options) with the pauses between them
# (2 × 3 × (10 min + 15 s) = 61.5 min) belongs to a run that is gone (terminated, or even recording the
# failure failed): release treats it as failed and restores it. (The release route also asks the durable
# host whether the run is still alive, which frees such a row at once.)
IN_PROGRESS_STUCK_AFTER = 2 * ATTEMPTS * (ACTIVITY_TIMEOUT + RETRY_INTERVAL)


def containment_instance_id(incident_id: str, epoch: int) -> str:
    """Durable instance id of an incident's P1 containment run (one per runbook epoch)."""
    return f"containment-{incident_id}-{int(epoch)}"


def approval_instance_id(incident_id: str, approval_id: str) -> str:
    """Durable instance id of the run that executes one approval's actions."""
    return f"containment-{incident_id}-{approval_id}"


def list_actions(store: Any, incident_id: str) -> list[dict[str, Any]]:
    """Every containment action of an incident with its status and a one-line ``result``
    (what the notification email lists as "every action taken and its result")."""
    from shared.containment.service import list_actions as _list

    return _list(store, incident_id)
