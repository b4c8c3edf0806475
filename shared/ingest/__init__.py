"""Detect and Triage (docs/spec/ingest.md, docs/spec/triage.md): from a normalised alert to a recorded incident.

- ``service``: ``IngestService`` — de-duplication, race-free grouping, triage, the incident and its first events.
- ``placement``: where an alert goes by its entities (the entity claims, ``shared.grouping``), grouping rows.
- ``records``: what ingest records (outcome, incident opened from an alert, alert merged, alert evidence; pure).
- ``limits``: an alert is claimed only once its evidence and incident row are known to fit.
- ``closing``: the source closed an incident after we recorded it.
"""

from shared.ingest.closing import close_at_source
from shared.ingest.limits import ensure_recordable
from shared.ingest.records import IngestOutcome, SourceUpdateHandler, alert_summary, merge_alert, open_incident
from shared.ingest.service import IngestService
from shared.models import RunbookStart

__all__ = [
    "IngestOutcome",
    "IngestService",
    "RunbookStart",
    "SourceUpdateHandler",
    "alert_summary",
    "close_at_source",
    "ensure_recordable",
    "merge_alert",
    "open_incident",
]
