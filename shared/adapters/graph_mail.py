"""Email through Microsoft Graph ``sendMail`` (msgraph-sdk), from the ``MAIL_SENDER`` mailbox.

msgraph-sdk is async (httpx) and the notification domain is synchronous (it
runs in activities and timers on the worker's thread pool), so ``send``
runs the SDK call on the process's Graph event loop (a daemon thread, the
same one the directory adapter uses). The Graph client is cached per event
loop by ``shared.adapters.clients.graph_client``, so every email reuses the
same client and connection pool. From async code use ``send_async`` directly.
"""

from __future__ import annotations

import asyncio

from shared.errors import ConfigurationError
from shared.notify.ports import MailDeliveryError, OutgoingMail

SEND_TIMEOUT_SECONDS = 120.0


def _background_loop() -> asyncio.AbstractEventLoop:
    """The process's one Graph event loop (shared with the directory adapter, so with its cached client)."""
    from shared.adapters.clients import graph_loop

    return graph_loop()


class GraphMailer:
    """``shared.notify.ports.MailSender`` on Microsoft Graph: ``POST /users/{MAIL_SENDER}/sendMail``."""

    def __init__(self, settings, client=None, timeout: float = SEND_TIMEOUT_SECONDS):  # client: GraphServiceClient
        if not settings.mail_sender:
            raise ConfigurationError("MAIL_SENDER is not set: email is disabled")
        self.settings, self._client, self.timeout = settings, client, timeout

    def _graph(self):
        if self._client is not None:
            return self._client
        from shared.adapters.clients import graph_client

        return graph_client(self.settings)

    @staticmethod
    def _body(mail: OutgoingMail):
        from msgraph.generated.models.body_type import BodyType
        from msgraph.generated.models.email_address import EmailAddress
        from msgraph.generated.models.importance import Importance
        from msgraph.generated.models.item_body import ItemBody
        from msgraph.generated.models.message import Message
        from msgraph.generated.models.recipient import Recipient
        from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

        def recipients(addresses: list[str]) -> list:
            return [Recipient(email_address=EmailAddress(address=a)) for a in addresses]

        importance = {"high": Importance.High, "low": Importance.Low}.get(mail.importance, Importance.Normal)
        message = Message(
            subject=mail.subject,
            body=ItemBody(content_type=BodyType.Html, content=mail.html),
            to_recipients=recipients(mail.to),
            cc_recipients=recipients(mail.cc) or None,
            importance=importance,
        )
        return SendMailPostRequestBody(message=message, save_to_sent_items=True)

    async def send_async(self, mail: OutgoingMail) -> None:
        """Send one email; MailDeliveryError when Graph refuses it or cannot be reached."""
        import httpx
        from kiota_abstractions.api_error import APIError

        if not mail.to:
            raise MailDeliveryError("no recipients", code="NoRecipients")
        try:
            await self._graph().users.by_user_id(self.settings.mail_sender).send_mail.post(self._body(mail))
        except APIError as exc:
            err = getattr(exc, "error", None)
            code = getattr(err, "code", None)
            message = getattr(err, "message", None) or getattr(exc, "message", None) or type(exc).__name__
            raise MailDeliveryError(
                f"Graph sendMail refused: {message}", getattr(exc, "response_status_code", None), code
            ) from None
        except httpx.HTTPError as exc:
            raise MailDeliveryError(f"Graph sendMail unreachable: {type(exc).__name__}", None, "Network") from None

    def send(self, mail: OutgoingMail) -> None:
        """``send_async`` from synchronous code (not from a running event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("GraphMailer.send() called on an event loop: await send_async() instead")
        future = asyncio.run_coroutine_threadsafe(self.send_async(mail), _background_loop())
        try:
            future.result(self.timeout)
        except TimeoutError:
            future.cancel()
            raise MailDeliveryError(
                f"Graph sendMail did not answer within {self.timeout:.0f} s", None, "Timeout"
            ) from None
