"""Evidence retention (docs/spec/evidence.md): at least 3 years; nothing deletes evidence younger than that.

Nothing in the app deletes evidence on its own: no timer, no route. This module
is the only code that may, and only for a closed incident whose every row —
by the storage service's own write timestamps, which a caller cannot set, and
by the times recorded in the evidence — is older than 3 years. It refuses
anything younger with ``RetentionViolation`` before deleting a single row, and
the store re-checks the write timestamps itself before it deletes. Each purge
is recorded (``IngestState``, partition ``retention-purges``).

Run by hand, from a maintenance shell with the app's settings::

    python -m shared.retention                 # list what is eligible (changes nothing)
    python -m shared.retention --purge --actor alice@soc.example
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.errors import ConflictError
from shared.evidence import now_ms
from shared.models import isoformat
from shared.store import EvidenceStore

RETENTION_YEARS = 3
PURGE_LOG_PARTITION = "retention-purges"


class RetentionViolation(ConflictError):
    """The evidence is younger than the retention period (or the incident is still open)."""


def retention_cutoff(now: datetime) -> datetime:
    """The instant 3 calendar years before ``now`` (29 February maps to 28 February)."""
    now = now.astimezone(UTC)
    try:
        return now.replace(year=now.year - RETENTION_YEARS)
    except ValueError:
        return now.replace(year=now.year - RETENTION_YEARS, day=28)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def check_purgeable(store: EvidenceStore, incident_id: str, now: datetime) -> datetime:
    """Raise RetentionViolation unless every piece of the incident's evidence is older than 3 years.

    Returns the cutoff the deletion must respect.
    """
    cutoff = retention_cutoff(now)
    got = store.get_incident(incident_id)
    if got is not None:
        incident = got[0]
        if incident.status.is_open:
            raise RetentionViolation(f"{incident_id} is still {incident.status.value}: its evidence is kept")
        recorded = [incident.created_at, incident.updated_at, incident.last_seen_at]
        recorded += [t for t in (incident.resolved_at, incident.acknowledged_at) if t is not None]
        newest_recorded = max(t.astimezone(UTC) for t in recorded)
        if newest_recorded >= cutoff:
            raise RetentionViolation(
                f"{incident_id} was last updated {isoformat(newest_recorded)}: evidence is kept "
                f"at least {RETENTION_YEARS} years (until after {isoformat(_add_years(newest_recorded))})"
            )
    events = store.list_events(incident_id)
    if events:
        last = max(_parse(ev.occurred_at) for ev in events)
        if last >= cutoff:
            raise RetentionViolation(
                f"{incident_id} has evidence from {isoformat(last)}: kept at least "
                f"{RETENTION_YEARS} years (until after {isoformat(_add_years(last))})"
            )
    written = store.newest_write(incident_id)
    if written is not None and written >= cutoff:
        raise RetentionViolation(
            f"{incident_id} has evidence written {isoformat(written)}: kept at least "
            f"{RETENTION_YEARS} years (until after {isoformat(_add_years(written))})"
        )
    return cutoff


def _add_years(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + RETENTION_YEARS)
    except ValueError:
        return moment.replace(year=moment.year + RETENTION_YEARS, day=28)


@dataclass
class PurgeResult:
    incident_id: str
    rows_deleted: int
    cutoff: str
    actor: str


def purge_incident(
    store: EvidenceStore, incident_id: str, actor: str, clock: Callable[[], datetime] = now_ms
) -> PurgeResult:
    """Delete one incident's evidence if, and only if, all of it is older than 3 years."""
    if not actor or not actor.strip():
        raise ValueError("a purge names the person doing it (actor)")
    now = clock()
    cutoff = check_purgeable(store, incident_id, now)
    deleted = store.delete_incident_evidence(incident_id, written_before=cutoff)
    result = PurgeResult(incident_id, deleted, isoformat(cutoff), actor.strip())
    store.put_record(
        "IngestState",
        PURGE_LOG_PARTITION,
        incident_id,
        {
            "incidentId": incident_id,
            "rowsDeleted": deleted,
            "cutoff": result.cutoff,
            "actor": result.actor,
            "purgedAt": isoformat(now),
        },
    )
    return result


@dataclass
class RetentionScan:
    eligible: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)


def eligible_incidents(store: EvidenceStore, clock: Callable[[], datetime] = now_ms) -> RetentionScan:
    """Which incidents could be purged now, and why each other old-looking one is kept."""
    now = clock()
    cutoff = isoformat(retention_cutoff(now))
    scan = RetentionScan()
    for row in store.iter_incident_index():
        # Coarse text filter first (cheap); check_purgeable decides.
        if row.created_at >= cutoff or row.updated_at >= cutoff:
            continue
        try:
            check_purgeable(store, row.incident_id, now)
        except RetentionViolation as exc:
            scan.kept[row.incident_id] = str(exc)
            continue
        scan.eligible.append(row.incident_id)
    return scan


def main(argv: list[str] | None = None) -> int:  # pragma: no cover — an operator's tool
    parser = argparse.ArgumentParser(
        prog="python -m shared.retention",
        description="List (default) or purge evidence older than the retention period.",
    )
    parser.add_argument("--purge", action="store_true", help="delete the eligible incidents' evidence")
    parser.add_argument("--actor", help="who is purging (UPN or email); required with --purge")
    args = parser.parse_args(argv)
    if args.purge and not args.actor:
        parser.error("--purge needs --actor")
    # An operator's entry point is a composition root: the store comes from the app's own wiring.
    from shared import runtime

    store = runtime.context().store
    scan = eligible_incidents(store)
    for incident_id in scan.eligible:
        if args.purge:
            result = purge_incident(store, incident_id, args.actor)
            print(f"purged {incident_id}: {result.rows_deleted} rows")
        else:
            print(f"eligible {incident_id}")
    print(f"{len(scan.eligible)} eligible, {len(scan.kept)} old-looking incident(s) kept")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
