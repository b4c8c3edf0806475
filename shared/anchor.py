"""Evidence anchored outside the tables (docs/spec/evidence.md, docs/spec/access.md).

The hash chain proves an incident's timeline was not changed *piecemeal*; it
cannot prove the timeline was not deleted or rewritten *whole* (new hashes,
new head) by someone who can write the table. So every hour ``anchor_evidence``
writes a manifest — every incident's chain head (last seq, last hash) and
hence the set of incident ids — as a new blob in the write-once archive
container (time-based immutability: the app can add blobs, nobody can change
or delete one for the retention period). The manifest names its own SHA-256
and the previous anchor's, so anchors form a chain too.

``verify`` and the review then check an incident against the latest anchor:
- anchored but gone from the tables → "deleted";
- fewer events than anchored → "truncated";
- the anchored event's hash differs → "rewritten".
Events appended after the anchor are fine (the anchor is a prefix check).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import Field

from shared.errors import IncidentNotFoundError, ValidationError
from shared.evidence import ChainVerdict, EvidenceEvent, canonical_json
from shared.models import SocModel, isoformat
from shared.store import EvidenceStore
from shared.verify_export import check_stored_chain

ANCHOR_PREFIX = "anchors/"
KIND = "soc-responder.evidence-anchor"
CLOCK_MARGIN = timedelta(minutes=10)  # heads written just before the previous anchor, by the storage clock
RETENTION = timedelta(days=3 * 365)
PURGES = "retention-purges"  # shared/retention.PURGE_LOG_PARTITION (the purge log)
log = logging.getLogger("soc_responder.anchor")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class AnchorArchive(Protocol):
    """The write-once archive container (shared/adapters/archive_blob.py)."""

    def write_new(self, name: str, body: bytes) -> None:
        """Create ``name``; never overwrites (an existing name is an error)."""
        ...

    def latest(self, prefix: str) -> tuple[str, bytes] | None:
        """The blob with the greatest name under ``prefix``, or None."""
        ...

    def read(self, name: str) -> bytes | None:
        """One blob's content, or None when it does not exist."""
        ...


class AnchoredHead(SocModel):
    last_seq: int
    last_hash: str
    first_anchored_at: str | None = None  # when an anchor first named the incident (purges need 3 years)


class AnchorManifest(SocModel):
    kind: str = KIND
    version: int = 1
    anchored_at: str
    incident_count: int
    incidents: dict[str, AnchoredHead] = Field(default_factory=dict)
    previous_anchor: str | None = None
    previous_manifest_hash: str | None = None
    manifest_hash: str = ""

    def content_hash(self) -> str:
        body = self.wire()
        body.pop("manifestHash", None)
        return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def anchor_name(at: datetime, manifest_hash: str) -> str:
    """Names sort by time (``latest`` is the greatest name)."""
    return f"{ANCHOR_PREFIX}{at:%Y/%m/%d/%Y%m%dT%H%M%S%f}Z-{manifest_hash[:16]}.json"


def build_manifest(
    heads: Iterable[tuple[str, int, str]] | dict[str, AnchoredHead],
    at: datetime,
    previous: tuple[str, AnchorManifest] | None,
) -> AnchorManifest:
    if isinstance(heads, dict):
        incidents = dict(sorted(heads.items()))
    else:
        stamp = isoformat(at)
        incidents = {
            iid: AnchoredHead(last_seq=seq, last_hash=h, first_anchored_at=stamp) for iid, seq, h in sorted(heads)
        }
    manifest = AnchorManifest(
        anchored_at=isoformat(at),
        incident_count=len(incidents),
        incidents=incidents,
        previous_anchor=previous[0] if previous else None,
        previous_manifest_hash=previous[1].manifest_hash if previous else None,
    )
    manifest.manifest_hash = manifest.content_hash()
    return manifest


