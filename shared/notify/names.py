"""Names shared by the escalation orchestration, its triggers and the domain (import-light: no models)."""

from __future__ import annotations

ESCALATION_ORCHESTRATOR = "call_escalation"
ACK_EVENT = "Acknowledged"
STOP_EVENT = "StopEscalation"


def escalation_instance_id(incident_id: str) -> str:
    """Durable instance id of the incident's phone escalation (one per incident)."""
    return f"escalation-{incident_id}"


# issue 14: one phone escalation per contact number (functions/contact_pager.py)
PAGER_ORCHESTRATOR = "contact_pager"
PAGE_EVENT = "Page"
"""Raised on a number's pager when an incident was paged to it (the pages row already holds the page)."""
LINE_FREE_EVENT = "LineFree"
"""Raised on a number's pager when its call ended (``{"recordId"}``)."""
PAGES_EXHAUSTED_EVENT = "PagesExhausted"
"""Raised on an incident's escalation when a number announced it ``maxAttempts`` times without acknowledgement."""
