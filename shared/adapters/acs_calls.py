"""Phone calls through Azure Communication Services Call Automation (azure-communication-callautomation).

An outbound PSTN call from ``ACS_CALLER_ID``; ACS posts the call's events to
the callback URL given at creation. When the callee answers, the domain asks
for a key press with a spoken prompt (text to speech + DTMF recognition), and
says goodbye / hangs up at the end.
"""

from __future__ import annotations

from typing import Any

from shared.errors import ConfigurationError
from shared.notify.ports import CallError, PlacedCall

VOICE = "en-US-JennyNeural"
PROMPT_SILENCE_SECONDS = 10


def _call_error(exc: Exception, what: str) -> CallError:
    from azure.core.exceptions import HttpResponseError

    if isinstance(exc, HttpResponseError):
        return CallError(f"ACS {what} refused: {(exc.message or '').splitlines()[0][:300]}", exc.status_code)
    return CallError(f"ACS {what} failed: {type(exc).__name__}", None)


class AcsCaller:
    """``shared.notify.ports.PhoneCaller`` on ACS Call Automation."""

    def __init__(self, settings, client=None):  # client: CallAutomationClient
        if not settings.acs_endpoint:
            raise ConfigurationError("ACS_ENDPOINT is not set: calls are disabled")
        if not (settings.acs_caller_id or settings.acs_caller_ids):
            raise ConfigurationError("ACS_CALLER_ID is not set: calls are disabled")
        self.settings, self._client = settings, client

    def _acs(self):
        if self._client is None:
            from shared.adapters.clients import call_automation_client

            self._client = call_automation_client(self.settings)
        return self._client

    def place_call(
        self, target: str, callback_url: str, operation_context: str, caller_id: str | None = None
    ) -> PlacedCall:
        """Dial ``target`` (E.164) from ``caller_id`` (issue 14: a number of the pool; default ``ACS_CALLER_ID``);
        ACS posts the call's events to ``callback_url``."""
        from azure.communication.callautomation import PhoneNumberIdentifier
        from azure.core.exceptions import AzureError

        kwargs: dict[str, Any] = {
            "source_caller_id_number": PhoneNumberIdentifier(
                caller_id or self.settings.acs_caller_id or self.settings.acs_caller_ids[0]
            ),
            "operation_context": operation_context,
        }
        if self.settings.acs_cognitive_services_endpoint:
            kwargs["cognitive_services_endpoint"] = self.settings.acs_cognitive_services_endpoint
        try:
            props = self._acs().create_call(PhoneNumberIdentifier(target), callback_url, **kwargs)
        except AzureError as exc:
            raise _call_error(exc, "createCall") from None
        return PlacedCall(
            props.call_connection_id, getattr(props, "correlation_id", None), getattr(props, "server_call_id", None)
        )

    def prompt_for_key(self, call_connection_id: str, target: str, text: str, operation_context: str) -> None:
        """Speak ``text`` and collect one DTMF key from ``target`` (barge-in allowed)."""
        from azure.communication.callautomation import PhoneNumberIdentifier, RecognizeInputType, TextSource
        from azure.core.exceptions import AzureError

        try:
            self._acs().get_call_connection(call_connection_id).start_recognizing_media(
                RecognizeInputType.DTMF,
                PhoneNumberIdentifier(target),
                play_prompt=TextSource(text=text, voice_name=VOICE),
                interrupt_prompt=True,
                initial_silence_timeout=PROMPT_SILENCE_SECONDS,
                dtmf_max_tones_to_collect=1,
                operation_context=operation_context,
            )
        except AzureError as exc:
            raise _call_error(exc, "recognize") from None

    def say(self, call_connection_id: str, text: str, operation_context: str) -> None:
        """Speak ``text`` to everyone on the call."""
        from azure.communication.callautomation import TextSource
        from azure.core.exceptions import AzureError

        try:
            self._acs().get_call_connection(call_connection_id).play_media(
                TextSource(text=text, voice_name=VOICE), operation_context=operation_context
            )
        except AzureError as exc:
            raise _call_error(exc, "play") from None

    def hang_up(self, call_connection_id: str) -> None:
        """End the call for everyone (an already ended call is not an error)."""
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            self._acs().get_call_connection(call_connection_id).hang_up(is_for_everyone=True)
        except ResourceNotFoundError:
            return
        except AzureError as exc:
            raise _call_error(exc, "hangUp") from None
