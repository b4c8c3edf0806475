"""The ``writeback_sync`` timer's pass: every incident touched in the last week whose timeline (or row) moved
since the last pass is projected again (operator routes change incidents without knowing about Sentinel);
a service that keeps failing stops the pass early instead of being hammered."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.models import isoformat
from shared.store import EvidenceStore
from shared.writeback import SYNC_STATE

log = logging.getLogger("soc_responder.writeback")

SYNC_LOOKBACK = timedelta(days=7)
# A sync pass stops after this many transient failures in a row (the service is down: don't hammer it).
SYNC_BREAKER = 3


def sync_pass(store: EvidenceStore, write_back: Callable[..., dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Re-project every incident touched in the last week whose timeline (or row) moved since the last pass
    (``write_back(incident_id, trigger="timer")`` projects one)."""
    got = store.get_state(SYNC_STATE)
    # Per incident: its chain head and its row's updatedAt when last projected (either moving means a change).
    seen: dict[str, str] = dict((got[0] if got else {}).get("seen") or {})
    kept: dict[str, str] = {}
    report: dict[str, Any] = {"checked": 0, "projected": 0, "outcomes": {}, "stoppedEarly": False}
    transient_in_a_row = 0
    rows = list(store.iter_incident_index(touched_since=isoformat(now - SYNC_LOOKBACK)))
    for position, row in enumerate(rows):
        iid = row.incident_id
        report["checked"] += 1
        head = store.get_chain_head(iid)
        mark = f"{head[0] if head else 0}|{row.updated_at}"
        if seen.get(iid) == mark:
            kept[iid] = mark
            continue
        if transient_in_a_row >= SYNC_BREAKER:
            # The service keeps failing: leave the rest for the next pass instead of hammering it.
            report["stoppedEarly"] = True
            kept.update({r.incident_id: seen[r.incident_id] for r in rows[position:] if r.incident_id in seen})
            break
        try:
            result = write_back(iid, trigger="timer")
        except Exception:
            log.exception("write-back sync of %s failed", iid)
            continue
        report["projected"] += 1
        outcome = result.get("status", "unknown")
        report["outcomes"][outcome] = report["outcomes"].get(outcome, 0) + 1
        pending = [
            t
            for t in result.get("targets") or []
            if isinstance(t, dict) and t.get("status") in ("failed", "deferred") and not t.get("final")
        ]
        transient_in_a_row = transient_in_a_row + 1 if any(t["status"] == "failed" for t in pending) else 0
        if pending:
            if iid in seen:
                kept[iid] = seen[iid]  # not done yet: looked at again next pass (the backoff decides)
            continue
        kept[iid] = mark
    if kept != seen:
        store.set_state(SYNC_STATE, {"seen": kept, "at": isoformat(now)}, got[1] if got else None)
    return report
