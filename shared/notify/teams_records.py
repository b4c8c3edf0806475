"""The Teams rows (issue 16; issue 14 storm fields): one card to one channel, and its outbox pointer."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from shared.notify.records import NotificationRecord


class TeamsRecord(NotificationRecord):
    """One card to one Teams channel (``teams-{key}-{target}``, in the incident's partition)."""

    CHANNEL: ClassVar[str | None] = "teams"

    record_id: str | None = None
    target: str | None = None  # "partner" | "soc"
    secret_name: str | None = None
    incident_id: str | None = None
    event: str | None = None
    raised_from: str | None = None
    actor: str | None = None
    reason: str | None = None
    tries: int = 0
    next_try_at: str | None = None
    outbox: str | None = None  # the outbox partition holding this row's pointer
    card_sha256: str | None = None
    url_sha256: str | None = None
    posted_at: str | None = None
    http_status: int | None = None
    # issue 14: priority (place in a paced channel), summary due in / posted; a summary row's incidents and card
    priority: str | None = None
    summary: str | None = None
    incidents: list[str] | None = None
    card_json: str | None = None
    headline: str | None = None


class TeamsOutboxRecord(NotificationRecord):
    """A pointer to a card still to post (``~teams-outbox-{YYYYMMDDHH}``, id ``{incident}~{record}``)."""

    CHANNEL: ClassVar[str | None] = "teams-outbox"

    incident_id: str | None = None
    record_id: str | None = None
    priority: str | None = None  # issue 14: the timer posts waiting cards P1 first
    secret_name: str | None = None  # issue 14: the channel (its pace)


def outbox_partition(at: datetime) -> str:
    return f"~teams-outbox-{at:%Y%m%d%H}"
