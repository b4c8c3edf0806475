"""Errors the domain raises; the HTTP layer maps them to statuses in one place."""

from __future__ import annotations


class SocResponderError(Exception):
    """Base of every error this app raises on purpose."""


class ConfigurationError(SocResponderError):
    """A setting or configuration file is missing or invalid (names what and where)."""


class ValidationError(SocResponderError):
    """Caller input is invalid. ``details`` name the fields, never internals."""

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class UnauthorizedError(SocResponderError):
    """The caller did not prove who it is (a missing or wrong secret). ``details`` never say which."""

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class ForbiddenError(SocResponderError):
    """The caller is known but may not do this (no app role for the route, or a body actor naming someone else)."""

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class PayloadTooLargeError(SocResponderError):
    """The request body is over the limit."""


class UnsupportedMediaTypeError(SocResponderError):
    """The request body is not JSON."""


class IncidentNotFoundError(SocResponderError):
    """No incident with that id."""


class PartnerNotFoundError(IncidentNotFoundError):
    """No partner with that id in ``PARTNERS_FILE`` (issue 11: preflight); 404 like an unknown incident."""


class ConflictError(SocResponderError):
    """The request conflicts with the incident's current state."""


class EvidenceChainBrokenError(SocResponderError):
    """A timeline's hash chain does not verify."""


class ConcurrencyError(SocResponderError):
    """A conditional write lost a race (stale ETag, or the row was created meanwhile): re-read and try again."""


# -- adapter failures ----------------------------------------------------------------------------
# One vocabulary for every adapter that changes something in Azure (containment, write-back, ...):
# adapters translate each SDK failure into one of these, so the domain never sees azure-core, msgraph
# or HTTP, and one rule decides what happens next: ``final`` failures are evidenced and escalated to
# people; the others are retried (with backoff, by the durable retry options or a timer).
class AdapterError(SocResponderError):
    """An Azure call failed after the SDK's own retries. ``final``: retrying the same request cannot succeed."""

    final = True

    def __init__(self, reason: str, *, status: int | None = None, code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code

    def evidence(self) -> dict[str, object]:
        """What the timeline records about the failure: no tokens, no request internals, no response bodies."""
        return {"reason": self.reason[:500], "status": self.status, "code": self.code, "final": self.final}


class TargetNotFoundError(AdapterError):
    """The VM, NIC, account, service principal, Sentinel incident or Defender alert does not exist (404)."""


class AccessDeniedError(AdapterError):
    """The app's identity may not do this (403), e.g. disabling a privileged administrator."""


class RequestRejectedError(AdapterError):
    """The service refused the request for a reason retrying cannot fix (400, 401, configuration)."""


class TransientError(AdapterError):
    """Throttled, unavailable or timed out (429, 5xx, a dropped connection) after the SDK's own retries."""

    final = False


class ConcurrentEditError(AdapterError):
    """The resource changed between our read and our write (HTTP 412 on If-Match, or 409 on a stale etag):
    re-read, merge again and retry."""

    final = False
