"""Write-back (issue 7): what soc-responder decided and did, projected into Microsoft Sentinel and Defender for Cloud.

SOC analysts work in the Sentinel incident queue and the Defender for Cloud
alert list. Every incident that came from (or was joined by) a Sentinel
incident or a Defender for Cloud alert is projected there:

- ``targets``: which Sentinel incidents / Defender alerts an incident speaks for
  (their ARM ids, ``shared.sources``, carried by the alerts' evidence);
- ``mapping``: priority → Sentinel severity, incident status → Sentinel status and
  Defender alert state, the managed labels (pure);
- ``comment``: the one consolidated comment (priority and why, containment and
  results, who was notified and when, the evidence link), under Sentinel's limits;
- ``plan``: how a read Sentinel incident is changed (merge, never clobber) (pure);
- ``ports``: the adapter interfaces the service owns (Protocols) and the values they exchange; adapters raise
  the shared adapter errors (``shared.errors``);
- ``state``: the write-back's own bookkeeping per incident (typed records, ETag-guarded updates);
- ``desired``: what every target of an incident should show now (pure);
- ``sentinel_target``, ``defender_target``: projecting an incident onto one Sentinel incident / one Defender
  alert; ``outcome``: what one target's projection came to, and how a failed write is evidenced;
- ``sync``: the ``writeback_sync`` timer's pass over incidents that moved;
- ``service``: ``WritebackService`` (project one incident onto all its targets; the timer's sync pass).

Incident updates coming back from Sentinel are handled on the intake side
(``shared.sentinel_updates``), which reads this package's state and mapping.

Import-light: nothing here loads an SDK at import time.
"""

from __future__ import annotations

ACTIVITY = "write_back_incident"
STATE_PREFIX = "writeback:"
SYNC_STATE = "writeback-sync"


def state_name(incident_id: str) -> str:
    """Name of an incident's write-back state row (``EvidenceStore.get_state``)."""
    return f"{STATE_PREFIX}{incident_id}"
