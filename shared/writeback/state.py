"""The write-back's own bookkeeping per incident: what was last applied to each target, what was last seen
there, which managed labels are ours, and the retry schedule of failed write-backs. Typed records, pure helpers.

One state row per incident (``EvidenceStore.get_state("writeback:{id}")``),
changed only by ETag-guarded read-modify-write, so the runbook's activity, the
sync timer and Sentinel update deliveries can run at once on scaled-out
instances. This is operational state, not evidence: the timeline holds the
evidence of every write-back and failure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.etag import Versioned, update_under_etag
from shared.models import isoformat
from shared.store import EvidenceStore
from shared.writeback import state_name

MAX_TRIES = 25
MAX_WRITES_KEPT = 20
# Transient failures: retry after 1, 2, 4 … minutes (at most an hour apart), give up after this many attempts.
MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(minutes=60)


def digest(value: Any) -> str:
    """Stable fingerprint of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


# A target entry: the projection's record of one Sentinel incident or Defender alert (``id``, ``kind``,
# ``applied``, ``seen``, ``writes``, ``failure``, ``commentId``/``commentSha``/``commentLimited``, ``turnedOff``,
# ``owned``/``labelClaims``), stored as the JSON it has always been. Entries are values: every change builds a new
# one (``{**entry, ...}``, ``merged_target``, ``with_claims``), none is changed in place.
TargetEntry = Mapping[str, Any]


@dataclass(frozen=True)
class WritebackNotes:
    """Incident-wide notes: Defender alerts already reported as unaddressable, the last dry-run plan evidenced."""

    unaddressable: tuple[str, ...] | None = None
    dry_run: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, doc: Mapping[str, Any]) -> WritebackNotes:
        known = ("unaddressable", "dryRun")
        unaddressable = doc.get("unaddressable")
        return cls(
            unaddressable=tuple(unaddressable) if unaddressable is not None else None,
            dry_run=doc.get("dryRun"),
            extra={k: v for k, v in doc.items() if k not in known},
        )

    def wire(self) -> dict[str, Any]:
        out = dict(self.extra)
        if self.unaddressable is not None:
            out["unaddressable"] = list(self.unaddressable)
        if self.dry_run is not None:
            out["dryRun"] = self.dry_run
        return out


@dataclass(frozen=True)
class WritebackState:
    """One incident's write-back state row (``writeback:{id}``), parsed when read and serialised when written
    (the stored JSON keeps its shape: ``incidentId``, ``targets`` {key: entry}, ``notes``, any other key as read)."""

    incident_id: str
    targets: Mapping[str, TargetEntry] = field(default_factory=dict)
    notes: WritebackNotes = field(default_factory=WritebackNotes)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_wire(cls, incident_id: str, doc: Mapping[str, Any] | None) -> WritebackState:
        doc = json.loads(json.dumps(doc or {}))  # a deep copy: nothing read is shared with the caller
        return cls(
            incident_id=doc.get("incidentId", incident_id),
            targets=dict(doc.get("targets") or {}),
            notes=WritebackNotes.from_wire(doc.get("notes") or {}),
            extra={k: v for k, v in doc.items() if k not in ("incidentId", "targets", "notes")},
        )

    def wire(self) -> dict[str, Any]:
        return {
            **self.extra,
            "incidentId": self.incident_id,
            "targets": {k: dict(v) for k, v in self.targets.items()},
            "notes": self.notes.wire(),
        }

    def target(self, key: str) -> TargetEntry | None:
        return self.targets.get(key)

    def with_target(self, key: str, entry: TargetEntry) -> WritebackState:
        return replace(self, targets={**self.targets, key: entry})

    def with_notes(self, **changes: Any) -> WritebackState:
        return replace(self, notes=replace(self.notes, **changes))


def load(store: EvidenceStore, incident_id: str) -> WritebackState:
    got = store.get_state(state_name(incident_id))
    return WritebackState.from_wire(incident_id, got[0] if got else None)


def update(
    store: EvidenceStore, incident_id: str, change: Callable[[WritebackState], WritebackState | None]
) -> WritebackState:
    """Apply ``change`` to the incident's state under its ETag (``shared.etag.update_under_etag``: re-read and
    re-applied after a lost race, so ``change`` decides from the state it is given alone). ``change`` returns the
    new state, or None for no write. Returns the state after."""
    name = state_name(incident_id)

    def read() -> Versioned[WritebackState]:
        got = store.get_state(name)
        return Versioned(WritebackState.from_wire(incident_id, got[0] if got else None), got[1] if got else None)

    def write(state: WritebackState, etag: str | None) -> str:
        return store.set_state(name, state.wire(), etag)

    done = update_under_etag(read, write, change, what=f"write-back state of {incident_id}", tries=MAX_TRIES)
    assert done is not None  # read() never finds nothing: a missing row reads as an empty state
    return done.after


