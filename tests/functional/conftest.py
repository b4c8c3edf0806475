"""The app under test: real function handlers in-process, Azurite, the HTTPS fake of Azure.

Fixture ``app`` gives an ``AppHarness``: a fresh ``function_app.build_app()``
run by ``LocalFunctionsRuntime`` (durable client bindings pointed at the local
durable host), with settings pointing every Azure SDK client at the fake and
the evidence store at clean Azurite tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
WORKSPACE_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"

APP_SETTINGS = {
    "PARTNERS_FILE": str(ROOT / "config/partners.json"),
    "SCORING_RULES_FILE": str(ROOT / "config/scoring-rules.json"),
    "RESPONSE_MODE": "dry-run",
    "MAIL_SENDER": "soc-responder@soc.example",
    "ACS_CALLER_ID": "+15555550000",
    "CALLBACK_BASE_URL": "https://soc-responder.example",
    "LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE_ID,
    "GROUPING_WINDOW_MINUTES": "60",
}


def sample(name: str) -> Any:
    """A copy of a sample payload (tests may mutate it)."""
    return json.loads((SAMPLES / name).read_text())


@dataclass
class Response:
    status: int
    text: str
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


class AppHarness:
    """The running app: call routes and timers, inspect evidence, the fake and the durable host."""

    def __init__(self, runtime, fake, monkeypatch: pytest.MonkeyPatch):
        self.runtime, self.fake, self._monkeypatch = runtime, fake, monkeypatch

    @property
    def durable(self):
        return self.runtime.durable

    @property
    def context(self):
        from shared import runtime

        return runtime.context()

    @property
    def store(self):
        return self.context.store

    def configure(self, **settings: str | None) -> None:
        """Change app settings (None removes one) and drop cached configuration and clients."""
        from shared import runtime

        for name, value in settings.items():
            if value is None:
                self._monkeypatch.delenv(name, raising=False)
            else:
                self._monkeypatch.setenv(name, str(value))
        runtime.reset()

    def request(
        self, method: str, path: str, body: Any = None, headers: dict | None = None, params: dict | None = None
    ) -> Response:
        resp = self.runtime.http(method, path, body=body, headers=headers, params=params)
        return Response(resp.status_code, resp.get_body().decode("utf-8"), dict(resp.headers))

    def post(self, path: str, body: Any = None, headers: dict | None = None) -> Response:
        return self.request("POST", path, body, headers)

    def get(self, path: str, params: dict | None = None) -> Response:
        return self.request("GET", path, params=params)

    def timeline(self, incident_id: str) -> list[str]:
        """Event types of an incident's timeline, in order."""
        return [e.event_type for e in self.store.list_events(incident_id)]


@pytest.fixture
def app(azure_env, fake, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppHarness]:
    from devtools.functions_runtime import LocalFunctionsRuntime
    from function_app import build_app
    from shared import runtime
    from shared.adapters.table_store import TableEvidenceStore

    for name, value in APP_SETTINGS.items():
        monkeypatch.setenv(name, value)
    TableEvidenceStore._ensured.clear()  # azure_env dropped every table
    runtime.reset()
    rt = LocalFunctionsRuntime(build_app(), now=datetime.now(UTC), host_json=str(ROOT / "host.json"))
    try:
        yield AppHarness(rt, fake, monkeypatch)
    finally:
        rt.close()
        runtime.reset()
