"""Counts what the evidence store sends to Table Storage (issue 14: ingest round trips).

A raw-request hook on the real azure-data-tables client (azure-core's ``CustomHookPolicy``, after the retry
policy): every HTTP request the SDK sends is recorded — a retried request counts again, a conflict's
follow-up read counts, nothing is mocked. Used by the round-trip test (tests/storm) and benchmarks/storm.py.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any
from urllib.parse import unquote, urlparse

_TABLE = re.compile(r"^/[^/]+/([A-Za-z][A-Za-z0-9]*)")


def _table_of(url: str) -> str:
    path = unquote(urlparse(url).path)
    match = _TABLE.match(path)
    return match.group(1) if match else path


def _label(http_request: Any) -> str:
    """``GET Incidents``, ``POST AlertIndex`` …; a transaction as ``$batch <table>``."""
    url = http_request.url
    if urlparse(url).path.endswith("$batch"):
        parts = list((http_request.multipart_mixed_info or [()])[0])
        while parts and getattr(parts[0], "multipart_mixed_info", None):  # the changeset inside the batch
            parts = list(parts[0].multipart_mixed_info[0])
        return f"$batch {_table_of(parts[0].url) if parts else '?'}"
    return f"{http_request.method} {_table_of(url)}"


class TableRequests:
    """The requests seen, in order, as labels (``GET Incidents``, ``$batch EntityIndex`` …)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: list[str] = []

    def __call__(self, request: Any) -> None:  # azure-core PipelineRequest
        label = _label(request.http_request)
        with self._lock:
            self._sent.append(label)

    def take(self) -> list[str]:
        """The requests since the last ``take`` (and forget them)."""
        with self._lock:
            sent, self._sent = self._sent, []
        return sent

    @staticmethod
    def summary(sent: list[str]) -> dict[str, int]:
        return dict(Counter(sent))


def counted_context(settings: Any = None) -> tuple[Any, TableRequests]:
    """A fresh ``AppContext`` whose evidence store counts its requests (the rest built as the app builds it)."""
    from shared import runtime
    from shared.adapters.clients import table_service
    from shared.adapters.table_store import TableEvidenceStore

    requests = TableRequests()
    ctx = runtime.AppContext(settings)
    ctx.store = TableEvidenceStore(table_service(ctx.settings, raw_request_hook=requests))
    return ctx, requests
