"""Azure Event Grid delivery to an ingest route (contract audit): the subscription handshake and the envelope.

An Event Grid subscription whose endpoint is an ingest route first proves the endpoint is ours: it POSTs an
array with one ``Microsoft.EventGrid.SubscriptionValidationEvent`` and expects ``{"validationResponse":
<data.validationCode>}`` back (Event Grid schema; ``aeg-event-type: SubscriptionValidation``). After that it
delivers events: an array of Event Grid events, or a CloudEvents 1.0 event, each with the alert in ``data``.
Pure: the route decides what to answer.
"""

from __future__ import annotations

from typing import Any

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
MAX_EVENTS = 100  # Event Grid's own batch limit (maxEventsPerBatch ≤ 5000, default 1); more is not a delivery


def validation_code(payload: Any) -> str | None:
    """The handshake's ``validationCode`` when ``payload`` is a subscription validation event, else None."""
    events = payload if isinstance(payload, list) else [payload]
    for event in events:
        if not isinstance(event, dict):
            return None
        kind = event.get("eventType") or event.get("type")
        data = event.get("data")
        if kind == VALIDATION_EVENT and isinstance(data, dict) and isinstance(data.get("validationCode"), str):
            return data["validationCode"]
    return None


def _is_event(item: Any) -> bool:
    if not isinstance(item, dict) or "data" not in item:
        return False
    event_grid = "eventType" in item and "id" in item and ("dataVersion" in item or "eventTime" in item)
    cloud_event = "specversion" in item and "type" in item and "id" in item
    return event_grid or cloud_event


def unwrap(payload: Any) -> list[Any] | None:
    """The alerts an Event Grid delivery carries (each event's ``data``); None when it is not a delivery."""
    if _is_event(payload):
        return [payload["data"]]
    if isinstance(payload, list) and payload and len(payload) <= MAX_EVENTS and all(_is_event(e) for e in payload):
        return [e["data"] for e in payload]
    return None
