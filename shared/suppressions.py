"""Issue 14: maintenance windows — time-boxed suppressions per partner (docs/spec/notification.md, storm control).

A partner's patch night makes every EDR on 300 hosts alert at once. The SOC sets a window with
``POST /api/partners/{id}/suppressions`` (role Approver): until when (mandatory, at most 30 days ahead), why, and
what it covers — alert types (``fnmatch`` patterns, case-insensitive), hosts (names or Azure resource ids) and
source IPs. Every filter given must match (a window with none covers every alert of the partner); within one
filter any value matches. A matching alert is still recorded — an incident of its own, ``resolved``, with an
``incident.recorded-only`` event naming the window — and starts nothing (no runbook, containment, email or
call). A window ends by itself at ``until`` (ingest compares with the clock); the expiry sweep (a timer) marks it
expired and evidences that. Creation and expiry are events on the partner's suppression timeline
(``soc-suppressions-{partner}``, a hash chain like an incident's).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pydantic

from shared.errors import ConcurrencyError, ConflictError, ValidationError
from shared.evidence import EventDraft
from shared.models import ActorType, Alert, EntityKind, Phase, isoformat
from shared.store import EvidenceStore

__all__ = ["MAX_WINDOW", "Suppression", "SuppressionRequest", "SuppressionService", "matching", "timeline_id"]

MAX_WINDOW = timedelta(days=30)
TABLE = "IngestState"  # rows PK ``suppressions~{partner}``, RK the window id
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CACHE_SECONDS = 15.0  # a new window applies within this long on every instance; expiry is exact (the clock)


def timeline_id(partner_id: str) -> str:
    return f"soc-suppressions-{partner_id}"


def _partition(partner_id: str) -> str:
    return f"suppressions~{partner_id}"


class SuppressionRequest(pydantic.BaseModel):
    """``{"actor", "reason", "until", "alertTypes"?, "hosts"?, "sourceIps"?}``"""

    model_config = pydantic.ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    actor: str = pydantic.Field(min_length=1, max_length=320)
    reason: str = pydantic.Field(min_length=1, max_length=2000)
    until: datetime
    alert_types: list[pydantic.constr(min_length=1, max_length=200)] = pydantic.Field(  # type: ignore[valid-type]
        default_factory=list, alias="alertTypes", max_length=50
    )
    hosts: list[pydantic.constr(min_length=1, max_length=400)] = pydantic.Field(  # type: ignore[valid-type]
        default_factory=list, max_length=500
    )
    source_ips: list[pydantic.constr(min_length=1, max_length=64)] = pydantic.Field(  # type: ignore[valid-type]
        default_factory=list, alias="sourceIps", max_length=500
    )

    @pydantic.field_validator("actor", "reason")
    @classmethod
    def _printable(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        return value

    @pydantic.field_validator("until")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("an ISO 8601 time with its UTC offset (e.g. 2026-12-03T06:00:00Z)")
        return value

    @pydantic.field_validator("source_ips")
    @classmethod
    def _ips(cls, value: list[str]) -> list[str]:
        import ipaddress

        for v in value:
            try:
                ipaddress.ip_network(v, strict=False)
            except ValueError:
                raise ValueError("IP addresses or CIDR ranges") from None
        return value


@dataclass(frozen=True)
class Suppression:
    """One maintenance window of a partner, as stored (``IngestState`` row, JSON document)."""

    id: str
    partner_id: str
    reason: str
    created_by: str
    created_at: str  # ISO 8601 UTC
    until: str  # ISO 8601 UTC
    alert_types: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    source_ips: tuple[str, ...] = ()
    status: str = "active"  # active | expired (the sweep's mark; ``until`` alone decides matching)

    def active_at(self, now: datetime) -> bool:
        return now < datetime.fromisoformat(self.until.replace("Z", "+00:00"))

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "partnerId": self.partner_id,
            "reason": self.reason,
            "createdBy": self.created_by,
            "createdAt": self.created_at,
            "until": self.until,
            "alertTypes": list(self.alert_types),
            "hosts": list(self.hosts),
            "sourceIps": list(self.source_ips),
            "status": self.status,
        }

    @classmethod
    def parse(cls, row: dict[str, Any]) -> Suppression:
        return cls(
            id=str(row["id"]),
            partner_id=str(row["partnerId"]),
            reason=str(row.get("reason") or ""),
            created_by=str(row.get("createdBy") or ""),
            created_at=str(row.get("createdAt") or ""),
            until=str(row["until"]),
            alert_types=tuple(row.get("alertTypes") or ()),
            hosts=tuple(row.get("hosts") or ()),
            source_ips=tuple(row.get("sourceIps") or ()),
            status=str(row.get("status") or "active"),
        )

    # -- matching (pure) -------------------------------------------------------------------------------
    def covers(self, alert: Alert) -> bool:
        """Every filter given matches the alert (a window without filters covers every alert)."""
        if self.alert_types:
            kinds = [t.strip().lower() for t in (alert.alert_type or "").split(",") if t.strip()]
            if not any(fnmatch.fnmatchcase(k, p.lower()) for k in kinds for p in self.alert_types):
                return False
        if self.hosts and not _hosts_match(alert, self.hosts):
            return False
        return not self.source_ips or _ips_match(alert, self.source_ips)


def _hosts_match(alert: Alert, hosts: tuple[str, ...]) -> bool:
    wanted = {h.strip().lower() for h in hosts}
    for e in alert.entities:
        if e.kind not in (EntityKind.HOST, EntityKind.AZURE_RESOURCE, EntityKind.NETWORK_DEVICE):
            continue
        rid = (e.azure_resource_id or "").lower()
        names = {(e.name or "").lower(), rid, rid.rsplit("/", 1)[-1]} - {""}
        if names & wanted:
            return True
    return False


def _ips_match(alert: Alert, ranges: tuple[str, ...]) -> bool:
    import ipaddress

    networks = [ipaddress.ip_network(r, strict=False) for r in ranges]
    for e in alert.entities:
        if e.kind != EntityKind.IP or not e.address:
            continue
        try:
            addr = ipaddress.ip_address(e.address)
        except ValueError:
            continue
        if any(addr.version == n.version and addr in n for n in networks):
            return True
    return False


def matching(alert: Alert, windows: list[Suppression], now: datetime) -> Suppression | None:
    """The first window active at ``now`` that covers the alert (pure)."""
    return next((w for w in windows if w.active_at(now) and w.covers(alert)), None)


class SuppressionService:
    """Creates, lists and expires maintenance windows; answers ingest's "is this alert suppressed?"."""

    def __init__(self, store: EvidenceStore, clock: Callable[[], datetime]):
        self.store, self.clock = store, clock
        self._cache: dict[str, tuple[float, list[Suppression]]] = {}
        self._lock = threading.Lock()

    def create(self, partner_id: str, request: SuppressionRequest) -> Suppression:
        now = self.clock()
        until = request.until.astimezone(now.tzinfo)
        if until <= now:
            raise ValidationError(
                "the window has already ended", [{"field": "until", "message": "must be in the future"}]
            )
        if until - now > MAX_WINDOW:
            raise ValidationError(
                "a maintenance window lasts at most 30 days",
                [{"field": "until", "message": f"at most {MAX_WINDOW.days} days from now"}],
            )
        digest = hashlib.sha256(f"{partner_id}|{request.actor}|{isoformat(now)}|{request.reason}".encode()).hexdigest()
        window = Suppression(
            id="sup-" + digest[:12],
            partner_id=partner_id,
            reason=request.reason,
            created_by=request.actor,
            created_at=isoformat(now),
            until=isoformat(until),
            alert_types=tuple(dict.fromkeys(request.alert_types)),
            hosts=tuple(dict.fromkeys(request.hosts)),
            source_ips=tuple(dict.fromkeys(request.source_ips)),
        )
        # Evidence first: a window that exists is always evidenced (a failed row write leaves an event only).
        self._evidence(
            partner_id,
            "suppression.created",
            f"Maintenance window {window.id} set by {request.actor} until {window.until}: {request.reason}",
            window.wire(),
            now,
            actor=request.actor,
        )
        try:
            self.store.put_record(TABLE, _partition(partner_id), window.id, window.wire(), create_only=True)
        except ConflictError:
            pass  # the same request twice in one millisecond: one window
        with self._lock:
            self._cache.pop(partner_id, None)
        return window

    def windows(self, partner_id: str) -> list[Suppression]:
        rows = self.store.list_records(TABLE, _partition(partner_id))
        return sorted((Suppression.parse(r) for r in rows), key=lambda w: w.created_at)

    def active(self, partner_id: str) -> list[Suppression]:
        """The partner's windows not yet ended (cached briefly: ingest asks for every alert)."""
        now_mono = time.monotonic()
        with self._lock:
            hit = self._cache.get(partner_id)
        if hit and now_mono - hit[0] < _CACHE_SECONDS:
            windows = hit[1]
        else:
            windows = self.windows(partner_id)
            with self._lock:
                self._cache[partner_id] = (now_mono, windows)
        now = self.clock()
        return [w for w in windows if w.active_at(now)]

    def suppressing(self, partner_id: str | None, alert: Alert) -> Suppression | None:
        """The window that suppresses this alert now, or None."""
        if not partner_id:
            return None
        return matching(alert, self.active(partner_id), self.clock())

    def expire(self, partner_ids: list[str]) -> list[Suppression]:
        """Mark ended windows expired, with evidence (each once: the mark is an ETag-guarded write)."""
        now = self.clock()
        expired: list[Suppression] = []
        for partner_id in partner_ids:
            for window in self.windows(partner_id):
                if window.status != "active" or window.active_at(now):
                    continue
                got = self.store.get_record(TABLE, _partition(partner_id), window.id)
                if got is None:
                    continue
                ended = dataclasses.replace(Suppression.parse(got[0]), status="expired")
                try:
                    self.store.put_record(TABLE, _partition(partner_id), window.id, ended.wire(), etag=got[1])
                except ConcurrencyError:
                    continue  # another instance marked it
                self._evidence(
                    partner_id,
                    "suppression.expired",
                    f"Maintenance window {window.id} ended at {window.until}",
                    ended.wire(),
                    now,
                )
                expired.append(ended)
            with self._lock:
                self._cache.pop(partner_id, None)
        return expired

    def _evidence(
        self, partner_id: str, event_type: str, summary: str, data: dict, at: datetime, actor: str | None = None
    ) -> None:
        self.store.append_events(
            timeline_id(partner_id),
            [
                EventDraft(
                    event_type=event_type,
                    phase=Phase.TRIAGE,
                    occurred_at=at,
                    summary=summary,
                    data=data,
                    **({"actor": actor, "actor_type": ActorType.ANALYST} if actor else {}),
                )
            ],
        )
