"""What the notification domain needs from a mail service and a calling service (ports).

Structural ``Protocol`` classes: the adapters in ``shared.adapters`` (``graph_mail.GraphMailer``,
``acs_calls.AcsCaller``) satisfy them without the domain importing them; ``shared.runtime`` wires
them into the service, and mypy checks they fit there. The value types and failures the ports
exchange live here too, so the domain never sees msgraph, ACS or HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.errors import AdapterError


@dataclass(frozen=True)
class OutgoingMail:
    """One email: recipients, subject, HTML body, importance (``high``/``normal``/``low``)."""

    to: list[str]
    subject: str
    html: str
    importance: str = "normal"
    cc: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlacedCall:
    """What ACS answered when a call was created: the ids its call events will carry."""

    call_connection_id: str
    correlation_id: str | None
    server_call_id: str | None


class MailDeliveryError(AdapterError):
    """The mail service refused or could not take the email; ``status`` is the HTTP status when there was one.

    Every mail failure is handled alike (the row is marked failed; a replay retries it up to three
    times), so ``final`` is not consulted; ``evidence()`` keeps the fields notification evidence has
    always carried.
    """

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message, status=status, code=code)

    def evidence(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": str(self)[:500]}


class CallError(AdapterError):
    """The calling service refused the request or could not be reached; ``status`` is the HTTP status when
    there was one. ``evidence()`` keeps the fields call evidence has always carried."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message, status=status)

    def evidence(self) -> dict[str, Any]:
        return {"status": self.status, "message": str(self)[:500]}


class MailSender(Protocol):
    """Sends one email; raises ``MailDeliveryError`` when it cannot."""

    def send(self, mail: OutgoingMail) -> None: ...


class PhoneCaller(Protocol):
    """Places a PSTN call whose events are posted to ``callback_url``, and drives it; raises ``CallError``."""

    def place_call(
        self, target: str, callback_url: str, operation_context: str, caller_id: str | None = None
    ) -> PlacedCall: ...

    def prompt_for_key(self, call_connection_id: str, target: str, text: str, operation_context: str) -> None: ...

    def say(self, call_connection_id: str, text: str, operation_context: str) -> None: ...

    def hang_up(self, call_connection_id: str) -> None: ...
