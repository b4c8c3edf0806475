"""What fits the evidence store: an alert is claimed only once its evidence and incident row are known to fit
(docs/spec/ingest.md, size caps)."""

from __future__ import annotations

from datetime import datetime

from shared.ingest.records import (
    alert_evidence,
    open_incident,
)
from shared.models import (
    Alert,
    TriageDecision,
)

# -- issue 12: an alert is claimed only once it is known to fit ----------------------------------------------
# The evidence store splits a JSON property into at most 15 × 30,000 characters (Table Storage: 64 KiB per
# property, 1 MiB per row). An alert whose evidence or incident row would not fit used to be claimed key by
# key, then fail to store (500) and leave its claims behind, so no delivery of it could ever be recorded.
MAX_RECORD_CHARS = 200_000
MAX_DEDUPE_KEYS = 160  # the alert's own key + Sentinel's 150 alerts + a few refs


def ensure_recordable(alert: Alert, decision: TriageDecision, received: datetime) -> None:
    """ValidationError (400, naming the field) when the alert's evidence or incident row would not fit."""
    from shared.errors import ValidationError
    from shared.evidence import canonical_json

    if len(alert.dedupe_keys) > MAX_DEDUPE_KEYS:
        raise ValidationError(
            "the alert names too many alert ids",
            [{"field": "alerts", "message": f"at most {MAX_DEDUPE_KEYS - 10} alerts per incident"}],
        )
    sizes = {
        "alert": len(canonical_json(alert_evidence(alert))),
        "incident": len(
            canonical_json(open_incident(alert.primary_key, alert, decision, None, "UTC", received, received).wire())
        ),
    }
    too_big = {name: n for name, n in sizes.items() if n > MAX_RECORD_CHARS}
    if too_big:
        raise ValidationError(
            "the alert is too large to record",
            [
                {
                    "field": "body",
                    "message": f"its {name} evidence would take {n} characters; at most {MAX_RECORD_CHARS}",
                }
                for name, n in too_big.items()
            ],
        )
