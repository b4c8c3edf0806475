"""Names shared by the escalation orchestration, its triggers and the domain (import-light: no models)."""

from __future__ import annotations

ESCALATION_ORCHESTRATOR = "call_escalation"
ACK_EVENT = "Acknowledged"
STOP_EVENT = "StopEscalation"


def escalation_instance_id(incident_id: str) -> str:
    """Durable instance id of the incident's phone escalation (one per incident)."""
    return f"escalation-{incident_id}"
