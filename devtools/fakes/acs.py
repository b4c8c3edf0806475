"""ACS Call Automation in the fake (``/calling/callConnections...``): calls created, actions taken, hang-ups.

``call_event`` builds the CloudEvents batch ACS would post to a call's callback URL, so a test can
drive the app's callback handler through a call's life (connected, DTMF recognised, disconnected).
"""

from __future__ import annotations

import copy
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from devtools.fakes.records import FakeResponse, RecordedRequest, now_iso
from devtools.fakes.server import FakeServer

#: The audience of ACS tokens (the fake's other APIs use its own URL as their audience).
ACS_AUDIENCE = "https://communication.azure.com"

# ACS Call Automation: action -> success status the SDK (1.6, API 2026-03-12) expects.
_ACS_ACTION_STATUS = {
    "terminate": 204,
    "play": 202,
    "recognize": 202,
    "cancelAllMediaOperations": 202,
    "startContinuousDtmfRecognition": 200,
    "stopContinuousDtmfRecognition": 200,
    "sendDtmfTones": 202,
    "hold": 200,
    "unhold": 200,
    "transferToParticipant": 202,
    "startTranscription": 202,
    "stopTranscription": 202,
    "updateTranscription": 202,
    "startMediaStreaming": 202,
    "stopMediaStreaming": 202,
}


@dataclass
class CallRecord:
    """An ACS createCall the fake accepted, and what happened to the call since."""

    call_connection_id: str
    server_call_id: str
    correlation_id: str
    request: dict  # the createCall body as sent
    state: str = "connecting"
    actions: list[tuple[str, Any]] = field(default_factory=list)  # (action, body): ("play", {...}), ("hangup", None)
    created_at: float = field(default_factory=time.time)

    @property
    def targets(self) -> list[str | None]:
        """Phone numbers (E.164) or raw ids of the callees."""
        out: list[str | None] = []
        for t in self.request.get("targets") or []:
            phone = (t.get("phoneNumber") or {}).get("value")
            out.append(phone or t.get("rawId") or (t.get("communicationUser") or {}).get("id"))
        return out

    @property
    def source_caller_id(self) -> str | None:
        return (self.request.get("sourceCallerIdNumber") or {}).get("value")

    @property
    def callback_uri(self) -> str | None:
        return self.request.get("callbackUri")

    @property
    def operation_context(self) -> str | None:
        return self.request.get("operationContext")

    def action_names(self) -> list[str]:
        return [a for a, _ in self.actions]

    def properties(self) -> dict:
        """The CallConnectionProperties JSON the service answers with."""
        req = self.request
        props = {
            "callConnectionId": self.call_connection_id,
            "serverCallId": self.server_call_id,
            "targets": copy.deepcopy(req.get("targets") or []),
            "callConnectionState": self.state,
            "callbackUri": req.get("callbackUri"),
            "correlationId": self.correlation_id,
        }
        if req.get("sourceCallerIdNumber"):
            props["sourceCallerIdNumber"] = copy.deepcopy(req["sourceCallerIdNumber"])
        if req.get("sourceDisplayName"):
            props["sourceDisplayName"] = req["sourceDisplayName"]
        return props