def parse_manifest(raw: bytes | str, source: str = "anchor") -> AnchorManifest:
    """A manifest whose own hash checks out, or ValidationError naming what is wrong."""
    try:
        doc = json.loads(raw)
        manifest = AnchorManifest.model_validate(doc)
    except ValueError as exc:
        raise ValidationError(
            f"{source} is not an evidence anchor", [{"field": source, "message": str(exc)[:200]}]
        ) from None
    if manifest.kind != KIND or manifest.manifest_hash != manifest.content_hash():
        raise ValidationError(
            f"{source} is not an intact evidence anchor", [{"field": source, "message": "manifest hash mismatch"}]
        )
    return manifest


def check_against_anchor(manifest: AnchorManifest, incident_id: str, events: list[EvidenceEvent]) -> str | None:
    """Why the incident's events disagree with the anchor, or None (not anchored yet, or consistent)."""
    head = manifest.incidents.get(incident_id)
    if head is None:
        return None
    if not events:
        return f"deleted: anchored at {manifest.anchored_at} with {head.last_seq} events, none remain"
    by_seq = {ev.seq: ev for ev in events}
    if head.last_seq not in by_seq:
        return (
            f"truncated: anchored at {manifest.anchored_at} with {head.last_seq} events, "
            f"{len(events)} remain (last {events[-1].seq})"
        )
    if by_seq[head.last_seq].hash != head.last_hash:
        return f"rewritten: event {head.last_seq} differs from the anchor of {manifest.anchored_at}"
    return None


