"""Evidence events and their per-incident hash chain (docs/spec/evidence.md). Pure.

Each event carries the hash of the previous event of its incident; the hash
covers every field of the event (canonical JSON), so a changed, removed or
re-ordered event breaks the chain at a position ``verify_chain`` names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from shared.access import stamp_for
from shared.models import ActorType, Phase, SocModel, isoformat

GENESIS_HASH = "0" * 64
APP_ACTOR = "soc-responder"


class EventDraft(SocModel):
    """An event before it is placed in the chain."""

    event_type: str
    phase: Phase
    summary: str
    actor: str = APP_ACTOR
    actor_type: ActorType = ActorType.APP
    occurred_at: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class EvidenceEvent(SocModel):
    """One link of an incident's timeline."""

    incident_id: str
    seq: int
    occurred_at: str  # UTC ISO 8601, millisecond precision: kept as text so the hash is reproducible
    phase: Phase
    criterion: str
    actor: str
    actor_type: ActorType
    event_type: str
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str
    hash: str = ""

    def hash_material(self) -> dict[str, Any]:
        return {
            "incidentId": self.incident_id,
            "seq": self.seq,
            "occurredAt": self.occurred_at,
            "phase": self.phase.value,
            "criterion": self.criterion,
            "actor": self.actor,
            "actorType": self.actor_type.value,
            "eventType": self.event_type,
            "summary": self.summary,
            "data": self.data,
            "prevHash": self.prev_hash,
        }

    def compute_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.hash_material()).encode("utf-8")).hexdigest()


def canonical_json(value: Any) -> str:
    """The one serialisation hashes are computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def chain(incident_id: str, drafts: Iterable[EventDraft], last_seq: int, last_hash: str) -> list[EvidenceEvent]:
    """Place drafts after (last_seq, last_hash), computing each hash."""
    events = []
    seq, prev = last_seq, last_hash
    for d in drafts:
        seq += 1
        # Round-trip data through JSON so what is hashed is what is stored. An event written for the
        # operator of the current request carries whether sign-in vouched for that name (issue 12).
        data = json.loads(canonical_json({**d.data, **stamp_for(d.actor)}))
        ev = EvidenceEvent(
            incident_id=incident_id,
            seq=seq,
            occurred_at=isoformat(d.occurred_at),
            phase=d.phase,
            criterion=d.phase.criterion,
            actor=d.actor,
            actor_type=d.actor_type,
            event_type=d.event_type,
            summary=d.summary,
            data=data,
            prev_hash=prev,
        )
        ev.hash = ev.compute_hash()
        events.append(ev)
        prev = ev.hash
    return events


class ChainVerdict(SocModel):
    valid: bool
    events: int
    broken_at: int | None = None
    reason: str | None = None


def verify_chain(events: list[EvidenceEvent]) -> ChainVerdict:
    """Check sequence, links and hashes; ``broken_at`` is the first bad event's seq."""
    prev = GENESIS_HASH
    for position, ev in enumerate(events, start=1):
        if ev.seq != position:
            return ChainVerdict(
                valid=False,
                events=len(events),
                broken_at=position,
                reason=f"expected event {position}, found {ev.seq} (missing or re-ordered)",
            )
        if ev.prev_hash != prev:
            return ChainVerdict(
                valid=False, events=len(events), broken_at=ev.seq, reason="previous-hash link does not match"
            )
        if ev.compute_hash() != ev.hash:
            return ChainVerdict(valid=False, events=len(events), broken_at=ev.seq, reason="event content altered")
        prev = ev.hash
    return ChainVerdict(valid=True, events=len(events))


def now_ms() -> datetime:
    """Current UTC time truncated to milliseconds (the evidence precision)."""
    n = datetime.now(UTC)
    return n.replace(microsecond=n.microsecond // 1000 * 1000)