class AcsFake(FakeServer):
    """The ACS Call Automation part of ``AzureFake``."""

    def _init_state(self) -> None:
        super()._init_state()
        self._calls: dict[str, CallRecord] = {}

    def calls(self) -> list[CallRecord]:
        """Calls created (createCall), oldest first."""
        with self._lock:
            return sorted(self._calls.values(), key=lambda c: c.created_at)

    def get_call(self, call_connection_id: str) -> CallRecord | None:
        with self._lock:
            return self._calls.get(call_connection_id)

    def call_event(self, call_connection_id: str, event_type: str, **data: Any) -> list[dict]:
        """A CloudEvents batch as ACS posts it to the call's callback URL, e.g.
        ``call_event(cid, "CallConnected")`` or ``call_event(cid, "RecognizeCompleted",
        recognitionType="dtmf", dtmfResult={"tones": ["one"]})``."""
        call = self.get_call(call_connection_id)
        if call is None:
            raise KeyError(call_connection_id)
        payload = {
            "callConnectionId": call.call_connection_id,
            "serverCallId": call.server_call_id,
            "correlationId": call.correlation_id,
            "operationContext": call.operation_context,
            **data,
        }
        return [
            {
                "id": str(uuid.uuid4()),
                "source": f"calling/callConnections/{call_connection_id}",
                "type": f"Microsoft.Communication.{event_type}",
                "data": payload,
                "time": now_iso(),
                "specversion": "1.0",
                "datacontenttype": "application/json",
                "subject": f"calling/callConnections/{call_connection_id}",
            }
        ]

    def _acs_answer(self, req: RecordedRequest) -> FakeResponse:
        p = req.path
        if p == "/calling/callConnections" and req.method == "POST":
            body = req.body if isinstance(req.body, dict) else {}
            if not body.get("targets") or not body.get("callbackUri"):
                return FakeResponse(
                    400, {"error": {"code": "BadRequest", "message": "targets and callbackUri are required."}}
                )
            pstn = any((t or {}).get("kind") == "phoneNumber" or (t or {}).get("phoneNumber") for t in body["targets"])
            if pstn and not (body.get("sourceCallerIdNumber") or {}).get("value"):
                return FakeResponse(
                    400,
                    {
                        "error": {
                            "code": "BadRequest",
                            "message": "sourceCallerIdNumber is required to call a phone number (PSTN).",
                        }
                    },
                )
            created = CallRecord(
                call_connection_id=str(uuid.uuid4()),
                server_call_id="aHR0cHM6Ly9mYWtl" + secrets.token_urlsafe(24),
                correlation_id=str(uuid.uuid4()),
                request=copy.deepcopy(body),
            )
            self._calls[created.call_connection_id] = created
            return FakeResponse(201, created.properties())
        m = re.match(r"^/calling/callConnections/([^/:]+)(?::(\w+)|/participants)?$", p)
        if not m:
            return FakeResponse(404, {"error": {"code": "NotFound", "message": f"No ACS route {req.method} {p}"}})
        call = self._calls.get(m.group(1))
        if call is None:
            return FakeResponse(404, {"error": {"code": "8522", "message": "Call not found."}})
        action = m.group(2)
        if p.endswith("/participants") and req.method == "GET":
            return FakeResponse(
                200,
                {
                    "value": [
                        {"identifier": t, "isMuted": False, "isOnHold": False}
                        for t in call.request.get("targets") or []
                    ]
                },
            )
        if action is None and req.method == "GET":
            return FakeResponse(200, call.properties())
        if action is None and req.method == "DELETE":
            call.actions.append(("hangup", None))
            call.state = "disconnected"
            return FakeResponse(204)
        if action and req.method == "POST":
            call.actions.append((action, copy.deepcopy(req.body)))
            if action == "terminate":
                call.state = "disconnected"
            status = _ACS_ACTION_STATUS.get(action, 202)
            if status == 204:
                return FakeResponse(204)
            ctx = (req.body or {}).get("operationContext") if isinstance(req.body, dict) else None
            return FakeResponse(status, {"operationContext": ctx})
        return FakeResponse(405, {"error": {"code": "MethodNotAllowed", "message": f"{req.method} {p}"}})


# -- issue 12: the signed token ACS puts in each callback's Authorization header -----------------------------------
#: Issuer of Call Automation callback tokens (the real service's, so the app's check is the production one).
ACS_CALLBACK_ISSUER = "https://acscallautomation.communication.azure.com"
OPENID_PATH = "/calling/.well-known/acsopenidconfiguration"
JWKS_PATH = "/calling/.well-known/acsjwks"


class AcsCallbackSigner:
    """The fake's callback-token key: an RSA key it makes, served as a JWKS behind an OpenID configuration."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.kid = secrets.token_hex(8)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict:
        import json

        from jwt.algorithms import RSAAlgorithm

        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, audience: str, *, lifetime: int = 300, key=None, **claims: Any) -> str:
        """A callback token as ACS signs it (5-minute lifetime); ``key`` signs with another key (forgery)."""
        import jwt

        now = int(time.time())
        body = {"iss": ACS_CALLBACK_ISSUER, "aud": audience, "iat": now, "nbf": now, "exp": now + lifetime, **claims}
        return jwt.encode(body, key or self._key, algorithm="RS256", headers={"kid": self.kid})


def acs_openid_answer(fake_url: str, signer: AcsCallbackSigner, path: str) -> FakeResponse | None:
    """The OpenID configuration and JWKS (anonymous, as on the real service); None for other paths."""
    if path == OPENID_PATH:
        return FakeResponse(200, {"issuer": ACS_CALLBACK_ISSUER, "jwks_uri": f"{fake_url}{JWKS_PATH}"})
    if path == JWKS_PATH:
        return FakeResponse(200, signer.jwks())
    return None
