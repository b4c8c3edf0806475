"""Issue 14: race-free grouping — the entity claim decides which delivery opens an entity's incident.

Two first alerts for one host a few milliseconds apart both find no entity-index row (the index row is
written after the incident). The claim closes that gap the way the alert claim does for duplicates: before
a delivery opens an incident it claims each of the alert's entities with a create-only row (Table Storage
insert, no in-process lock). The delivery whose insert wins opens the incident; every other one learns the
winner's incident id from the row and joins it.

A claim lives as long as the grouping window from the alert that made it. An expired claim, or one whose
incident was closed, or one whose delivery died before writing its incident, is taken over under its ETag,
so the next alert of the entity opens a new incident (and two takers cannot both win).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from shared.errors import ConcurrencyError
from shared.store import EntityClaim, EvidenceStore

__all__ = ["claim_entities"]

# A claim whose incident is still missing after this long belongs to a delivery that died (ingest's rule).
STALE_ENTITY_CLAIM = timedelta(minutes=2)


def _at(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def claim_holds(
    claim: EntityClaim,
    observed_at: datetime,
    received_at: datetime,
    window: timedelta,
    incident_open: Callable[[str], bool | None],
) -> bool:
    """Whether another incident's claim still captures an alert observed at ``observed_at``.

    ``incident_open(id)``: True open, False closed, None not written (yet). Pure but for that question.
    """
    claimed_obs, claimed_at = _at(claim.observed_at), _at(claim.claimed_at)
    if claimed_obs is None or abs(observed_at - claimed_obs) > window:
        return False  # the window of the alert that made the claim is over
    state = incident_open(claim.incident_id)
    if state is None:  # its delivery is still writing the incident — or died before writing it
        return claimed_at is not None and received_at - claimed_at <= STALE_ENTITY_CLAIM
    return state


def claim_entities(
    store: EvidenceStore,
    partition: str,
    keys: list[str],
    incident_id: str,
    observed_at: datetime,
    received_at: datetime,
    window: timedelta,
    incident_open: Callable[[str], bool | None],
) -> str | None:
    """Claim the alert's entities for the incident it would open.

    Returns None when this delivery holds every claim (it opens ``incident_id``), else the id of the
    incident that claimed one of them first (the alert joins it; the claims this call made are handed
    over to that incident, so a later alert naming only those entities joins it as well).
    """
    held: list[EntityClaim] = []
    # Sorted: two alerts naming the same entities claim them in the same order, so they meet on the first.
    for key in sorted(dict.fromkeys(keys)):
        claim = _claim_one(store, partition, key, incident_id, observed_at, received_at, window, incident_open)
        if claim.won:
            held.append(claim)
            continue
        for mine in held:
            store.take_over_entity(partition, mine, claim.incident_id, observed_at, received_at)
        return claim.incident_id
    return None


def _claim_one(
    store: EvidenceStore,
    partition: str,
    key: str,
    incident_id: str,
    observed_at: datetime,
    received_at: datetime,
    window: timedelta,
    incident_open: Callable[[str], bool | None],
) -> EntityClaim:
    for _ in range(8):
        claim = store.claim_entity(partition, key, incident_id, observed_at, received_at)
        if claim.won or claim_holds(claim, observed_at, received_at, window, incident_open):
            return claim
        taken = store.take_over_entity(partition, claim, incident_id, observed_at, received_at)
        if taken is not None:
            return taken
    raise ConcurrencyError(f"the claim of entity {key} kept changing")
