"""Evidence store: the interface the domain owns (``EvidenceStore``) and the records it exchanges.

Tables (docs/spec/evidence.md), as ``shared.adapters.table_store.TableEvidenceStore`` lays them out:
- ``Incidents``         PK incident id, RK ``incident`` — current state.
- ``IncidentTimeline``  PK incident id, RK zero-padded sequence — append-only
  events; a ``~head`` row (same partition) holds the chain head and is updated
  in the same transaction as each append, under its ETag, so concurrent
  writers on scaled-out instances can never fork the chain.
- ``ContainmentActions``, ``Notifications``  PK incident id.
- ``AlertIndex``        PK sha256(alert key) — conditional insert decides
  which delivery of an alert wins (de-duplication without locks).
- ``EntityIndex``       PK partner, RK sha256(entity key) — grouping; RK ``claim~`` + sha256(entity key):
  the entity claim (issue 14), a create-only row that decides which delivery opens the incident of an entity.
- ``IngestState``       watermarks and counters.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.errors import ConcurrencyError, SocResponderError
from shared.evidence import EventDraft, EvidenceEvent
from shared.models import Incident

__all__ = [
    "TABLES",
    "AlertClaim",
    "ChainHead",
    "ConcurrencyError",
    "EntityClaim",
    "EntityIndexRow",
    "EntityRows",
    "EvidenceStore",
    "IncidentIndexRow",
    "StoreUnavailableError",
    "key_hash",
]

TABLES = (
    "Incidents",
    "IncidentTimeline",
    "ContainmentActions",
    "Notifications",
    "AlertIndex",
    "EntityIndex",
    "IngestState",
)


class StoreUnavailableError(SocResponderError):
    """The evidence store could not be reached or refused the write."""


@dataclass(frozen=True)
class AlertClaim:
    incident_id: str
    received_at: str  # ISO 8601 UTC: when the claiming delivery arrived


@dataclass(frozen=True)
class EntityIndexRow:
    key: str
    incident_id: str
    last_seen: str  # ISO 8601 UTC


@dataclass(frozen=True)
class EntityClaim:
    """Issue 14: who opened the incident of an entity (the create-only claim row), and when.

    ``won`` is True when this call wrote the claim (created it, or took over an expired one).
    """

    key: str
    incident_id: str
    observed_at: str  # ISO 8601 UTC: the claiming alert's observation time (the grouping window's start)
    claimed_at: str  # ISO 8601 UTC: when the claiming delivery arrived
    etag: str
    won: bool


@dataclass(frozen=True)
class EntityRows:
    """Issue 14: what the entity index holds for one entity of a partner — its claim and its grouping row
    (either may be missing), as one read returned them."""

    key: str
    claim: EntityClaim | None
    index: EntityIndexRow | None


@dataclass(frozen=True)
class ChainHead:
    """The head of an incident's timeline as read: the last event's seq and hash, and the ETag of the head
    row an append is conditional on (a stale one only costs a re-read: the append fails and retries)."""

    seq: int
    hash: str
    etag: str


@dataclass(frozen=True)
class IncidentIndexRow:
    """The columns of an incident row that filters, exports and watches need (no document parse)."""

    incident_id: str
    partner_id: str | None
    priority: str
    status: str
    created_at: str
    updated_at: str
    # issue 16: containment that needs a person ("failed" / "held"; shared.containment.incident_status)
    containment: str | None = None
    # The title as the incident row's column keeps it (first 512 characters): the console searches titles
    # without parsing every document. None: a row written before the column was read.
    title: str | None = None


def key_hash(value: str) -> str:
    """Table-key-safe, fixed-length form of an arbitrary key."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


