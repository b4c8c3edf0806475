"""Issue 14: race-free grouping — the entity claim decides which delivery opens an entity's incident.

Two first alerts for one host a few milliseconds apart both found no entity-index row (it was written
after the incident). The claim closes that gap the way the alert claim does for duplicates: before
a delivery opens an incident it claims each of the alert's entities with a create-only row (Table Storage
insert, no in-process lock). The delivery whose insert wins opens the incident; every other one learns the
winner's incident id from the row and joins it.

A claim lives as long as the grouping window from the alert that made it. An expired claim, or one whose
incident was closed, or one whose delivery died before writing its incident, is taken over under its ETag,
so the next alert of the entity opens a new incident (and two takers cannot both win).

Round trips (issue 14, benchmarks): an entity's claim and its grouping row share the partner's partition, so
they are written together in one transaction — created together when neither exists, which is the whole
entity step of an alert about entities never seen before (no look-up first: the conditional write answers
it). Only when that write fails are the rows read, and the decision — join the incident a grouping row or a
claim names, or take the claims over — is made from what was read, then written in one transaction again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.errors import ConcurrencyError
from shared.store import EntityClaim, EntityIndexRow, EntityRows, EvidenceStore

__all__ = ["Placement", "claim_entities", "claim_holds", "decide"]

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


@dataclass(frozen=True)
class Placement:
    """Where the entity step puts an alert.

    ``join``: the incident to join (None: this delivery opens its own). ``by_claim``: named by a claim, so
    its delivery may still be writing it. ``indexed``: opening, the grouping rows were written with the
    claims. ``rows``: the entity rows as last read (empty when none was read). ``refused``: the caller's
    ``may_take`` said no before any claim was written.
    """

    join: str | None = None
    by_claim: bool = False
    indexed: bool = False
    rows: dict[str, EntityRows] = field(default_factory=dict)
    refused: bool = False


def decide(
    rows: dict[str, EntityRows],
    incident_id: str,
    observed_at: datetime,
    received_at: datetime,
    window: timedelta,
    incident_open: Callable[[str], bool | None],
) -> tuple[str | None, bool, list[EntityClaim]]:
    """From the rows read: (incident to join, whether a claim named it, claims to write to open ``incident_id``).

    The newest grouping row in the window whose incident is open wins (the window slides with every alert
    that joins); else the first claim that still holds; else every claim not already this incident's is
    taken: created where missing, replaced under its ETag where its window or incident is over.
    """
    best: tuple[datetime, str] | None = None
    for r in rows.values():
        seen = _at(r.index.last_seen) if r.index else None
        if r.index and seen and abs(observed_at - seen) <= window and (best is None or seen > best[0]):
            best = (seen, r.index.incident_id)
    if best and incident_open(best[1]):
        return best[1], False, []
    take: list[EntityClaim] = []
    # Sorted: two alerts naming the same entities decide on the same first claim.
    for key in sorted(rows):
        claim = rows[key].claim
        if claim is not None and claim.incident_id == incident_id:
            continue  # this alert's own claim (a retry of a delivery that failed part-way)
        if claim is not None and claim_holds(claim, observed_at, received_at, window, incident_open):
            return claim.incident_id, True, []
        take.append(
            EntityClaim(
                key, incident_id, observed_at.isoformat(), received_at.isoformat(), claim.etag if claim else "", True
            )
        )
    return None, False, take


def claim_entities(
    store: EvidenceStore,
    partition: str,
    keys: list[str],
    incident_id: str,
    observed_at: datetime,
    received_at: datetime,
    window: timedelta,
    incident_open: Callable[[str], bool | None],
    may_take: Callable[[], bool] = lambda: True,
) -> Placement:
    """Claim the alert's entities for the incident it would open, or find the incident it joins.

    ``may_take()`` is asked once, before claims that exist are taken over (ingest: a redelivery of a known
    alert must move no claim); the first write — every claim and grouping row created at once — needs no
    asking, because it succeeds only for entities no delivery has written anything for.
    """
    keys = sorted(dict.fromkeys(keys))
    seen = observed_at.isoformat()
    index = [EntityIndexRow(k, incident_id, seen) for k in keys]
    fresh = [EntityClaim(k, incident_id, seen, received_at.isoformat(), "", True) for k in keys]
    if store.write_entities(partition, fresh, index, fresh=True):
        return Placement(indexed=True)
    asked = False
    for _ in range(8):
        rows = store.read_entities(partition, keys)
        join, by_claim, take = decide(rows, incident_id, observed_at, received_at, window, incident_open)
        if join is not None:
            return Placement(join=join, by_claim=by_claim, rows=rows)
        if not take:  # every claim is already this incident's: a retry of its own first delivery
            return Placement(rows=rows)
        if not asked:
            asked = True
            if not may_take():
                return Placement(rows=rows, refused=True)
        if store.write_entities(partition, take, index, fresh=False):
            return Placement(indexed=True, rows=rows)
    raise ConcurrencyError(f"the claims of entities {keys[:3]} kept changing")
