"""Names and time bounds of containment runs, shared by the triggers and the release rule.

Kept apart from the use cases so ``functions/runbook.py`` and the release route can name a run
without importing the service (and so the package ``__init__`` imports nothing that imports it back).
"""

from __future__ import annotations

from datetime import timedelta

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