class EvidenceIntegrity:
    """The one integrity check of an incident: chain + stored head (verify_export) + the latest anchor."""

    def __init__(
        self, store: EvidenceStore, archive: AnchorArchive | None, clock: Callable[[], datetime] | None = None
    ):
        self.store, self.archive, self.clock = store, archive, clock

    def latest_anchor(self) -> tuple[str, AnchorManifest] | None:
        if self.archive is None:
            return None
        got = self.archive.latest(ANCHOR_PREFIX)
        if got is None:
            return None
        name, raw = got
        latest = parse_manifest(raw, name)
        return name, self._with_predecessor(latest)

    def _with_predecessor(self, latest: AnchorManifest) -> AnchorManifest:
        """``latest``, unless its predecessor shows it dropped or rewound an incident (anchors only grow).

        The app identity can add anchors (never change one), so a forged newest anchor could leave an
        incident out; the predecessor it must name then still holds it, and wins for that incident.
        """
        if not latest.previous_anchor or self.archive is None:
            return latest
        raw = self.archive.read(latest.previous_anchor)
        try:
            previous = parse_manifest(raw, latest.previous_anchor) if raw is not None else None
        except ValidationError:
            previous = None
        if previous is None or previous.manifest_hash != latest.previous_manifest_hash:
            log.error("evidence anchor %s names a predecessor that is missing or differs", latest.previous_anchor)
            return latest
        cutoff = _parse(latest.anchored_at) - RETENTION
        merged, dropped = dict(latest.incidents), []
        for iid, head in previous.incidents.items():
            now = merged.get(iid)
            aged = head.first_anchored_at is not None and _parse(head.first_anchored_at) <= cutoff
            if (now is None and not aged) or (now is not None and now.last_seq < head.last_seq):
                merged[iid] = head
                dropped.append(iid)
        if not dropped:
            return latest
        log.error(
            "evidence anchor after %s dropped or rewound %d incident(s): %s",
            previous.anchored_at,
            len(dropped),
            dropped[:20],
        )
        return latest.model_copy(update={"incidents": merged, "incident_count": len(merged)})

    def anchor(self, at: datetime) -> dict[str, Any]:
        """Write a new anchor; returns its name and counts.

        Anchors are cumulative: the new one starts from the previous anchor's heads and moves forward
        only the chains whose head changed since, and only when the change is an append (the event the
        previous anchor named still has its hash). So an incident deleted, truncated or rewritten after
        it was anchored stays anchored as it was — the deletion cannot age out of the anchors — and
        only a recorded retention purge of an incident anchored 3 years ago removes it.
        """
        if self.archive is None:
            return {"skipped": "no evidence archive configured"}
        previous = self.latest_anchor()
        if previous is None:
            manifest = build_manifest(self.store.iter_chain_heads(), at, None)
            refused: list[str] = []
        else:
            heads, refused = self._advance(previous[1], at)
            manifest = build_manifest(heads, at, previous)
        name = anchor_name(at, manifest.manifest_hash)
        self.archive.write_new(name, json.dumps(manifest.wire(), sort_keys=True, indent=1).encode("utf-8"))
        if refused:
            log.warning("anchor %s kept the earlier anchored head of %d incident(s): %s", name, len(refused), refused)
        return {
            "anchor": name,
            "incidents": manifest.incident_count,
            "manifestHash": manifest.manifest_hash,
            "keptAnchored": refused,
        }

    def _advance(self, previous: AnchorManifest, at: datetime) -> tuple[dict[str, AnchoredHead], list[str]]:
        heads = dict(previous.incidents)
        stamp = isoformat(at)
        since = _parse(previous.anchored_at) - CLOCK_MARGIN
        refused = []
        for iid, seq, last_hash in self.store.iter_chain_heads(changed_since=since):
            old = heads.get(iid)
            if old is None:
                heads[iid] = AnchoredHead(last_seq=seq, last_hash=last_hash, first_anchored_at=stamp)
            elif (seq, last_hash) == (old.last_seq, old.last_hash):
                continue
            elif seq > old.last_seq and self.store.get_event_hash(iid, old.last_seq) == old.last_hash:
                heads[iid] = AnchoredHead(last_seq=seq, last_hash=last_hash, first_anchored_at=old.first_anchored_at)
            else:  # the chain went backwards or its anchored event changed: keep the anchored truth
                refused.append(iid)
        cutoff = at - RETENTION
        for iid, head in list(heads.items()):
            first = _parse(head.first_anchored_at) if head.first_anchored_at else None
            if first is not None and first <= cutoff and self.store.get_record("IngestState", PURGES, iid):
                del heads[iid]  # purged under retention (shared/retention.py) after 3 years anchored
        return heads, refused

    def check(self, incident_id: str, events: list[EvidenceEvent] | None = None) -> ChainVerdict:
        """Stored-chain verdict, then the anchor's (a broken chain is reported first)."""
        verdict = (
            check_stored_chain(self.store, incident_id)
            if events is None
            else _with_head(events, self.store.get_chain_head(incident_id))
        )
        if not verdict.valid:
            return verdict
        latest = self.latest_anchor()
        if latest is None:
            return verdict
        listed = events if events is not None else self.store.list_events(incident_id)
        why = check_against_anchor(latest[1], incident_id, listed)
        if why is None:
            return verdict
        return ChainVerdict(valid=False, events=len(listed), broken_at=len(listed) + 1 if listed else 1, reason=why)

    def verify(self, incident_id: str) -> dict[str, Any]:
        """GET /api/incidents/{id}/verify body; an incident gone from the tables but anchored is 'deleted'."""
        if self.store.get_incident(incident_id) is None:
            latest = self.latest_anchor()
            if latest is None or incident_id not in latest[1].incidents:
                raise IncidentNotFoundError(incident_id)
            why = check_against_anchor(latest[1], incident_id, self.store.list_events(incident_id)) or (
                f"deleted: the incident row is gone; anchored at {latest[1].anchored_at}"
            )
            return {"valid": False, "brokenAt": 1, "reason": why, "anchor": latest[0]}
        verdict = self.check(incident_id)
        if verdict.valid:
            return {"valid": True}
        return {"valid": False, "brokenAt": verdict.broken_at, "reason": verdict.reason}


def _with_head(events: list[EvidenceEvent], head: tuple[int, str] | None) -> ChainVerdict:
    from shared.verify_export import verify_stored

    return verify_stored(events, head)
