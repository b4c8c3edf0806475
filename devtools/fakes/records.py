"""What the Azure fake exchanges: requests it recorded, answers it gives, faults injected into them."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


class Headers(dict):
    """A dict of header name -> value whose look-ups ignore case."""

    def __init__(self, items: Iterable[tuple[str, str]] | Mapping[str, str] = ()):
        super().__init__()
        self._names: dict[str, str] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            self[key] = value

    def __setitem__(self, key: str, value: str) -> None:
        old = self._names.get(key.lower())
        if old is not None and old != key:
            super().__delitem__(old)
        self._names[key.lower()] = key
        super().__setitem__(key, value)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(self._names[key.lower()])

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._names

    def get(self, key: str, default: Any = None) -> Any:
        name = self._names.get(key.lower())
        return default if name is None else super().__getitem__(name)


@dataclass
class RecordedRequest:
    """One request the fake received (the token endpoint's included, api="token")."""

    method: str
    path: str  # percent-decoded path, without the query
    raw_path: str  # the request target as sent
    query: dict[str, str]
    headers: Headers
    body: Any  # parsed JSON, else text, else None
    raw_body: bytes
    timestamp: float
    api: str  # "arm" | "graph" | "logs" | "acs" | "token" | "keyvault" | "teams" | "unknown"
    status: int | None = None  # None: no answer (dropped, or aborted by reset/stop)
    token_resource: str | None = None  # audience of the bearer token it carried, if issued here
    fault: bool = False  # an injected fault answered (or delayed) it
    token_tenant: str | None = None  # issue 11: tenant of that token (None: the managed identity's own)

    def header(self, name: str, default: Any = None) -> Any:
        return self.headers.get(name, default)

    @property
    def json(self) -> Any:
        return self.body if isinstance(self.body, (dict, list)) else None

    def __repr__(self) -> str:  # short, for assertion messages
        return f"<{self.method} {self.path} api={self.api} status={self.status}>"


@dataclass
class FakeResponse:
    """What the fake answers: dict/list bodies are sent as JSON, str as text, bytes raw."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _error_code_for(status: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "AuthorizationFailed",
        404: "NotFound",
        408: "RequestTimeout",
        409: "Conflict",
        412: "PreconditionFailed",
        429: "TooManyRequests",
        500: "InternalServerError",
        502: "BadGateway",
        503: "ServiceUnavailable",
        504: "GatewayTimeout",
    }.get(status, f"Status{status}")


@dataclass
class Fault:
    """An injected fault; see ``AzureFake.inject``."""

    method: str | None
    pattern: re.Pattern[str]
    status: int | None
    headers: dict[str, str]
    body: Any
    times: int
    delay_seconds: float
    drop_connection: bool
    api: str | None
    hits: int = 0

    @property
    def remaining(self) -> int:
        return max(0, self.times - self.hits)

    def matches(self, req: RecordedRequest) -> bool:
        if self.remaining <= 0:
            return False
        if self.method not in (None, "*") and self.method.upper() != req.method:
            return False
        if self.api is not None and self.api != req.api:
            return False
        return bool(self.pattern.search(req.path))

    def response(self) -> FakeResponse:
        assert self.status is not None
        body = self.body
        if body is None and self.status >= 400:
            body = {"error": {"code": _error_code_for(self.status), "message": f"Injected fault: HTTP {self.status}."}}
        return FakeResponse(self.status, copy.deepcopy(body), dict(self.headers))


def now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def parse_body(raw: bytes) -> Any:
    """A request body as JSON, else text, else None."""
    if not raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def coerce(result: Any) -> FakeResponse:
    """A route handler's answer (FakeResponse, (status, body) tuple or a JSON body) as a FakeResponse."""
    if isinstance(result, FakeResponse):
        return result
    if isinstance(result, tuple):
        return FakeResponse(*result)
    return FakeResponse(200, result)
