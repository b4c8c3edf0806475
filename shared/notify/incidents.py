"""Read-modify-write of an incident under its ETag (no locks; instances scale out)."""

from __future__ import annotations

from collections.abc import Callable

from shared.errors import IncidentNotFoundError
from shared.etag import Versioned, update_under_etag
from shared.models import Incident
from shared.store import EvidenceStore


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

    def read() -> Versioned[Incident]:
        got = store.get_incident(incident_id)
        if got is None:
            raise IncidentNotFoundError(incident_id)
        return Versioned(*got)

    def write(incident: Incident, etag: str | None) -> str:
        # read() always returns an ETag: an incident is only ever replaced, never created, here.
        return store.replace_incident(incident, etag or "")

    done = update_under_etag(read, write, change, what=f"incident {incident_id}")
    if done is None:  # pragma: no cover - read() raises instead
        raise IncidentNotFoundError(incident_id)
    return done.before, done.after, done.written
