"""Which Sentinel incidents and Defender for Cloud alerts an incident speaks for. Pure.

The alerts' evidence carries their source refs (``shared.sources``: the ARM ids the
intake parsers found); the incident's timeline is the one durable record of what to
write back to. An incident from a firewall (generic alert) has no target at all
unless a Sentinel incident or Defender alert joins it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.sources import (
    DEFENDER_MISSING,
    DEFENDER_REF,
    SENTINEL_REF,
    defender_alert_id,
    describe,
    sentinel_incident_id,
)

__all__ = ["Targets", "describe", "find_targets", "target_key"]


def target_key(resource_id: str) -> str:
    """Case-insensitive key of a target (ARM ids compare without case)."""
    return resource_id.lower()


@dataclass
class Targets:
    """The write-back targets found in an incident's timeline."""

    sentinel: list[str] = field(default_factory=list)
    defender: list[str] = field(default_factory=list)
    # Defender alerts that came in without a usable ARM id: (alert key, why).
    unaddressable: list[tuple[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.sentinel or self.defender or self.unaddressable)

    def all(self) -> list[str]:
        return [*self.sentinel, *self.defender]


def _add(found: list[str], rid: str | None) -> None:
    if rid and target_key(rid) not in {target_key(x) for x in found}:
        found.append(rid)


def find_targets(events: Iterable[Any]) -> Targets:
    """Targets named by the incident's evidence: alerts' refs (received, grouped, delivered again) and
    Sentinel updates. Accepts ``EvidenceEvent``s (or anything with ``event_type`` and ``data``)."""
    out = Targets()
    missing: dict[str, str] = {}
    addressed: set[str] = set()
    for ev in events:
        data = getattr(ev, "data", None) or {}
        etype = getattr(ev, "event_type", "")
        refs: Mapping[str, Any] = {}
        key = None
        if etype in ("alert.received", "alert.grouped") and isinstance(data.get("alert"), dict):
            refs = data["alert"].get("refs") or {}
            key = data["alert"].get("key")
        elif etype == "alert.duplicate" or etype.startswith("sentinel."):
            refs = data.get("refs") or {}
            key = data.get("alertKey")
        if not isinstance(refs, Mapping):
            continue
        _add(out.sentinel, sentinel_incident_id(refs.get(SENTINEL_REF)))
        defender = defender_alert_id(refs.get(DEFENDER_REF))
        _add(out.defender, defender)
        if defender and key:
            addressed.add(key)
        elif refs.get(DEFENDER_MISSING) and key and key not in missing:
            missing[key] = str(refs[DEFENDER_MISSING])[:300]
    out.unaddressable = sorted((k, why) for k, why in missing.items() if k not in addressed)
    return out
