"""The write-back's own bookkeeping per incident: what was last applied to each target, what was last seen
there, which managed labels are ours, and the retry schedule of failed write-backs. Pure helpers.

One state row per incident (``EvidenceStore.get_state("writeback:{id}")``),
changed only by ETag-guarded read-modify-write, so the runbook's activity, the
sync timer and Sentinel update deliveries can run at once on scaled-out
instances. This is operational state, not evidence: the timeline holds the
evidence of every write-back and failure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.models import isoformat
from shared.store import ConcurrencyError, EvidenceStore
from shared.writeback import state_name

MAX_TRIES = 25
MAX_WRITES_KEPT = 20
# Transient failures: retry after 1, 2, 4 … minutes (at most an hour apart), give up after this many attempts.
MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(minutes=60)


def digest(value: Any) -> str:
    """Stable fingerprint of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def load(store: EvidenceStore, incident_id: str) -> dict[str, Any]:
    got = store.get_state(state_name(incident_id))
    doc = dict(got[0]) if got else {}
    doc.setdefault("incidentId", incident_id)
    doc.setdefault("targets", {})
    doc.setdefault("notes", {})
    return doc


def update(
    store: EvidenceStore, incident_id: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
) -> dict[str, Any]:
    """Apply ``change`` to the incident's state under its ETag (re-read and re-applied after a lost race).
    ``change`` gets a copy and returns the new state, or None for no write. Returns the state after."""
    name = state_name(incident_id)
    for _ in range(MAX_TRIES):
        got = store.get_state(name)
        current = json.loads(json.dumps(got[0])) if got else {}
        current.setdefault("incidentId", incident_id)
        current.setdefault("targets", {})
        current.setdefault("notes", {})
        new = change(current)
        if new is None:
            return current
        try:
            store.set_state(name, new, got[1] if got else None)
        except ConcurrencyError:
            continue
        return new
    raise ConcurrencyError(f"write-back state of {incident_id} is changing too fast to update")


# Fields of a target entry that ``merge_target`` never copies from a projection's entry: ``seen`` is merged field by
# field; the labels we own change only by ``claim_labels`` (write-ahead) and by ``RELEASED`` (after a confirmed PUT
# or read), so an entry loaded before a concurrent projection's claim can never drop that claim.
_NOT_COPIED = ("seen", "owned", "labelClaims")
RELEASED = "labelsReleased"


def owned_labels(entry: dict[str, Any]) -> dict[str, str]:
    """The managed labels soc-responder added to this Sentinel incident → the claim that recorded each (states
    written before claims existed: their ``owned`` list, claim "")."""
    claims = entry.get("labelClaims")
    if isinstance(claims, dict):
        return {str(k): str(v) for k, v in claims.items()}
    return {str(name): "" for name in entry.get("owned") or []}


def _set_claims(entry: dict[str, Any], claims: dict[str, str]) -> None:
    entry["labelClaims"] = claims
    entry["owned"] = list(claims)  # the names, for people reading the state


def claim_labels(store: EvidenceStore, incident_id: str, key: str, rid: str, labels: list[str], claim: str) -> None:
    """Write-ahead: record ``labels`` as ours on the target *before* the PUT that adds them, so an answer lost on
    the way back (the client retries, gets 412, re-reads and finds them there), a crash before the state is saved,
    or a concurrent projection's save cannot lose them."""

    def change(state: dict[str, Any]) -> dict[str, Any] | None:
        stored = state["targets"].get(key) or {"id": rid, "kind": "sentinel"}
        claims = owned_labels(stored)
        if all(claims.get(name) == claim for name in labels):
            return None
        _set_claims(stored, {**claims, **dict.fromkeys(labels, claim)})
        state["targets"][key] = stored
        return state

    update(store, incident_id, change)


def merge_target(state: dict[str, Any], key: str, entry: dict[str, Any], seen: dict[str, Any] | None = None) -> None:
    """Put a projection's target entry into ``state``; ``seen`` (what the target last showed) is merged
    field by field, because the update handler writes it too. The labels we own are never taken from ``entry``:
    its ``labelsReleased`` ({name: the claim it saw}) drops a claim only if no projection renewed it since."""
    stored = state["targets"].get(key) or {}
    merged = {**stored, **{k: v for k, v in entry.items() if k not in _NOT_COPIED and k != RELEASED}}
    merged["seen"] = {**(stored.get("seen") or {}), **(seen or {})}
    claims = owned_labels(stored)
    released = entry.get(RELEASED) or {}
    if claims or "owned" in stored or "labelClaims" in stored:
        _set_claims(merged, {n: c for n, c in claims.items() if n not in released or released[n] != c})
    state["targets"][key] = merged


def record_write(entry: dict[str, Any], write: dict[str, Any]) -> list[dict[str, Any]]:
    """The entry's recent writes with ``write`` appended (bounded: echoes of older writes are long gone)."""
    return [*(entry.get("writes") or []), write][-MAX_WRITES_KEPT:]


def failure_after(entry: dict[str, Any], error: dict[str, Any], fingerprint: str, now: datetime) -> dict[str, Any]:
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


def deferred(entry: dict[str, Any], fingerprint: str, now: datetime, honour_backoff: bool) -> str | None:
    """Why this target must not be tried now (None: go ahead)."""
    failure = entry.get("failure") or {}
    if not failure or failure.get("fingerprint") != fingerprint:
        return None
    if failure.get("final"):
        return "failed for good; waiting for the incident to change"
    if honour_backoff and failure.get("nextAttemptAt") and isoformat(now) < failure["nextAttemptAt"]:
        return f"retry scheduled at {failure['nextAttemptAt']}"
    return None