# An ABC, not a Protocol like the other ports: the export, review and retention reads below have base
# implementations written on the abstract primitives (correct everywhere, fast nowhere), which an adapter
# inherits and overrides where its storage can do better (TableEvidenceStore queries key ranges). A Protocol
# would make every adapter and test double re-implement them.
class EvidenceStore(ABC):
    """What the domain needs from evidence storage."""

    @abstractmethod
    def get_alert_claims(self, keys: list[str]) -> dict[str, AlertClaim]:
        """Alert key → its claim, for the keys already claimed."""

    @abstractmethod
    def claim_alert(self, key: str, incident_id: str, received_at: datetime) -> tuple[str, bool]:
        """Claim an alert key for an incident: (owning incident id, True if this call made the claim)."""

    @abstractmethod
    def try_claim_alert(self, key: str, incident_id: str, received_at: datetime) -> tuple[AlertClaim, bool]:
        """Insert-if-absent claim of an alert key: (the claim as stored, True if this call made it). A lost
        claim answers what a look-up would have (the owning incident, when its delivery arrived)."""

    @abstractmethod
    def upsert_entities(self, partition: str, rows: list[EntityIndexRow]) -> None: ...

    # -- issue 14: the entity claim (a conditional write, like the alert claim) ---------------------------
    @abstractmethod
    def read_entities(self, partition: str, keys: list[str]) -> dict[str, EntityRows]:
        """The claim and grouping row of each entity key (both live in the partner's partition)."""

    @abstractmethod
    def write_entities(
        self, partition: str, claims: list[EntityClaim], rows: list[EntityIndexRow], *, fresh: bool
    ) -> bool:
        """One atomic write of entity claims and grouping rows (one partition): a claim without an ETag is
        created, one with an ETag replaced under it; grouping rows are created (``fresh``: none may exist
        yet) or upserted. False, with nothing written, when any of those conditions failed."""

    @abstractmethod
    def get_incident(self, incident_id: str) -> tuple[Incident, str] | None:
        """(incident, etag) or None."""

    @abstractmethod
    def create_incident(self, incident: Incident) -> str:
        """Insert; ConflictError if the id exists. Returns the etag."""

    @abstractmethod
    def replace_incident(self, incident: Incident, etag: str) -> str:
        """Replace if unchanged since read; ConcurrencyError otherwise. Returns the new etag."""

    @abstractmethod
    def append_events(
        self, incident_id: str, drafts: list[EventDraft], new_chain: bool = False, head: ChainHead | None = None
    ) -> list[EvidenceEvent]:
        """Append to the incident's hash chain atomically (``head``: the head just read with the events,
        which saves reading it again; the append is conditional on its ETag)."""

    @abstractmethod
    def list_events(self, incident_id: str) -> list[EvidenceEvent]: ...

    def read_timeline(self, incident_id: str) -> tuple[list[EvidenceEvent], ChainHead | None]:
        """The incident's events and its chain head, as one read where the storage allows it."""
        events = self.list_events(incident_id)
        return events, None

    @abstractmethod
    def iter_events(self, occurred_from: str | None, occurred_to: str | None) -> Iterator[EvidenceEvent]:
        """Every event in a time range (ISO strings, inclusive), page by page."""

    @abstractmethod
    def iter_incidents(self, filter_expr: str | None = None) -> Iterator[Incident]: ...

    # -- evidence reads for export, review and retention (not abstract: defaults are correct, not fast) --
    def scan_events(
        self,
        occurred_from: str | None = None,
        occurred_before: str | None = None,
        after: tuple[str, int] | None = None,
        incident_id: str | None = None,
    ) -> Iterator[EvidenceEvent]:
        """Events ordered by (incident id, seq): ``occurred_from`` inclusive, ``occurred_before`` exclusive
        (ISO strings as ``isoformat`` writes them), resuming strictly after the ``after`` (incident id, seq)
        cursor, optionally one incident only."""
        if incident_id is not None:
            events: Iterator[EvidenceEvent] = iter(self.list_events(incident_id))
        else:
            events = iter(sorted(self.iter_events(occurred_from, None), key=lambda e: (e.incident_id, e.seq)))
        for ev in events:
            if occurred_from and ev.occurred_at < occurred_from:
                continue
            if occurred_before and ev.occurred_at >= occurred_before:
                continue
            if after and (ev.incident_id, ev.seq) <= after:
                continue
            yield ev

    def iter_incident_index(
        self,
        partner_id: str | None = None,
        priorities: Iterable[str] | None = None,
        incident_id: str | None = None,
        from_incident: str | None = None,
        touched_since: str | None = None,
    ) -> Iterator[IncidentIndexRow]:
        """Light incident rows ordered by id, filtered by partner ("" = no partner), priorities, one id,
        ids >= ``from_incident``, and created or updated at/after ``touched_since``."""
        wanted = set(priorities or ())
        for inc in sorted(self.iter_incidents(), key=lambda i: i.id):
            doc = inc.wire()
            row = IncidentIndexRow(
                inc.id,
                inc.partner_id,
                inc.priority.value,
                inc.status.value,
                doc["createdAt"],
                doc["updatedAt"],
                inc.extra.get("containmentAttention") or None,  # issue 16
                inc.title[:512],
            )
            if _index_row_matches(row, partner_id, wanted, incident_id, from_incident, touched_since):
                yield row

    def find_incidents(
        self,
        partner_id: str | None = None,
        priorities: Iterable[str] | None = None,
        created_from: str | None = None,
        created_before: str | None = None,
    ) -> Iterator[Incident]:
        """Incidents filtered by partner ("" = no partner), priorities and a coarse ``createdAt`` window
        (string comparison: callers widen the window and filter exactly on parsed times)."""
        wanted = set(priorities or ())
        for inc in self.iter_incidents():
            created = inc.wire()["createdAt"]
            if partner_id is not None and (inc.partner_id or "") != partner_id:
                continue
            if wanted and inc.priority.value not in wanted:
                continue
            if (created_from and created < created_from) or (created_before and created >= created_before):
                continue
            yield inc

    def get_chain_head(self, incident_id: str) -> tuple[int, str] | None:
        """(last seq, last hash) the store recorded for the incident's chain, or None."""
        events = self.list_events(incident_id)
        return (events[-1].seq, events[-1].hash) if events else None

    def iter_chain_heads(self, changed_since: datetime | None = None) -> Iterator[tuple[str, int, str]]:
        """(incident id, last seq, last hash) of every chain the store holds — or of those whose head was
        written at or after ``changed_since`` (by the storage service's clock) — (issue 12: evidence anchors)."""
        for inc in self.iter_incidents():
            head = self.get_chain_head(inc.id)
            if head is not None:
                yield inc.id, head[0], head[1]

    def get_event_hash(self, incident_id: str, seq: int) -> str | None:
        """The stored hash of one event of the incident, or None."""
        return next((ev.hash for ev in self.list_events(incident_id) if ev.seq == seq), None)

    def newest_write(self, incident_id: str) -> datetime | None:
        """When anything of the incident's evidence was last written, by the storage service's clock."""
        raise NotImplementedError

    def delete_incident_evidence(self, incident_id: str, *, written_before: datetime) -> int:
        """Delete every evidence row of the incident; refuses (ConflictError) if any row was written
        at or after ``written_before``. Only ``shared.retention`` calls this."""
        raise NotImplementedError

    @abstractmethod
    def put_record(
        self,
        table: str,
        incident_id: str,
        record_id: str,
        data: dict[str, Any],
        etag: str | None = None,
        create_only: bool = False,
    ) -> str:
        """Write a containment action or notification row (JSON document)."""

    @abstractmethod
    def get_record(self, table: str, incident_id: str, record_id: str) -> tuple[dict[str, Any], str] | None: ...

    @abstractmethod
    def list_records(self, table: str, incident_id: str) -> list[dict[str, Any]]: ...

    def delete_record(self, table: str, incident_id: str, record_id: str) -> None:
        """issue 14: remove a work-queue row (a queued email, a storm item) once it is done; absent is fine.
        Only rows outside an incident's own partition are ever deleted (never evidence)."""
        raise NotImplementedError

    @abstractmethod
    def get_state(self, name: str) -> tuple[dict[str, Any], str] | None: ...

    @abstractmethod
    def set_state(self, name: str, value: dict[str, Any], etag: str | None) -> str:
        """Write a state row; with etag, only if unchanged (ConcurrencyError otherwise)."""


def _index_row_matches(
    row: IncidentIndexRow,
    partner_id: str | None,
    priorities: set[str],
    incident_id: str | None,
    from_incident: str | None,
    touched_since: str | None,
) -> bool:
    if partner_id is not None and (row.partner_id or "") != partner_id:
        return False
    if priorities and row.priority not in priorities:
        return False
    if incident_id is not None and row.incident_id != incident_id:
        return False
    if from_incident is not None and row.incident_id < from_incident:
        return False
    return not touched_since or row.created_at >= touched_since or row.updated_at >= touched_since
