"""Where a new alert goes by its entities: the incident it joins, or its own (issue 14: race-free grouping,
``shared/grouping.py``), and the grouping rows that point an alert's entities at its incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.grouping import Placement, claim_entities
from shared.ingest.records import SOC_PARTITION
from shared.models import Alert, Incident, isoformat
from shared.store import AlertClaim, EntityIndexRow, EntityRows, EvidenceStore

MAX_GROUPING_KEYS = 42  # two rows each (claim and grouping row) fit one 100-operation transaction


def grouping_keys(alert: Alert, limit: int | None = MAX_GROUPING_KEYS) -> list[str]:
    return list(dict.fromkeys(e.grouping_key for e in alert.entities if e.grouping_key))[:limit]


def place_by_entities(
    store: EvidenceStore,
    window: timedelta,
    alert: Alert,
    partition: str,
    new_id: str,
    received: datetime,
    read: dict[str, tuple[Incident, str] | None],
    looked_up: bool,
) -> tuple[Placement, AlertClaim | None]:
    """Where the alert goes (``new_id``: the incident it would open), and — when taking over its entities'
    claims needed asking — the alert's own claim if it is known already (a redelivery moves no claim).

    ``read``: incidents read on the way, by id, for the caller to reuse. ``looked_up``: the caller has read
    the alert index already (nothing to ask).
    """
    keys = grouping_keys(alert)
    if not window or not keys:
        return Placement(), None

    def incident_open(incident_id: str) -> bool | None:
        if incident_id not in read:
            read[incident_id] = store.get_incident(incident_id)
        got = read[incident_id]
        return None if got is None else got[0].status.is_open

    known: list[AlertClaim] = []

    def may_take() -> bool:
        if not looked_up:
            known.extend(store.get_alert_claims([alert.primary_key]).values())
        return not known

    placed = claim_entities(
        store, partition, keys, new_id, alert.observed_at, received, window, incident_open, may_take
    )
    return placed, (known[0] if placed.refused and known else None)


def index_entities(
    store: EvidenceStore,
    incident: Incident,
    alert: Alert,
    rows: dict[str, EntityRows] | None = None,
    written: bool = False,
) -> None:
    """Point the alert's entities at the incident with the alert's time (the grouping window slides with
    every alert); rows just read that already say so, as recently, are not written again, nor (``written``)
    those written with the entity claims."""
    done = set(grouping_keys(alert)) if written else set()
    stale = [
        EntityIndexRow(k, incident.id, isoformat(alert.observed_at))
        for k in grouping_keys(alert, limit=None)
        if k not in done and not _points_at(rows or {}, k, incident.id, alert.observed_at)
    ]
    if stale:
        store.upsert_entities(incident.partner_id or SOC_PARTITION, stale)


def _points_at(rows: dict[str, EntityRows], key: str, incident_id: str, observed: datetime) -> bool:
    row = rows.get(key)
    index = row.index if row else None
    return index is not None and index.incident_id == incident_id and _when(index.last_seen) >= observed


def _when(iso: str) -> datetime:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
