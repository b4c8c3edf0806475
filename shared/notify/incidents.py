"""Read-modify-write of an incident under its ETag (no locks; instances scale out)."""

from __future__ import annotations

from collections.abc import Callable

from shared.errors import IncidentNotFoundError
from shared.models import Incident
from shared.store import ConcurrencyError, EvidenceStore

MAX_TRIES = 25


def load_incident(store: EvidenceStore, incident_id: str) -> Incident:
    """The incident, or IncidentNotFoundError."""
    got = store.get_incident(incident_id)
    if got is None:
        raise IncidentNotFoundError(incident_id)
    return got[0]


def update_incident(
    store: EvidenceStore, incident_id: str, change: Callable[[Incident], Incident | None]
) -> tuple[Incident, Incident, bool]:
    """Apply ``change`` to the current incident and replace it if unchanged since read.

    ``change`` returns the new incident, or None when there is nothing to do
    (it is called again on a fresh copy after every lost race, so it must
    decide from the incident it is given). Returns (before, after, written).
    """
    for _ in range(MAX_TRIES):
        got = store.get_incident(incident_id)
        if got is None:
            raise IncidentNotFoundError(incident_id)
        current, etag = got
        updated = change(current)
        if updated is None:
            return current, current, False
        try:
            store.replace_incident(updated, etag)
        except ConcurrencyError:
            continue
        return current, updated, True
    raise ConcurrencyError(f"incident {incident_id} is changing too fast to update")
