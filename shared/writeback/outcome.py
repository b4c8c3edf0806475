"""What projecting an incident onto one target came to (written, unchanged, failed, deferred, skipped), and
how a failed write is recorded: its evidence, its backoff and whether it is final."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.errors import AdapterError
from shared.evidence import EventDraft
from shared.models import Incident, Phase
from shared.writeback import state as st
from shared.writeback.targets import describe

log = logging.getLogger("soc_responder.writeback")

_ROLE_HINT = {
    "sentinel": "Microsoft Sentinel Responder on the workspace",
    "defender": "the Defender for Cloud alert-state role in the alert's subscription",
}


@dataclass
class Outcome:
    key: str
    kind: str
    status: str  # written | unchanged | failed | deferred | skipped
    entry: dict[str, Any] = field(default_factory=dict)
    seen: dict[str, Any] = field(default_factory=dict)
    drafts: list[EventDraft] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {"target": self.entry.get("id") or self.key, "kind": self.kind, "status": self.status, **self.detail}


def is_final(entry: dict[str, Any]) -> bool:
    return bool((entry.get("failure") or {}).get("final"))


def failed(
    clock: Callable[[], datetime],
    incident: Incident,
    key: str,
    kind: str,
    rid: str,
    entry: dict,
    exc: AdapterError,
    fingerprint: str,
    now: datetime,
) -> Outcome:
    """A failed write: ``writeback.failed`` evidence, the next attempt (or final), the target's entry."""
    failure = st.failure_after(entry, exc.evidence(), fingerprint, now)
    if failure["final"]:
        tail = (
            "given up after {n} attempts".format(n=failure["attempts"])
            if not exc.final
            else "not retried until the incident changes"
        )
    else:
        tail = f"attempt {failure['attempts']}, retry at {failure['nextAttemptAt']}"
    hint = {"AccessDeniedError": f" — grant the app's identity {_ROLE_HINT[kind]}"}.get(type(exc).__name__, "")
    draft = EventDraft(
        event_type="writeback.failed",
        phase=Phase.NOTIFY,
        occurred_at=clock(),
        summary=f"Write-back to {describe(rid)} FAILED ({tail}): {exc.reason[:200]}{hint}",
        data={
            "target": rid,
            "kind": kind,
            "error": exc.evidence(),
            "attempt": failure["attempts"],
            "final": failure["final"],
            "nextAttemptAt": failure["nextAttemptAt"],
        },
    )
    log.warning("write-back of %s to %s failed: %s", incident.id, rid, exc.reason)
    return Outcome(
        key,
        kind,
        "failed",
        {**entry, "id": rid, "kind": kind, "failure": failure},
        drafts=[draft],
        detail={"error": exc.evidence(), "final": failure["final"]},
    )