# Fields of a target entry that ``merged_target`` never copies from a projection's entry: ``seen`` is merged field by
# field; the labels we own change only by ``claim_labels`` (write-ahead) and by ``RELEASED`` (after a confirmed PUT
# or read), so an entry loaded before a concurrent projection's claim can never drop that claim.
_NOT_COPIED = ("seen", "owned", "labelClaims")
RELEASED = "labelsReleased"


def owned_labels(entry: TargetEntry) -> dict[str, str]:
    """The managed labels soc-responder added to this Sentinel incident → the claim that recorded each (states
    written before claims existed: their ``owned`` list, claim "")."""
    claims = entry.get("labelClaims")
    if isinstance(claims, dict):
        return {str(k): str(v) for k, v in claims.items()}
    return {str(name): "" for name in entry.get("owned") or []}


def with_claims(entry: TargetEntry, claims: dict[str, str]) -> dict[str, Any]:
    """The entry with exactly these label claims (and their names in ``owned``, for people reading the state)."""
    return {**entry, "labelClaims": claims, "owned": list(claims)}


def claim_labels(store: EvidenceStore, incident_id: str, key: str, rid: str, labels: list[str], claim: str) -> None:
    """Write-ahead: record ``labels`` as ours on the target *before* the PUT that adds them, so an answer lost on
    the way back (the client retries, gets 412, re-reads and finds them there), a crash before the state is saved,
    or a concurrent projection's save cannot lose them."""

    def change(state: WritebackState) -> WritebackState | None:
        stored = state.target(key) or {"id": rid, "kind": "sentinel"}
        claims = owned_labels(stored)
        if all(claims.get(name) == claim for name in labels):
            return None
        return state.with_target(key, with_claims(stored, {**claims, **dict.fromkeys(labels, claim)}))

    update(store, incident_id, change)


def merged_target(stored: TargetEntry | None, entry: TargetEntry, seen: Mapping[str, Any] | None = None) -> TargetEntry:
    """A projection's target ``entry`` merged into the ``stored`` one; ``seen`` (what the target last showed) is
    merged field by field, because the update handler writes it too. The labels we own are never taken from
    ``entry``: its ``labelsReleased`` ({name: the claim it saw}) drops a claim only if no projection renewed it
    since."""
    stored = stored or {}
    merged = {**stored, **{k: v for k, v in entry.items() if k not in _NOT_COPIED and k != RELEASED}}
    merged["seen"] = {**(stored.get("seen") or {}), **(seen or {})}
    claims = owned_labels(stored)
    released = entry.get(RELEASED) or {}
    if claims or "owned" in stored or "labelClaims" in stored:
        return with_claims(merged, {n: c for n, c in claims.items() if n not in released or released[n] != c})
    return merged


def merge_target(
    state: WritebackState, key: str, entry: TargetEntry, seen: Mapping[str, Any] | None = None
) -> WritebackState:
    """``state`` with a projection's target entry merged in (``merged_target``)."""
    return state.with_target(key, merged_target(state.target(key), entry, seen))


def record_write(entry: TargetEntry, write: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry's recent writes with ``write`` appended (bounded: echoes of older writes are long gone)."""
    return [*(entry.get("writes") or []), write][-MAX_WRITES_KEPT:]


def failure_after(entry: TargetEntry, error: Mapping[str, Any], fingerprint: str, now: datetime) -> dict[str, Any]:
    """The failure record after one more failed attempt: a retry time with backoff, or final."""
    previous = entry.get("failure") or {}
    attempts = int(previous.get("attempts") or 0) + 1 if previous.get("fingerprint") == fingerprint else 1
    final = bool(error.get("final")) or attempts >= MAX_ATTEMPTS
    retry_at = None if final else isoformat(now + min(MAX_BACKOFF, timedelta(minutes=2 ** (attempts - 1))))
    return {
        "attempts": attempts,
        "final": final,
        "nextAttemptAt": retry_at,
        "fingerprint": fingerprint,
        "error": error,
        "at": isoformat(now),
    }


def deferred(entry: TargetEntry, fingerprint: str, now: datetime, honour_backoff: bool) -> str | None:
    """Why this target must not be tried now (None: go ahead)."""
    failure = entry.get("failure") or {}
    if not failure or failure.get("fingerprint") != fingerprint:
        return None
    if failure.get("final"):
        return "failed for good; waiting for the incident to change"
    if honour_backoff and failure.get("nextAttemptAt") and isoformat(now) < failure["nextAttemptAt"]:
        return f"retry scheduled at {failure['nextAttemptAt']}"
    return None
