"""How evidence records become Table Storage rows and back (pure: no SDK, no I/O).

Large JSON values are split over several string properties (Table Storage caps a property at 64 KiB of UTF-16
and a row at 1 MiB); incidents, timeline events and entity claims have fixed row shapes that every reader of
the tables (the app, the auditor export, the offline verifier) relies on.
"""

from __future__ import annotations

import json
from typing import Any

from shared.evidence import EvidenceEvent
from shared.models import Incident
from shared.store import EntityClaim, EntityIndexRow, StoreUnavailableError, key_hash

ENTITY_CLAIM_PREFIX = "claim~"  # entity claims share the EntityIndex partition of their partner
_CHUNK = 30_000  # characters per string property (Table Storage caps a property at 64 KiB of UTF-16)
_MAX_CHUNKS = 15


def put_json(entity: dict[str, Any], name: str, value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    chunks = [text[i : i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    if len(chunks) > _MAX_CHUNKS:
        raise StoreUnavailableError(f"{name} too large to store ({len(text)} characters)")
    entity[f"{name}Chunks"] = len(chunks)
    for i, c in enumerate(chunks):
        entity[f"{name}{i}"] = c


def get_json(entity: dict[str, Any], name: str) -> Any:
    n = int(entity.get(f"{name}Chunks", 0))
    return json.loads("".join(entity[f"{name}{i}"] for i in range(n))) if n else None


def range_filter(column: str, start: str | None, before: str | None) -> list[str]:
    """OData comparisons for ``start <= column < before`` (either bound optional)."""
    parts = [f"{column} ge '{q(start)}'"] if start else []
    return parts + ([f"{column} lt '{q(before)}'"] if before else [])


def q(value: str) -> str:
    """Quote a value inside an OData string literal."""
    return value.replace("'", "''")


def claim_from(key: str, r: Any) -> EntityClaim:  # r: a TableEntity (row + metadata)
    return EntityClaim(
        key=key,
        incident_id=r["incidentId"],
        observed_at=r.get("observedAt") or "",
        claimed_at=r.get("claimedAt") or "",
        etag=r.metadata["etag"],
        won=False,
    )


def claim_row(partition: str, claim: EntityClaim) -> dict:
    return {
        "PartitionKey": key_hash(partition),
        "RowKey": ENTITY_CLAIM_PREFIX + key_hash(claim.key),
        "entityKey": claim.key[:1000],
        "incidentId": claim.incident_id,
        "observedAt": claim.observed_at,
        "claimedAt": claim.claimed_at,
        "partner": partition,
    }


def index_row(partition: str, row: EntityIndexRow) -> dict:
    return {
        "PartitionKey": key_hash(partition),
        "RowKey": key_hash(row.key),
        "entityKey": row.key[:1000],
        "incidentId": row.incident_id,
        "lastSeen": row.last_seen,
        "partner": partition,
    }


def incident_entity(incident: Incident) -> dict[str, Any]:
    doc = incident.wire()
    alerts = doc.pop("alerts")
    entity = {
        "PartitionKey": incident.id,
        "RowKey": "incident",
        "partnerId": incident.partner_id or "",
        "priority": incident.priority.value,
        "status": incident.status.value,
        "score": incident.score,
        "createdAt": doc["createdAt"],
        "updatedAt": doc["updatedAt"],
        "title": incident.title[:512],
        # issue 16: read with the index (the console's queue puts failed / held containment first)
        "containmentAttention": str(incident.extra.get("containmentAttention") or ""),
    }
    put_json(entity, "doc", doc)
    # Keep the most recent alerts if an incident grows very large; alertCount keeps the total.
    put_json(entity, "alerts", alerts[-200:])
    return entity


def incident_from(entity: dict[str, Any]) -> Incident:
    doc = get_json(entity, "doc")
    doc["alerts"] = get_json(entity, "alerts") or []
    return Incident.model_validate(doc)


def event_entity(ev: EvidenceEvent) -> dict[str, Any]:
    entity = {
        "PartitionKey": ev.incident_id,
        "RowKey": f"{ev.seq:010d}",
        "seq": ev.seq,
        "occurredAt": ev.occurred_at,
        "phase": ev.phase.value,
        "criterion": ev.criterion,
        "actor": ev.actor,
        "actorType": ev.actor_type.value,
        "eventType": ev.event_type,
        "summary": ev.summary,
        "prevHash": ev.prev_hash,
        "hash": ev.hash,
    }
    put_json(entity, "data", ev.data)
    return entity


def event_from(entity: dict[str, Any]) -> EvidenceEvent:
    return EvidenceEvent(
        incident_id=entity["PartitionKey"],
        seq=int(entity["seq"]),
        occurred_at=entity["occurredAt"],
        phase=entity["phase"],
        criterion=entity["criterion"],
        actor=entity["actor"],
        actor_type=entity["actorType"],
        event_type=entity["eventType"],
        summary=entity["summary"],
        data=get_json(entity, "data") or {},
        prev_hash=entity["prevHash"],
        hash=entity["hash"],
    )
