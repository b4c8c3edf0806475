"""Operator requests for containment (docs/spec/operator-api.md): approve/reject and release bodies, validated.

Errors name the field and never echo the value sent (it may be anything).
"""

from __future__ import annotations

import re
from typing import Any, Literal

import pydantic

from shared.errors import ValidationError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class _OperatorRequest(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", str_strip_whitespace=True)

    actor: str = pydantic.Field(min_length=1, max_length=320, description="the person acting (UPN or email)")

    @pydantic.field_validator("actor")
    @classmethod
    def _printable(cls, value: str) -> str:
        if _CONTROL.search(value):
            raise ValueError("control characters are not allowed")
        return value


class ApprovalRequest(_OperatorRequest):
    """``{"actor", "decision": "approve"|"reject", "reason"?}``"""

    decision: Literal["approve", "reject"]
    reason: str | None = pydantic.Field(default=None, max_length=2000)


class ReleaseRequest(_OperatorRequest):
    """``{"actor", "reason"}``"""

    reason: str = pydantic.Field(min_length=1, max_length=2000)


def parse_request(model: type[pydantic.BaseModel], payload: Any) -> Any:
    """``payload`` validated as ``model``; ValidationError (→ 400) naming each bad field."""
    if not isinstance(payload, dict):
        raise ValidationError(
            "request body must be a JSON object", [{"field": "body", "message": "expected an object"}]
        )
    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as exc:
        details = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors(include_input=False, include_url=False)
        ]
        fields = ", ".join(dict.fromkeys(d["field"] for d in details))
        raise ValidationError(f"invalid request body: {fields}", details) from None
