"""Issue 14: one decision on the held actions of many incidents (``POST /api/approvals``, docs/spec/operator-api.md).

A storm that trips the blast-radius breaker holds dozens of P1 containments; the SOC's duty manager decides them
together. Each incident is still decided by the per-incident use case (``shared/containment/approval.py``), so
every action keeps its own ``containment.approved`` / ``containment.rejected`` evidence on its incident's
timeline, under the same approval rules (a held row moves once, under its ETag; a repeat converges).
"""

from __future__ import annotations

import re

import pydantic

from shared.containment.requests import ApprovalRequest

MAX_INCIDENTS = 200  # one storm's worth; larger batches are split by the caller
_INCIDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")  # the route-id rule of shared/access.py


class BulkApprovalRequest(ApprovalRequest):
    """``{"actor", "decision": "approve"|"reject", "reason"?, "incidentIds": [...]}``"""

    incident_ids: list[str] = pydantic.Field(alias="incidentIds", min_length=1, max_length=MAX_INCIDENTS)

    @pydantic.field_validator("incident_ids")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        if any(not _INCIDENT_ID.fullmatch(i) for i in value):
            raise ValueError("incident ids are letters, digits, '-', '_', '.', ':' (at most 200 characters)")
        return list(dict.fromkeys(value))  # a repeated id is decided once


def summary(results: list[dict]) -> dict:
    """Counts over the per-incident results of one bulk decision."""
    return {
        "incidents": len(results),
        "decided": sum(1 for r in results if "error" not in r),
        "notFound": sum(1 for r in results if r.get("error") == "incident not found"),
        "actions": sum(len(r.get("actions") or []) for r in results),
        "executions": sum(len(r.get("executions") or []) for r in results),
    }
