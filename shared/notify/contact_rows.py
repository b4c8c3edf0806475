"""Issue 14: the rows of one contact number — its pages row, and the copy of each of its calls kept in the
partition of every incident the call announced (see ``contact_pages``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from shared.notify.context import NotifyContext
from shared.notify.records import NOTIFICATIONS, CallRecord, NotificationRecord

PAGES_ROW = "pages"


def contact_partition(key: str) -> str:
    """The Notifications partition of one contact number (its pages row and its calls)."""
    return f"~contact-{key}"


def mirror_id(key: str, record_id: str) -> str:
    """The id of a contact call's copy in each announced incident's partition (what the incident view, the
    review and the Sentinel comment list; two numbers' calls never share an id)."""
    return f"{record_id}-{key[:8]}"


def mirror_call(context: NotifyContext, row: CallRecord, record_id: str) -> None:
    """Write (or refresh) the copy of a contact call in the partition of every incident it announced."""
    if not row.contact_key:
        return
    doc = {**row.wire(), "contactCallId": record_id}
    for incident_id in row.announced or []:
        context.store.put_record(NOTIFICATIONS, incident_id, mirror_id(row.contact_key, record_id), doc)


class ContactPagesRecord(NotificationRecord):
    """The incidents paged to one number: ``pending`` maps an incident id to its page (see ``page_entry``)."""

    CHANNEL: ClassVar[str | None] = "contact-pages"

    contact: str | None = None
    pending: dict[str, dict[str, Any]] = Field(default_factory=dict)
    live_call: str | None = None
    wake_pending: bool = False
    """A ``Page`` event was raised since the pager last read this row: no need to raise another (a storm of
    pages wakes the pager once per turn, not once per incident)."""


def page_entry(request: Mapping[str, Any], timezone: str, received_at: str, at: str) -> dict[str, Any]:
    """One incident's page as the pages row keeps it (what the per-incident stop rules need, and the count)."""
    return {
        "requestKey": request.get("requestKey"),
        "requestedAt": request.get("requestedAt"),
        "epoch": request.get("epoch"),
        "priority": request.get("priority"),
        "audience": request.get("audience"),
        "maxAttempts": int(request.get("maxAttempts") or 12),
        "escalationId": request.get("instanceId"),
        "timezone": timezone,
        "receivedAt": received_at,
        "addedAt": at,
        "attempts": 0,
    }
