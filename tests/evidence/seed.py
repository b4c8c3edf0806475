"""Seeding helpers for evidence tests: incidents and timelines written through the real store API."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.evidence import EventDraft, EvidenceEvent
from shared.ingest import open_incident
from shared.models import (
    ActorType,
    Alert,
    Entity,
    Incident,
    IncidentStatus,
    Phase,
    Priority,
    TriageDecision,
    incident_id_for,
)
from shared.partners import PartnerRegistry
from shared.store import EvidenceStore

ROOT = Path(__file__).resolve().parents[2]
UTC = UTC
PARTNERS = PartnerRegistry.load(ROOT / "config/partners.json")
_PHASES = (Phase.CONTAIN, Phase.NOTIFY, Phase.INVESTIGATE, Phase.RECOVER, Phase.REVIEW)


def make_incident(
    key: str,
    created: datetime,
    *,
    partner_id: str | None = "contoso",
    priority: Priority = Priority.P2,
    title: str | None = None,
    entities: Iterable[Entity] = (),
    status: IncidentStatus = IncidentStatus.OPEN,
    resolved_at: datetime | None = None,
    triage_delay: timedelta = timedelta(seconds=3),
    first_response_at: datetime | None = None,
    breaches: list[str] | None = None,
) -> Incident:
    """An incident as ingest would open it, received at ``created``."""
    partner = PARTNERS.get(partner_id)
    tz = partner.timezone if partner else PARTNERS.soc.timezone
    alert = Alert(
        source="generic",
        source_id=key,
        dedupe_keys=[f"generic:test:{key}"],
        title=title or f"Alert {key}",
        observed_at=created - timedelta(minutes=2),
        entities=list(entities),
    )
    decision = TriageDecision(
        score={"P1": 9, "P2": 7, "P3": 5, "P4": 2}[priority.value],
        priority=priority,
        rules_fired=[],
        rules_version="test",
    )
    incident = open_incident(
        incident_id_for(alert.primary_key, alert.observed_at),
        alert,
        decision,
        partner,
        tz,
        created,
        created + triage_delay,
    )
    sla = incident.sla.model_copy(update={"first_response_at": first_response_at, "breaches": breaches or []})
    return incident.model_copy(
        update={
            "status": status,
            "resolved_at": resolved_at,
            "sla": sla,
            "updated_at": resolved_at or incident.updated_at,
        }
    )


def timeline(
    incident: Incident,
    n: int,
    *,
    spacing: timedelta = timedelta(minutes=7),
    summaries: Iterable[str] | None = None,
    actors: Iterable[str] | None = None,
) -> list[EventDraft]:
    """``n`` events: received, triaged, then events cycling through the later phases."""
    at = incident.created_at
    texts = list(summaries or [])
    people = list(actors or [])
    drafts = [
        EventDraft(
            event_type="alert.received",
            phase=Phase.DETECT,
            occurred_at=at,
            summary=f"generic alert received: {incident.title}",
            data={"alert": {"key": incident.id}},
        ),
        EventDraft(
            event_type="incident.triaged",
            phase=Phase.TRIAGE,
            occurred_at=incident.sla.triaged_at,
            summary=f"Scored {incident.score}/10 → {incident.priority.value}",
            data={"triage": incident.triage.wire()},
        ),
    ]
    for i in range(2, n):
        phase = _PHASES[(i - 2) % len(_PHASES)]
        text = texts[(i - 2) % len(texts)] if texts else f"step {i} of {incident.id}"
        actor = people[(i - 2) % len(people)] if people else "soc-responder"
        drafts.append(
            EventDraft(
                event_type=f"test.{phase.value.lower()}",
                phase=phase,
                occurred_at=at + spacing * i,
                summary=text,
                actor=actor,
                actor_type=ActorType.APP if actor == "soc-responder" else ActorType.ANALYST,
                data={"i": i, "note": text},
            )
        )
    return drafts[:n]


def seed(store: EvidenceStore, incident: Incident, drafts: list[EventDraft]) -> list[EvidenceEvent]:
    """Create the incident and its chain."""
    store.create_incident(incident)
    return store.append_events(incident.id, drafts, new_chain=True)


def seed_year(store: EvidenceStore, year: int = 2026, incidents: int = 48, events_each: int = 6) -> list[Incident]:
    """``incidents`` incidents spread over the year: partners contoso and none, priorities P1–P4."""
    out = []
    for i in range(incidents):
        created = datetime(year, 1, 1, 9, tzinfo=UTC) + timedelta(days=i * 365 // incidents, hours=i % 7)
        key = hashlib.sha256(f"{year}-{i}".encode()).hexdigest()[:8]
        inc = make_incident(key, created, partner_id="contoso" if i % 3 else None, priority=list(Priority)[i % 4])
        seed(store, inc, timeline(inc, events_each))
        out.append(inc)
    return out
