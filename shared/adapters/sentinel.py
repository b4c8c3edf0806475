"""Microsoft Sentinel incidents through Azure Resource Manager, behind ``shared.writeback.ports.SentinelIncidents``.

REST on azure-mgmt-core's ``ARMPipelineClient`` (``clients.arm_pipeline_client``)
at API version ``2025-06-01``, not ``azure-mgmt-securityinsight`` (1.0.0, 2022):
the incident is read and written back as the JSON document Sentinel returned,
so properties newer than an old SDK's models (or an analyst's values in them)
are never dropped by a PUT, and no extra package is needed.

- ``…/providers/Microsoft.SecurityInsights/incidents/{id}``: GET; PUT with the
  read ``etag`` in the body and ``If-Match`` (412, or 409 "a new version
  exists", → ``ConcurrentEditError``: the service re-reads and merges again).
- ``…/incidents/{id}/comments/{commentId}``: PUT (create or update in place);
  the comment list is read once before our first comment (is ours there
  already, after a crash? is the incident at Sentinel's 100 comments?).
- Errors map to ``shared.errors``' adapter errors: 401/403 access denied, 404 not
  found, 408/429/5xx/timeouts transient (after the pipeline's own retries,
  which honour Retry-After), other 4xx rejected. Response bodies are not
  copied into errors beyond the service's error code and message.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from shared.errors import (
    AccessDeniedError,
    AdapterError,
    ConcurrentEditError,
    RequestRejectedError,
    TargetNotFoundError,
    TransientError,
)
from shared.settings import Settings
from shared.writeback.ports import SentinelComment, SentinelIncident

SENTINEL_API_VERSION = "2025-06-01"
_MAX_PAGES = 20


class ArmRest:
    """JSON over the ARM pipeline, with ARM's status codes mapped to the shared adapter errors."""

    def __init__(self, settings: Settings, client: Any = None):
        self.settings = settings
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from shared.adapters.clients import arm_pipeline_client

            self._client = arm_pipeline_client(self.settings)
        return self._client

    def url(self, resource_id: str, api_version: str, suffix: str = "") -> str:
        path = quote("/" + resource_id.strip("/") + suffix, safe="/")
        return f"{self.settings.arm_endpoint.rstrip('/')}{path}?api-version={api_version}"

    def send(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        what: str,
        retry_post: bool = False,
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body or None, headers) of a 2xx answer; an ``AdapterError`` otherwise."""
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        kwargs: dict[str, Any] = {}
        if retry_post:  # state actions are idempotent: retry them like a PUT
            kwargs["retry_on_methods"] = frozenset(["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"])
        request = HttpRequest(method, url, json=body, headers={"Accept": "application/json", **(headers or {})})
        try:
            response = self.client.send_request(request, **kwargs)
        except AzureError as exc:
            raise TransientError(
                f"{what}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", code=type(exc).__name__
            ) from None
        status = response.status_code
        try:
            payload = response.json() if response.content else None
        except ValueError:
            payload = None
        if 200 <= status < 300:
            return status, payload, dict(response.headers)
        raise _error(status, payload, what, method)


def _error(status: int, payload: Any, what: str, method: str) -> AdapterError:
    err = (payload or {}).get("error") if isinstance(payload, dict) else None
    code = str((err or {}).get("code") or f"HTTP{status}")[:100]
    message = str((err or {}).get("message") or "").splitlines()[0][:300] if err else ""
    reason = f"{what}: HTTP {status} {code}" + (f" — {message}" if message else "")
    if status in (401, 403):
        return AccessDeniedError(reason, status=status, code=code)
    if status == 404:
        return TargetNotFoundError(reason, status=status, code=code)
    if status == 412 or (status == 409 and method == "PUT"):
        return ConcurrentEditError(reason, status=status, code=code)
    if status in (408, 429) or status >= 500:
        return TransientError(reason, status=status, code=code)
    return RequestRejectedError(reason, status=status, code=code)


class ArmSentinelIncidents:
    """``SentinelIncidents`` on ARM."""

    def __init__(self, settings: Settings, client: Any = None, api_version: str = SENTINEL_API_VERSION):
        self.rest = ArmRest(settings, client)
        self.api_version = api_version

    def _incident(self, incident_id: str, payload: Any, headers: dict[str, str]) -> SentinelIncident:
        doc = payload if isinstance(payload, dict) else {}
        etag = doc.get("etag") or next((v for k, v in headers.items() if k.lower() == "etag"), None)
        return SentinelIncident(id=incident_id, document=doc, etag=etag)

    def get_incident(self, incident_id: str) -> SentinelIncident:
        _, payload, headers = self.rest.send(
            "GET", self.rest.url(incident_id, self.api_version), what="read the Sentinel incident"
        )
        return self._incident(incident_id, payload, headers)

    def replace_incident(self, incident_id: str, document: dict[str, Any], etag: str | None) -> SentinelIncident:
        headers = {"If-Match": etag} if etag else {}
        _, payload, headers_out = self.rest.send(
            "PUT",
            self.rest.url(incident_id, self.api_version),
            body=document,
            headers=headers,
            what="update the Sentinel incident",
        )
        return self._incident(incident_id, payload, headers_out)

    def find_comment(self, incident_id: str, comment_id: str) -> tuple[SentinelComment | None, int]:
        url: str | None = self.rest.url(incident_id, self.api_version, "/comments")
        found, count = None, 0
        for _ in range(_MAX_PAGES):  # Sentinel keeps at most 100 comments: one or two pages
            if not url:
                break
            _, payload, _ = self.rest.send("GET", url, what="list the incident's comments")
            for item in (payload or {}).get("value") or []:
                count += 1
                if str(item.get("name") or "").lower() == comment_id.lower():
                    props = item.get("properties") or {}
                    found = SentinelComment(id=comment_id, message=str(props.get("message") or ""))
            url = (payload or {}).get("nextLink")
        return found, count

    def put_comment(self, incident_id: str, comment_id: str, message: str) -> None:
        self.rest.send(
            "PUT",
            self.rest.url(incident_id, self.api_version, f"/comments/{comment_id}"),
            body={"properties": {"message": message}},
            what="write the soc-responder comment",
        )
