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


class PayloadTooLargeError(SocResponderError):
    """The request body is over the limit."""


class UnsupportedMediaTypeError(SocResponderError):
    """The request body is not JSON."""


class IncidentNotFoundError(SocResponderError):
    """No incident with that id."""


class ConflictError(SocResponderError):
    """The request conflicts with the incident's current state."""


class EvidenceChainBrokenError(SocResponderError):
    """A timeline's hash chain does not verify."""
