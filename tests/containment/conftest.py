"""Containment tests: the functional ``app`` harness plus seeding helpers for VMs, NICs and accounts."""
from __future__ import annotations

from tests.functional.conftest import app, sample  # noqa: F401 — the lead's harness, reused as is
