"""Notifications rows: one per email, call attempt to one contact, and P4 digest hold, with a deterministic id.

The stored JSON document of each row is exactly what earlier versions wrote (camelCase keys; a key
written as null stays null, a key never written stays absent), so existing tables still read and
the incident view, the review and the Sentinel comment show the same rows. A row is parsed into a
frozen record when read and serialised when written; a change makes a new record (``changed``),
never edits a dict in place. Keys this version does not know are kept as they are.

``NotificationRows`` is the table as the domain uses it: claim with a conditional insert (a row
that exists was sent, or is being sent, by someone else), and change under the row's ETag with
``shared.etag.update_under_etag``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from shared.errors import ConflictError
from shared.etag import Updated, Versioned, update_under_etag
from shared.store import EvidenceStore

NOTIFICATIONS = "Notifications"
DIGEST_QUEUE_RECORD = "digest-queue"

R = TypeVar("R", bound="NotificationRecord")


class NotificationRecord(BaseModel):
    """What every Notifications row carries. ``status`` is the row's state word (sending, sent, failed …)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)

    CHANNEL: ClassVar[str | None] = None

    channel: str | None = None
    kind: str | None = None
    status: str | None = None
    recipient: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    error: Any = None

    @classmethod
    def parse(cls: type[R], doc: dict[str, Any]) -> R:
        """The row as stored (a JSON document)."""
        return cls.model_validate(doc)

    def wire(self) -> dict[str, Any]:
        """The JSON document to store: the keys that were read or set, as they were named."""
        return self.model_dump(by_alias=True, exclude_unset=True)

    def changed(self: R, **fields: Any) -> R:
        """A copy with ``fields`` (Python names of declared fields) set."""
        unknown = set(fields) - set(type(self).model_fields)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(unknown)}")
        return self.model_copy(update=fields)


class EmailRecord(NotificationRecord):
    """One email (``email-…`` ids; the P4 digest's under ``~digest-<partner>`` partitions)."""

    CHANNEL: ClassVar[str | None] = "email"

    recipients: list[str] = []
    subject: str | None = None
    importance: str | None = None
    text: str | None = None
    html_sha256: str | None = None
    tries: int = 1
    # What the email was about, when the sender said (the runbook's epoch, an operator's words, a digest's day).
    actor: str | None = None
    reason: str | None = None
    epoch: int | None = None
    incidents: list[str] | None = None
    day: str | None = None
    sent_at: str | None = None
    # issue 14: storm summaries and the mail pacer (shared/notify/storm.py, shared/notify/pacer.py)
    priority: str | None = None
    """The most urgent priority the email is about (the pacer sends P1 first)."""
    queued_at: str | None = None
    """``queued``: when it joined the mailbox queue (the queue row holds what is sent)."""
    summary: str | None = None
    """``folded``: the storm summary the email was gathered into (``~storm`` partition, its record id)."""


class CallRecord(NotificationRecord):
    """One call of one escalation attempt to one emergency contact (``call-{requestKey}-a{nn}-c{i}``)."""

    CHANNEL: ClassVar[str | None] = "call"

    incident_id: str | None = None
    escalation_id: str | None = None
    request_key: str | None = None
    attempt: int | None = None
    contact_name: str | None = None
    target: str | None = None
    token_hash: str | None = None
    """SHA-256 of the secret in the call's callback URL (the secret itself is never stored)."""
    scheduled_at: str | None = None
    prompts: int | None = None
    partner_contact: bool | None = None
    call_connection_id: str | None = None
    correlation_id: str | None = None
    placed_at: str | None = None
    connected_at: str | None = None
    acknowledged_at: str | None = None
    ended_at: str | None = None
    outcome: str | None = None
    outcome_unknown: bool | None = None
    # issue 14: a call of a contact's pager (partition ``~contact-{key}``) announces several incidents; a key
    # press acknowledges exactly these, in the order they were announced.
    announced: list[str] | None = None
    contact_key: str | None = None
    caller_id: str | None = None


def call_token_hash(token: str) -> str:
    """What a call's row keeps of the secret in its callback URL (the secret itself is never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class DigestQueueRecord(NotificationRecord):
    """A P4 incident's email held for its partner's daily digest (``digest-queue``, one per incident)."""

    CHANNEL: ClassVar[str | None] = "digest"

    partner_id: str | None = None
    digest: str | None = None
    """The digest email's record id once it went out (or was skipped)."""


class NotificationRows:
    """The Notifications table as typed records; every change is ETag-guarded."""

    def __init__(self, store: EvidenceStore):
        self.store = store

    def read(self, model: type[R], partition: str, record_id: str) -> Versioned[R] | None:
        """The row and its ETag, or None when there is no such row (or it is not a ``model`` row)."""
        got = self.store.get_record(NOTIFICATIONS, partition, record_id)
        if got is None:
            return None
        doc, etag = got
        if model.CHANNEL is not None and doc.get("channel") != model.CHANNEL:
            return None
        return Versioned(model.parse(doc), etag)

    def all_of(self, partition: str) -> list[dict[str, Any]]:
        """Every row of an incident as stored (id order)."""
        return self.store.list_records(NOTIFICATIONS, partition)

    def create(self, partition: str, record_id: str, record: NotificationRecord) -> str:
        """Claim: insert the row unless it exists (``ConflictError``). Returns its ETag."""
        return self.store.put_record(NOTIFICATIONS, partition, record_id, record.wire(), create_only=True)

    def update(
        self,
        model: type[R],
        partition: str,
        record_id: str,
        change: Callable[[R], R | None],
        first: Versioned[R] | None = None,
    ) -> Updated[R] | None:
        """Apply ``change`` to the current row under its ETag (again after each lost race); None: no row.

        ``first``: the row as this caller holds it (after a claim, with the ETag of its own write), which
        saves a read when nobody changed it since.
        """

        def write(record: R, etag: str | None) -> str:
            return self.store.put_record(NOTIFICATIONS, partition, record_id, record.wire(), etag=etag)

        return update_under_etag(
            lambda: self.read(model, partition, record_id),
            write,
            change,
            what=f"notification {record_id}",
            first=first,
        )

    def set_status(
        self,
        model: type[R],
        partition: str,
        record_id: str,
        status: str,
        at: str,
        allowed_from: Iterable[str] | None = None,
        **fields: Any,
    ) -> Updated[R] | None:
        """Move the row to ``status`` (stamped ``at``, with ``fields``) if it is in one of ``allowed_from``.

        ``written`` is False when the row was in another state: someone else moved it first, and only the
        one who moved it acts on the move (speaks, evidences), however many events arrive.
        """
        allowed = set(allowed_from) if allowed_from is not None else None

        def change(row: R) -> R | None:
            if allowed is not None and row.status not in allowed:
                return None
            return row.changed(**fields, status=status, updated_at=at)

        return self.update(model, partition, record_id, change)

    def claim(
        self, partition: str, record_id: str, fresh: R, take_over: Callable[[R], R | None]
    ) -> tuple[R, bool, str | None]:
        """Create the row; if it exists, ``take_over`` decides (under its ETag) whether this caller redoes it.

        Returns (row, owned by this caller, ETag of the row as this caller wrote it).
        """
        try:
            return fresh, True, self.create(partition, record_id, fresh)
        except ConflictError:
            pass
        done = self.update(type(fresh), partition, record_id, take_over)
        if done is None:  # the row vanished between the insert and the read: someone else is dealing with it
            return fresh, False, None
        return done.after, done.written, done.etag if done.written else None
