"""Issue 14: one phone escalation per contact — the incidents waiting for each number, and each number's calls.

Each contact number has a *pages* row (Notifications, partition ``~contact-{key}``, row ``pages``; the key is a
hash of the number, see ``contact_schedule``): the incidents paged to it and not yet settled, each with the
escalation that paged it and how many calls announced it. It is the truth the number's pager orchestration
(``functions/contact_pager.py``) works from: an incident's escalation writes its page here *before* it wakes the
pager, so a wake that is lost never loses a page.

A call (``place_call``) announces every incident still waiting — most severe, then oldest first — and stores that
list in its call row (``call-{episode}-n{nnn}`` in the contact's partition, claimed with a conditional insert
before dialling, as every call always was): pressing 1 acknowledges exactly those incidents, not any that arrived
after. Every step is evidenced on each incident it concerns. An incident leaves the row when it is settled
(acknowledged, closed, lowered: read from the incident at each call) or when it was announced in
``maxAttempts`` calls and the next call is due (it is then *exhausted* for this number).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from shared.errors import ConflictError
from shared.etag import Versioned
from shared.evidence import EventDraft
from shared.masking import mask_phone
from shared.models import Incident, isoformat
from shared.notify.caller_pool import CallerPool
from shared.notify.calls import LIVE_CALL_STATES, EscalationCalls
from shared.notify.contact_rows import (
    PAGES_ROW,
    ContactPagesRecord,
    contact_partition,
    mirror_call,
    page_entry,
)
from shared.notify.contact_schedule import contact_key, pager_instance_id
from shared.notify.context import NotifyContext
from shared.notify.ports import CallError
from shared.notify.records import CallRecord, call_token_hash
from shared.notify.spoken_pages import announcement_order

log = logging.getLogger("soc_responder.notify")

CALLER_BUSY_RETRY_SECONDS = 30


class ContactPages:
    """Pages per contact number: register, plan, call, free the line, withdraw."""

    def __init__(self, context: NotifyContext, calls: EscalationCalls):
        self.context, self.calls = context, calls
        self.pool = CallerPool(context)

    # -- the pages row ---------------------------------------------------------------------------------------
    def read(self, key: str) -> Versioned[ContactPagesRecord] | None:
        return self.context.rows.read(ContactPagesRecord, contact_partition(key), PAGES_ROW)

    def _edit(self, key: str, change: Callable[[ContactPagesRecord], ContactPagesRecord | None]) -> ContactPagesRecord:
        """Apply ``change`` to the pages row under its ETag (creating the row first if there is none)."""
        return self._edited(key, change)[1]

    def _edited(
        self, key: str, change: Callable[[ContactPagesRecord], ContactPagesRecord | None]
    ) -> tuple[ContactPagesRecord, ContactPagesRecord]:
        """(row before, row after) ``change`` under the row's ETag (the row is created first if there is none)."""
        rows, partition = self.context.rows, contact_partition(key)
        for _ in range(3):
            done = rows.update(ContactPagesRecord, partition, PAGES_ROW, change)
            if done is not None:
                return done.before, done.after
            try:
                rows.create(partition, PAGES_ROW, ContactPagesRecord(channel="contact-pages", contact=key))
            except ConflictError:
                pass
        raise ConflictError(f"pages of contact {key} could not be written")  # pragma: no cover

    def contact_of(self, key: str) -> tuple[str, str] | None:
        """(name, number) of the contact with this key in the registry (partners' and the SOC's), or None."""
        reg = self.context.partners
        for contacts in [*reg.partners, reg.soc]:
            for c in contacts.emergencyContacts:
                if c.phone and contact_key(c.phone) == key:
                    return c.name, c.phone
        return None

    # -- an incident's escalation pages its contacts ---------------------------------------------------------
    def register(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Page the incident to each of its contact numbers; ``{"stop": …}`` when no call can or should be made."""
        ctx, incident_id = self.context, request["incidentId"]
        got = ctx.store.get_incident(incident_id)
        if got is None:
            return {"stop": "incident not found"}
        incident = got[0]
        stop = EscalationCalls._stop_reason(incident, request)
        if stop:
            return {"stop": stop}
        impossible = self.calls._impossible(incident)
        contacts = self.calls._contacts(incident, request)
        if not impossible and not contacts:
            impossible = "no SOC duty contact has a phone number"
        if impossible:
            ctx.record_evidence(
                incident_id,
                "call.skipped",
                f"Call attempt 1 not placed: {impossible}",
                {"attempt": 1, "reason": impossible, "requestKey": request.get("requestKey")},
            )
            return {"stop": impossible, "impossible": True}
        at = isoformat(ctx.clock())
        entry = page_entry(request, ctx.timezone_of(incident), isoformat(incident.sla.received_at), at)
        keys: list[str] = []
        wake: list[str] = []
        added = False
        shown = []
        for name, phone in contacts:
            key = contact_key(phone)
            if key in keys:
                continue
            keys.append(key)

            def add(r: ContactPagesRecord, key: str = key) -> ContactPagesRecord | None:
                held = r.pending.get(incident_id)
                if held and held.get("requestKey") == entry["requestKey"]:
                    return None  # this very page is there already (a replayed activity)
                return r.changed(
                    pending={**r.pending, incident_id: entry}, contact=key, updated_at=at, wake_pending=True
                )

            before, after = self._edited(key, add)
            added = added or before is not after
            if after.wake_pending and not before.wake_pending:
                wake.append(key)
            shown.append({"contact": name, "number": mask_phone(phone), "pager": pager_instance_id(key)})
        if not added:  # the same page again (the escalation checking its page): evidenced once
            return {"contacts": keys, "wake": wake}
        ctx.record_evidence(
            incident_id,
            "escalation.paged",
            f"Paged to {len(keys)} contact number(s): each number has one call schedule announcing all its "
            "incidents, one call at a time",
            {"contacts": shown, "requestKey": request.get("requestKey"), "audience": request.get("audience")},
        )
        return {"contacts": keys, "wake": wake}

    def needs_wake(self, key: str) -> bool:
        """Mark that the number's pager is being woken; False when a wake is already on its way."""
        before, after = self._edited(key, lambda r: None if r.wake_pending else r.changed(wake_pending=True))
        return after.wake_pending and not before.wake_pending

    def wake_failed(self, key: str) -> None:
        """The wake could not be delivered: the next page (or a retry of this one) must raise it again."""
        self._edit(key, lambda r: r.changed(wake_pending=False) if r.wake_pending else None)

    def plan(self, key: str) -> dict[str, Any]:
        """What the pager needs to time its next call: how many pages wait, and whether one is new to it.
        Reading it is the pager taking the pending wake (the next page raises ``Page`` again)."""
        got = self.read(key)
        if got is not None and got.value.wake_pending:
            got = Versioned(self._edit(key, lambda r: r.changed(wake_pending=False) if r.wake_pending else None), None)
        pending = got.value.pending if got else {}
        zones = [e.get("timezone") for e in sorted(pending.values(), key=lambda e: str(e.get("addedAt")))]
        return {
            "pending": len(pending),
            "fresh": sum(1 for e in pending.values() if not int(e.get("attempts") or 0)),
            "timezone": next((z for z in zones if z), "UTC"),
            "liveCall": got.value.live_call if got else None,
        }

    # -- one call of the number -------------------------------------------------------------------------------
    def _sort_out(self, pending: Mapping[str, dict]) -> tuple[list[Incident], dict[str, str], list[str]]:
        """(incidents to announce in order, settled incident → why, exhausted incident ids)."""
        announce: list[Incident] = []
        settled: dict[str, str] = {}
        exhausted: list[str] = []
        for incident_id, entry in pending.items():
            got = self.context.store.get_incident(incident_id)
            why = "incident not found" if got is None else EscalationCalls._stop_reason(got[0], entry)
            if why or got is None:
                settled[incident_id] = why or "incident not found"
            elif int(entry.get("attempts") or 0) >= int(entry.get("maxAttempts") or 12):
                exhausted.append(incident_id)
            else:
                announce.append(got[0])
        return announcement_order(announce), settled, exhausted

    def place_call(self, key: str, number: int, episode: str, scheduled_at: str | None) -> dict[str, Any]:
        """Call ``number`` of the contact's episode ``episode``: one call announcing every incident still waiting.

        Returns ``attempted`` (a call was tried: it counts against the number's schedule), ``live`` (it may
        still be ringing or talking: the line is busy), ``exhausted`` (pages to tell their escalation about), or
        ``retryAfterSeconds`` when every caller number is busy.
        """
        ctx, partition = self.context, contact_partition(key)
        record_id = f"call-{episode}-n{number:03d}"
        replayed = ctx.rows.read(CallRecord, partition, record_id)
        if replayed is not None:  # the activity ran before: never dial again
            return self._replayed(key, record_id, replayed.value)
        got = self.read(key)
        pending = dict(got.value.pending) if got else {}
        announce, settled, exhausted = self._sort_out(pending)
        gone = {**settled, **dict.fromkeys(exhausted, "exhausted")}
        out: dict[str, Any] = {
            "attempted": False,
            "exhausted": [self._exhausted(i, pending[i]) for i in exhausted],
        }
        contact = self.contact_of(key) if announce else None
        if announce and contact is None:  # the number left the registry while pages waited for it
            out["exhausted"] += [
                self._exhausted(i.id, pending[i.id], "number no longer in the registry") for i in announce
            ]
            gone.update({i.id: "number removed" for i in announce})
            announce = []
        disabled = self.calls._impossible(announce[0]) if announce else None
        if disabled and "no emergency contact" not in disabled:  # calls were disabled while pages waited
            for incident in announce:
                ctx.record_evidence(
                    incident.id, "call.skipped", f"Call not placed: {disabled}", {"reason": disabled, "pager": key}
                )
            out["exhausted"] += [self._exhausted(i.id, pending[i.id], disabled) for i in announce]
            gone.update({i.id: "calls disabled" for i in announce})
            announce = []
        if not announce or contact is None:
            self._drop(key, pending, gone)
            return out
        name, phone = contact
        caller_id = self.pool.acquire(f"{partition}/{record_id}", key)
        if caller_id is None:
            self._drop(key, pending, gone)
            return {**out, "retryAfterSeconds": CALLER_BUSY_RETRY_SECONDS}
        ids = [i.id for i in announce]
        token, at = secrets.token_urlsafe(32), ctx.clock()
        row = CallRecord.parse(
            {
                "channel": "call",
                "kind": "contact-call",
                "status": "placing",
                "incidentId": ids[0],
                "escalationId": pager_instance_id(key),
                "requestKey": f"contact-{episode}",
                "attempt": number,
                "contactName": name,
                "recipient": phone,
                "target": phone,
                "tokenHash": call_token_hash(token),
                "scheduledAt": scheduled_at,
                "createdAt": isoformat(at),
                "updatedAt": isoformat(at),
                "prompts": 0,
                "partnerContact": any(
                    pending[i].get("audience") != "soc" and inc.partner_id for i, inc in zip(ids, announce, strict=True)
                ),
                "announced": ids,
                "contactKey": key,
                "callerId": caller_id,
            }
        )
        try:
            etag = ctx.rows.create(partition, record_id, row)
        except ConflictError:  # a concurrent run of this very activity claimed it first
            return self._replayed(key, record_id, row)
        stamp = isoformat(at)

        def count(r: ContactPagesRecord) -> ContactPagesRecord:
            kept = {}
            for incident_id, entry in r.pending.items():
                was = pending.get(incident_id) or {}
                if incident_id in gone and entry.get("requestKey") == was.get("requestKey"):
                    continue
                if incident_id in ids and entry.get("requestKey") == was.get("requestKey"):
                    entry = {**entry, "attempts": int(entry.get("attempts") or 0) + 1}
                kept[incident_id] = entry
            return r.changed(pending=kept, live_call=record_id, updated_at=stamp)

        after = self._edit(key, count)
        attempts = {i: int((after.pending.get(i) or {}).get("attempts") or 1) for i in ids}
        callback = (
            f"{ctx.settings.callback_base_url}/api/callbacks/acs?contact={key}"
            f"&incidentId={quote(ids[0], safe='')}&callId={quote(record_id, safe='')}&token={token}"
        )
        base = {
            "contact": name,
            "number": mask_phone(phone),
            "recordId": record_id,
            "scheduledAt": scheduled_at,
            "pager": pager_instance_id(key),
            "contactCall": number,
            "announces": len(ids),
            "incidents": ids[:50],
            "callerId": mask_phone(caller_id),
        }
        phone_caller = self.calls.caller
        if phone_caller is None:  # pragma: no cover - ruled out above (calls disabled)
            raise CallError("calls disabled: ACS_ENDPOINT or ACS_CALLER_ID is not set")
        try:
            placed = phone_caller.place_call(phone, callback, record_id, caller_id)
        except CallError as exc:
            failed_at, error, message = ctx.clock(), exc.evidence(), str(exc)[:200]
            self.pool.release(caller_id, f"{partition}/{record_id}")
            self._evidence_each(
                ids,
                lambda i: ctx.draft(
                    "call.failed",
                    f"Call attempt {attempts[i]} to {name} ({mask_phone(phone)}) FAILED: {message}",
                    {**base, "attempt": attempts[i], "error": error},
                    at=failed_at,
                ),
            )
            failed = ctx.rows.update(
                CallRecord,
                partition,
                record_id,
                lambda r: r.changed(
                    status="failed", error=error, updated_at=isoformat(failed_at), ended_at=isoformat(failed_at)
                ),
            )
            if failed is not None:
                mirror_call(ctx, failed.after, record_id)
            self._clear_line(key, record_id)
            return {**out, "attempted": True, "live": False, "recordId": record_id, "announced": len(ids)}
        placed_at = ctx.clock()
        what = f"{name} ({mask_phone(phone)})"
        self._evidence_each(
            ids,
            lambda i: [
                ctx.draft(
                    "call.placed",
                    f"Call attempt {attempts[i]} to {what} placed"
                    + (f", announcing {len(ids)} incidents" if len(ids) > 1 else ""),
                    {**base, "attempt": attempts[i], "callConnectionId": placed.call_connection_id},
                    at=placed_at,
                ),
                *[d for d in [ctx.first_response(i, placed_at, f"call attempt {attempts[i]}")] if d],
            ],
        )

        def bind(r: CallRecord) -> CallRecord:
            return r.changed(
                call_connection_id=r.call_connection_id or placed.call_connection_id,
                correlation_id=r.correlation_id or placed.correlation_id,
                placed_at=isoformat(placed_at),
                updated_at=isoformat(placed_at),
                **({"status": "placed"} if r.status == "placing" else {}),
            )

        done = ctx.rows.update(CallRecord, partition, record_id, bind, first=Versioned(row, etag))
        if done is not None:
            mirror_call(ctx, done.after, record_id)
        live = done is None or done.after.status in LIVE_CALL_STATES
        return {**out, "attempted": True, "live": live, "recordId": record_id, "announced": len(ids)}

    def _evidence_each(self, ids: list[str], drafts: Callable[[str], EventDraft | list[EventDraft]]) -> None:
        for incident_id in ids:
            made = drafts(incident_id)
            self.context.store.append_events(incident_id, made if isinstance(made, list) else [made])

    def _exhausted(self, incident_id: str, entry: Mapping[str, Any], why: str | None = None) -> dict[str, Any]:
        return {
            "incidentId": incident_id,
            "escalationId": entry.get("escalationId"),
            "attempts": int(entry.get("attempts") or 0),
            "reason": why or f"announced in {int(entry.get('attempts') or 0)} call(s) without acknowledgement",
        }

    def _drop(self, key: str, seen: Mapping[str, dict], gone: Mapping[str, str]) -> None:
        """Remove settled and exhausted pages (unless the incident was paged again meanwhile)."""
        if not gone:
            return

        def drop(r: ContactPagesRecord) -> ContactPagesRecord | None:
            kept = {
                i: e
                for i, e in r.pending.items()
                if not (i in gone and e.get("requestKey") == (seen.get(i) or {}).get("requestKey"))
            }
            return None if len(kept) == len(r.pending) else r.changed(pending=kept)

        self._edit(key, drop)

    def _replayed(self, key: str, record_id: str, row: CallRecord) -> dict[str, Any]:
        """The call row exists (a replay): report it; if its outcome was never recorded, evidence that once."""
        partition = contact_partition(key)

        def mark(r: CallRecord) -> CallRecord | None:
            if r.status != "placing" or r.outcome_unknown:
                return None
            return r.changed(outcome_unknown=True)

        done = self.context.rows.update(CallRecord, partition, record_id, mark)
        current = done.after if done else row
        if current.status not in LIVE_CALL_STATES:  # not (or no longer) on the line: its caller slot is free
            self.pool.release(current.caller_id, f"{partition}/{record_id}")
        if done is not None and done.written:
            for incident_id in current.announced or []:
                self.context.record_evidence(
                    incident_id,
                    "call.outcome-unknown",
                    f"Call to {current.contact_name}: the host stopped while the call was being placed; "
                    "it was not dialled again",
                    {"recordId": record_id, "number": mask_phone(current.target), "pager": pager_instance_id(key)},
                )
        return {
            "attempted": True,
            "live": current.status in LIVE_CALL_STATES,
            "recordId": record_id,
            "announced": len(current.announced or []),
            "duplicate": True,
            "exhausted": [],
        }

    # -- the line is free again -------------------------------------------------------------------------------
    def _clear_line(self, key: str, record_id: str) -> None:
        self._edit(key, lambda r: r.changed(live_call=None) if r.live_call == record_id else None)

    def release_line(self, key: str, record_id: str, timed_out: bool = False) -> dict[str, Any]:
        """The call ended (ACS said so), or it held the line longer than a call can (``timed_out``: hang up)."""
        ctx, partition = self.context, contact_partition(key)
        got = ctx.rows.read(CallRecord, partition, record_id)
        hung_up = False
        if got is not None:
            row = got.value
            if timed_out and row.status in LIVE_CALL_STATES:
                if row.call_connection_id and self.calls.caller is not None:
                    try:
                        self.calls.caller.hang_up(row.call_connection_id)
                        hung_up = True
                    except CallError as exc:
                        log.warning("could not hang up call %s of pager %s: %s", row.call_connection_id, key, exc)
                stamp = isoformat(ctx.clock())
                done = ctx.rows.set_status(
                    CallRecord,
                    partition,
                    record_id,
                    "timed-out",
                    stamp,
                    LIVE_CALL_STATES,
                    ended_at=stamp,
                    outcome="timed-out",
                )
                if done is not None and done.written:
                    mirror_call(ctx, done.after, record_id)
                    for incident_id in row.announced or []:
                        ctx.record_evidence(
                            incident_id,
                            "call.ended",
                            f"Call to {row.contact_name} ({mask_phone(row.target)}) ended: no end of call from ACS "
                            "within the longest call; hung up so the number can be called again",
                            {"recordId": record_id, "outcome": "timed-out", "pager": pager_instance_id(key)},
                        )
            self.pool.release(row.caller_id, f"{partition}/{record_id}")
        self._clear_line(key, record_id)
        return {"recordId": record_id, "hungUp": hung_up}

    # -- an escalation ended (acknowledged or stopped): its pages go --------------------------------------------
    def withdraw(self, incident_id: str, request_key: str | None, keys: list[str]) -> dict[str, Any]:
        """Remove the incident's pages; hang up a call in progress that announced nothing else still waiting."""
        attempts, hung_up = 0, 0
        for key in keys:
            got = self.read(key)
            entry = (got.value.pending.get(incident_id) if got else None) or {}
            attempts = max(attempts, int(entry.get("attempts") or 0))

            def drop(r: ContactPagesRecord) -> ContactPagesRecord | None:
                held = r.pending.get(incident_id)
                if not held or (request_key and held.get("requestKey") != request_key):
                    return None
                return r.changed(pending={i: e for i, e in r.pending.items() if i != incident_id})

            after = self._edit(key, drop)
            if after.live_call and self.calls.caller is not None:
                live = self.context.rows.read(CallRecord, contact_partition(key), after.live_call)
                call = live.value if live else None
                if (
                    call is not None
                    and call.status in ("placing", "placed", "prompting", "connected")
                    and call.call_connection_id
                    and not set(call.announced or []) & set(after.pending)
                ):
                    try:
                        self.calls.caller.hang_up(call.call_connection_id)
                        hung_up += 1
                    except CallError as exc:
                        log.warning("could not hang up call %s: %s", call.call_connection_id, exc)
        return {"attempts": attempts, "hungUp": hung_up}
