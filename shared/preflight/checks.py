"""Preflight's pure parts: the rights containment needs on a subscription, and whether they are granted.

``Microsoft.Authorization/permissions`` answers a list of ``{actions, notActions}`` entries (one per role
assignment that applies); an action is granted when some entry's ``actions`` match it and the *same*
entry's ``notActions`` do not (Azure's own rule). Both may hold ``*`` wildcards and compare
case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared.preflight.ports import Permission

GRAPH_TOKEN = "graph-token"
GRAPH_READ = "graph-read"
ARM_PERMISSIONS = "arm-permissions"
SENTINEL_WORKSPACE = "sentinel-workspace"

#: What isolating a VM needs on the VM's subscription: PUT the NIC, and join the quarantine NSG to it.
CONTAINMENT_ACTIONS = (
    "Microsoft.Network/networkInterfaces/write",
    "Microsoft.Network/networkSecurityGroups/join/action",
)


@dataclass(frozen=True)
class Check:
    """One line of a preflight report: ``detail`` says what was found, or what to fix."""

    check: str
    ok: bool
    detail: str

    def wire(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class PreflightReport:
    partner: str
    checks: tuple[Check, ...]
    took_ms: int = 0

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def wire(self) -> dict[str, Any]:
        return {"partner": self.partner, "ready": self.ready, "checks": [c.wire() for c in self.checks]}


@cache
def _pattern(action: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in action.split("*")) + "$", re.IGNORECASE)


def _matches(patterns: Iterable[str], action: str) -> bool:
    return any(_pattern(p.strip()).match(action) for p in patterns if p)


def granted(permissions: Iterable[Permission], action: str) -> bool:
    """True if ``action`` is allowed by some permission entry (its actions match, its notActions do not)."""
    return any(_matches(p.actions, action) and not _matches(p.not_actions, action) for p in permissions)


def missing_actions(permissions: Iterable[Permission], needed: Iterable[str] = CONTAINMENT_ACTIONS) -> list[str]:
    entries = list(permissions)
    return [a for a in needed if not granted(entries, a)]
