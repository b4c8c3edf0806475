"""A loopback HTTPS fake of the Azure services soc-responder talks to.

One ``AzureFake`` is one HTTPS server on 127.0.0.1 (certificate from
``trustme``, valid for 127.0.0.1 and localhost) that answers, on one port:

- Azure Resource Manager (``/subscriptions/...``): a generic resource store
  (PUT/GET/PATCH/DELETE, lists, optional long-running operations) with
  realistic NIC / NSG / VM documents, Sentinel incidents and comments, and
  generic ARM POST actions (Defender for Cloud alert state changes...);
- Microsoft Graph (``/v1.0/...``): users, service principals,
  ``revokeSignInSessions``, ``sendMail``;
- Log Analytics (``/v1/workspaces/{id}/query``, ``/v1/$batch``);
- ACS Call Automation (``/calling/callConnections...``).

Next to it a plain-HTTP ``ManagedIdentityEndpoint`` speaks the App Service
managed-identity protocol (``IDENTITY_ENDPOINT`` / ``IDENTITY_HEADER``), so the
real ``DefaultAzureCredential`` gets tokens, and the fake checks every API
request for a token it issued, for the right audience.

Every request is recorded (``requests()``, ``writes()``); faults (status,
headers, body, delay, dropped connection) can be injected per method and
path (``inject()``); ``reset()`` gives a fresh state between tests.

Only the standard library and ``trustme`` are used.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "AzureFake",
    "CallRecord",
    "FakeResponse",
    "Fault",
    "ManagedIdentityEndpoint",
    "RecordedRequest",
    "SentMail",
    "TokenGrant",
    "json_diff",
    "parse_arm_path",
]

ACS_AUDIENCE = "https://communication.azure.com"


# --------------------------------------------------------------------------
# Records and responses
# --------------------------------------------------------------------------


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

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
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
    api: str  # "arm" | "graph" | "logs" | "acs" | "token" | "unknown"
    status: int | None = None  # None: no answer (dropped, or aborted by reset/stop)
    token_resource: str | None = None  # audience of the bearer token it carried, if issued here
    fault: bool = False  # an injected fault answered (or delayed) it

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


@dataclass
class TokenGrant:
    token: str
    resource: str
    client_id: str | None
    issued_at: float
    expires_on: int


@dataclass
class SentMail:
    """A Graph sendMail the fake accepted."""

    sender: str  # the mailbox as addressed in the URL
    message: dict
    save_to_sent_items: Any
    timestamp: float

    @staticmethod
    def _addresses(items: Any) -> list[str]:
        return [((r or {}).get("emailAddress") or {}).get("address") for r in (items or [])]

    @property
    def subject(self) -> str | None:
        return self.message.get("subject")

    @property
    def to(self) -> list[str]:
        return self._addresses(self.message.get("toRecipients"))

    @property
    def cc(self) -> list[str]:
        return self._addresses(self.message.get("ccRecipients"))

    @property
    def bcc(self) -> list[str]:
        return self._addresses(self.message.get("bccRecipients"))

    @property
    def body_content(self) -> str | None:
        return (self.message.get("body") or {}).get("content")

    @property
    def body_type(self) -> str | None:
        return (self.message.get("body") or {}).get("contentType")

    @property
    def importance(self) -> str | None:
        return self.message.get("importance")


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
    def targets(self) -> list[str]:
        """Phone numbers (E.164) or raw ids of the callees."""
        out = []
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


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def _norm_location(loc: Any) -> str:
    return str(loc or "").replace(" ", "").lower()


def _key(resource_id: str) -> str:
    return "/" + unquote(resource_id).strip().strip("/").lower()


def json_diff(a: Any, b: Any, *, ignore_keys: Iterable[str] = ("etag",), _path: str = "") -> list[str]:
    """Dotted paths at which two JSON documents differ (lists of named items match by name).

    ``json_diff(nic_before, nic_after)`` after an NSG attach should be
    ``["properties.networkSecurityGroup"]``; keys in ``ignore_keys`` (at any
    depth) are skipped.
    """
    ignore = set(ignore_keys)
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            if k in ignore:
                continue
            p = f"{_path}.{k}" if _path else k
            if k not in a or k not in b:
                out.append(p)
            else:
                out.extend(json_diff(a[k], b[k], ignore_keys=ignore, _path=p))
        return out
    if isinstance(a, list) and isinstance(b, list):
        named = all(isinstance(x, dict) and "name" in x for x in a + b)
        if named and len({x["name"] for x in a}) == len(a) and len({x["name"] for x in b}) == len(b):
            am = {x["name"]: x for x in a}
            bm = {x["name"]: x for x in b}
            out = []
            for n in sorted(set(am) | set(bm)):
                p = f"{_path}[{n}]"
                if n not in am or n not in bm:
                    out.append(p)
                else:
                    out.extend(json_diff(am[n], bm[n], ignore_keys=ignore, _path=p))
            return out
        if len(a) != len(b):
            return [_path]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(json_diff(x, y, ignore_keys=ignore, _path=f"{_path}[{i}]"))
        return out
    return [] if a == b else [_path]


@dataclass(frozen=True)
class ArmPath:
    """What an ARM request path addresses."""

    path: str
    subscription: str
    resource_group: str | None
    type: str  # e.g. "Microsoft.Network/networkInterfaces", "Microsoft.Network/networkSecurityGroups/securityRules"
    name: str | None  # None for a collection
    is_collection: bool
    parent: str | None  # parent resource id of a nested child (same provider), else None


def parse_arm_path(path: str) -> ArmPath | None:
    """Parse an ARM resource or collection path; None if it is not one."""
    segs = [s for s in path.strip("/").split("/") if s]
    if len(segs) < 2 or segs[0].lower() != "subscriptions":
        return None
    sub = segs[1]
    rest = segs[2:]
    rg = None
    if rest and rest[0].lower() == "resourcegroups":
        if len(rest) == 1:
            return ArmPath(path, sub, None, "Microsoft.Resources/resourceGroups", None, True, None)
        rg = rest[1]
        if len(rest) == 2:
            return ArmPath(path, sub, rg, "Microsoft.Resources/resourceGroups", rg, False, None)
    provider_idx = [i for i, s in enumerate(segs) if s.lower() == "providers"]
    if not provider_idx:
        return None
    idx = provider_idx[-1]
    if idx + 2 >= len(segs):
        return None
    namespace = segs[idx + 1]
    tail = segs[idx + 2 :]
    rtype = namespace + "/" + "/".join(tail[0::2])
    is_collection = len(tail) % 2 == 1
    name = None if is_collection else tail[-1]
    parent = None
    if not is_collection and len(tail) > 2:
        parent = "/" + "/".join(segs[:-2])
    return ArmPath(path, sub, rg, rtype, name, is_collection, parent)


# Properties ARM computes itself: kept from the stored version when a PUT
# (which the SDKs send without read-only fields) leaves them out.
_READ_ONLY = {
    "microsoft.network/networkinterfaces": {
        "virtualMachine",
        "privateEndpoint",
        "tapConfigurations",
        "macAddress",
        "primary",
        "vnetEncryptionSupported",
        "defaultOutboundConnectivityEnabled",
        "hostedWorkloads",
        "dscpConfiguration",
        "resourceGuid",
        "provisioningState",
    },
    "microsoft.network/networksecuritygroups": {
        "defaultSecurityRules",
        "networkInterfaces",
        "subnets",
        "flowLogs",
        "resourceGuid",
        "provisioningState",
    },
    "microsoft.compute/virtualmachines": {"vmId", "timeCreated", "instanceView", "provisioningState"},
    "*": {"provisioningState", "resourceGuid"},
}
_READ_ONLY_CHILD = {
    "ipConfigurations": {"provisioningState", "privateLinkConnectionProperties"},
    "securityRules": {"provisioningState"},
    "defaultSecurityRules": {"provisioningState"},
}
_READ_ONLY_DNS = {"appliedDnsServers", "internalFqdn", "internalDomainNameSuffix"}
# Child collections ARM keeps inside the parent's properties.
_INLINE_CHILDREN = {
    "securityrules": "securityRules",
    "defaultsecurityrules": "defaultSecurityRules",
    "ipconfigurations": "ipConfigurations",
}

_NIC = "microsoft.network/networkinterfaces"
_NSG = "microsoft.network/networksecuritygroups"
_VM = "microsoft.compute/virtualmachines"

_GRAPH_USER_DEFAULT_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)

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


def _default_security_rules(nsg_id: str) -> list[dict]:
    def rule(name, priority, direction, access, src, dst, description):
        return {
            "name": name,
            "id": f"{nsg_id}/defaultSecurityRules/{name}",
            "etag": "",
            "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
            "properties": {
                "provisioningState": "Succeeded",
                "description": description,
                "protocol": "*",
                "sourcePortRange": "*",
                "destinationPortRange": "*",
                "sourceAddressPrefix": src,
                "destinationAddressPrefix": dst,
                "access": access,
                "priority": priority,
                "direction": direction,
                "sourcePortRanges": [],
                "destinationPortRanges": [],
                "sourceAddressPrefixes": [],
                "destinationAddressPrefixes": [],
            },
        }

    return [
        rule(
            "AllowVnetInBound",
            65000,
            "Inbound",
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow inbound traffic from all VMs in VNET",
        ),
        rule(
            "AllowAzureLoadBalancerInBound",
            65001,
            "Inbound",
            "Allow",
            "AzureLoadBalancer",
            "*",
            "Allow inbound traffic from azure load balancer",
        ),
        rule("DenyAllInBound", 65500, "Inbound", "Deny", "*", "*", "Deny all inbound traffic"),
        rule(
            "AllowVnetOutBound",
            65000,
            "Outbound",
            "Allow",
            "VirtualNetwork",
            "VirtualNetwork",
            "Allow outbound traffic from all VMs to all VMs in VNET",
        ),
        rule(
            "AllowInternetOutBound",
            65001,
            "Outbound",
            "Allow",
            "*",
            "Internet",
            "Allow outbound traffic from all VMs to Internet",
        ),
        rule("DenyAllOutBound", 65500, "Outbound", "Deny", "*", "*", "Deny all outbound traffic"),
    ]


def _deep_merge(base: dict, patch: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _ref(value: Any) -> Any:
    """ARM stores references to other resources as {"id": ...} only."""
    if isinstance(value, dict) and value.get("id"):
        return {"id": value["id"]}
    return value


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "azure-fake/1"
    sys_version = ""
    timeout = 120  # idle keep-alive connections end eventually

    def setup(self) -> None:
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the client's
        # delayed ACK add ~40 ms to every round trip and swamp what the benchmarks measure.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        ctx = self.server.tls_context  # type: ignore[attr-defined]
        if ctx is not None:
            self.request.settimeout(10)
            self.request = ctx.wrap_socket(self.request, server_side=True)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline().strip()
                size = int(size_line.split(b";")[0] or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        body = self._read_body()
        headers = Headers(self.headers.items())
        try:
            resp = self.server.app.handle_request(  # type: ignore[attr-defined]
                self.server.kind,
                self.command,
                self.path,
                headers,
                body,  # type: ignore[attr-defined]
            )
        except Exception:  # pragma: no cover - the fake itself broke
            traceback.print_exc()
            resp = FakeResponse(500, {"error": {"code": "FakeCrashed", "message": traceback.format_exc()}})
        if resp is None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self._write(resp)

    def _write(self, resp: FakeResponse) -> None:
        body = resp.body
        ctype = None
        if body is None:
            payload = b""
        elif isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload, ctype = body.encode(), "text/plain; charset=utf-8"
        else:
            payload, ctype = json.dumps(body).encode(), "application/json; charset=utf-8"
        try:
            self.send_response(resp.status)
            headers = Headers(resp.headers)
            for k, v in headers.items():
                self.send_header(k, str(v))
            if ctype and "Content-Type" not in headers:
                self.send_header("Content-Type", ctype)
            no_body = resp.status in (204, 304) or 100 <= resp.status < 200
            if not no_body:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload and not no_body and self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: Any, kind: str, tls_context: ssl.SSLContext | None):
        self.app = app
        self.kind = kind
        self.tls_context = tls_context
        super().__init__(address, _Handler)

    def server_bind(self) -> None:  # skip HTTPServer's reverse DNS look-up
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (OSError, ssl.SSLError, TimeoutError, ValueError)):
            return  # clients that hang up, time out or fail the TLS handshake
        super().handle_error(request, client_address)


def _serve(server: _Server) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        daemon=True,
        name=f"azure-fake-{server.kind}-{server.server_address[1]}",
    )
    thread.start()
    return thread


def _parse_body(raw: bytes, headers: Headers) -> Any:
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


# --------------------------------------------------------------------------
# Managed identity endpoint
# --------------------------------------------------------------------------


class ManagedIdentityEndpoint:
    """Plain-HTTP loopback token endpoint in the App Service managed-identity protocol.

    ``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...[&client_id=...]``
    with header ``X-IDENTITY-HEADER: {IDENTITY_HEADER}`` answers
    ``{"access_token", "expires_on", "resource", "token_type", "client_id"}``.
    Usable on its own or (as ``AzureFake.identity``) inside the fake.
    """

    PATH = "/msi/token"

    def __init__(self, *, host: str = "127.0.0.1", token_lifetime_seconds: int = 24 * 3600):
        self.host = host
        self.header_secret = secrets.token_urlsafe(18)
        self.token_lifetime_seconds = token_lifetime_seconds
        self._lock = threading.Lock()
        self._grants: dict[str, TokenGrant] = {}
        self._issued: list[TokenGrant] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle -------------------------------------------------------------
    def start(self, app: Any = None) -> ManagedIdentityEndpoint:
        if self._server is None:
            self._server = _Server((self.host, 0), app or self, "token", None)
            self._thread = _serve(self._server)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ManagedIdentityEndpoint:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.PATH}"

    def environment(self) -> dict[str, str]:
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.header_secret}

    # tokens ----------------------------------------------------------------
    def issue_token(self, resource: str, client_id: str | None = None) -> TokenGrant:
        """Issue a token directly (for tests that call the fake without a credential)."""
        now = time.time()
        grant = TokenGrant(
            token=f"fake-mi.{secrets.token_urlsafe(24)}",
            resource=resource,
            client_id=client_id,
            issued_at=now,
            expires_on=int(now) + self.token_lifetime_seconds,
        )
        with self._lock:
            self._grants[grant.token] = grant
            self._issued.append(grant)
        return grant

    def grant_for(self, token: str | None) -> TokenGrant | None:
        if not token:
            return None
        with self._lock:
            return self._grants.get(token)

    def token_requests(self) -> list[TokenGrant]:
        """Every token issued, in order (resource and client_id asked for)."""
        with self._lock:
            return list(self._issued)

    def resources_requested(self) -> list[str]:
        return [g.resource for g in self.token_requests()]

    def answer(self, req: RecordedRequest) -> FakeResponse:
        if req.path != self.PATH or req.method != "GET":
            return FakeResponse(404, {"statusCode": 404, "message": f"No token route {req.method} {req.path}"})
        if req.header("X-IDENTITY-HEADER") != self.header_secret:
            return FakeResponse(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong."})
        resource = req.query.get("resource")
        if not resource:
            return FakeResponse(400, {"statusCode": 400, "message": "resource is required."})
        grant = self.issue_token(resource, req.query.get("client_id"))
        return FakeResponse(
            200,
            {
                "access_token": grant.token,
                "expires_on": str(grant.expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": grant.client_id or "00000000-0000-0000-0000-00000000f4ce",
            },
        )

    # stand-alone app protocol ---------------------------------------------
    def handle_request(self, kind: str, method: str, raw_path: str, headers: Headers, raw: bytes) -> FakeResponse:
        split = urlsplit(raw_path)
        req = RecordedRequest(
            method,
            unquote(split.path),
            raw_path,
            dict(parse_qsl(split.query, keep_blank_values=True)),
            headers,
            _parse_body(raw, headers),
            raw,
            time.time(),
            "token",
        )
        return self.answer(req)


# --------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------

RouteHandler = Callable[[RecordedRequest, "re.Match[str]"], Any]


class AzureFake:
    """Loopback HTTPS fake of ARM, Microsoft Graph, Log Analytics and ACS Call Automation.

    Usage::

        with AzureFake() as fake:
            os.environ.update(fake.environment())
            fake.add_nic(nic_id, "westeurope")
            ... real SDK clients ...
            assert fake.writes() == []
    """

    def __init__(self, *, host: str = "127.0.0.1", require_auth: bool = True, lro_retry_after_ms: int = 50):
        self.host = host
        #: API requests must carry a bearer token issued by ``identity`` for the right audience.
        self.require_auth = require_auth
        #: Long-running-operation answers carry ``retry-after-ms`` (azure-core polls after it).
        #: Not ``Retry-After: 0``: azure-core then falls back to the client's polling_interval
        #: (30 s), and azure-mgmt-network parses Retry-After as an int (no fractions).
        self.lro_retry_after_ms = lro_retry_after_ms
        self.identity = ManagedIdentityEndpoint(host=host)
        self._lock = threading.RLock()
        self._abort = threading.Event()
        self._server: _Server | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._ca_pem_path: str | None = None
        self._bundle_path: str | None = None
        self._ssl_server_ctx: ssl.SSLContext | None = None
        self.errors: list[str] = []  # tracebacks of exceptions raised while answering
        self._init_state()

    # ------------------------------------------------------------------ lifecycle
    def _init_state(self) -> None:
        self._log: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._routes: list[tuple[frozenset[str] | None, re.Pattern[str], RouteHandler]] = []
        self._arm: dict[str, dict] = {}
        self._history: dict[str, list[dict]] = {}
        self._lro: dict[str, dict] = {}
        self._operations: dict[str, dict] = {}
        self._users: dict[str, dict] = {}
        self._sps: dict[str, dict] = {}
        self._mail: list[SentMail] = []
        self._la_tables: dict[str, list[dict]] = {}
        self._la_error: dict[str, dict | None] = {}
        self._calls: dict[str, CallRecord] = {}
        self._ip_counter = 3
        #: ``fn(workspace_id, body) -> dict | FakeResponse`` answering Log Analytics queries
        #: (``body`` has ``query`` and ``timespan``); None: the tables set with
        #: ``set_log_analytics_tables``.
        self.log_analytics_handler: Callable[[str, dict], Any] | None = None

    def start(self) -> AzureFake:
        if self._server is not None:
            return self
        import trustme  # dev dependency, imported only when a fake starts

        self._tmp = tempfile.TemporaryDirectory(prefix="azure-fake-")
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        ctx.set_alpn_protocols(["http/1.1"])
        self._ssl_server_ctx = ctx
        self._ca_pem_path = os.path.join(self._tmp.name, "ca.pem")
        ca.cert_pem.write_to_path(self._ca_pem_path)
        # A bundle = the CAs this process already trusts + the fake's CA, so pointing
        # REQUESTS_CA_BUNDLE / SSL_CERT_FILE at it breaks no other TLS connection.
        self._bundle_path = os.path.join(self._tmp.name, "ca-bundle.pem")
        with open(self._bundle_path, "wb") as out:
            out.write(_system_ca_pem())
            out.write(b"\n")
            out.write(ca.cert_pem.bytes())
        self.identity.start(app=self)
        self._server = _Server((self.host, 0), self, "api", ctx)
        _serve(self._server)
        return self

    def stop(self) -> None:
        self._abort.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.identity.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> AzureFake:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        """Fresh state: store, users, mail, calls, Log Analytics answers, faults, routes and log.

        Issued tokens survive (credentials cache them across tests). Requests still
        delayed by an injected fault are answered by a dropped connection.
        """
        with self._lock:
            self._abort.set()
            self._abort = threading.Event()
            self._init_state()
            self.require_auth = True
            self.errors = []

    # ------------------------------------------------------------------ addresses
    @property
    def port(self) -> int:
        assert self._server is not None, "AzureFake not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """https://127.0.0.1:PORT — the one base URL of every faked API."""
        return f"https://{self.host}:{self.port}"

    @property
    def ca_pem_path(self) -> str:
        """PEM of the fake's CA alone."""
        assert self._ca_pem_path, "AzureFake not started"
        return self._ca_pem_path

    @property
    def ca_bundle_path(self) -> str:
        """PEM of the system CAs plus the fake's CA (what environment() points clients at)."""
        assert self._bundle_path, "AzureFake not started"
        return self._bundle_path

    def ssl_context(self) -> ssl.SSLContext:
        """A client SSL context that trusts the fake (e.g. ``httpx.AsyncClient(verify=...)``)."""
        return ssl.create_default_context(cafile=self.ca_pem_path)

    def environment(self) -> dict[str, str]:
        """Environment variables pointing the app (and the SDKs) at the fake."""
        no_proxy = ",".join(
            x for x in (os.environ.get("NO_PROXY") or os.environ.get("no_proxy"), "127.0.0.1,localhost") if x
        )
        return {
            "ARM_ENDPOINT": self.url,
            "GRAPH_ENDPOINT": self.url,
            "LOG_ANALYTICS_ENDPOINT": self.url,
            "ACS_ENDPOINT": self.url,
            **self.identity.environment(),
            # Only managed identity in DefaultAzureCredential's chain: no silent fall-back
            # to a developer's Azure CLI login.
            "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
            # requests (azure-core's transport) reads REQUESTS_CA_BUNDLE per request;
            # httpx (msgraph-sdk) and aiohttp/ssl read SSL_CERT_FILE when a client is made.
            "REQUESTS_CA_BUNDLE": self.ca_bundle_path,
            "SSL_CERT_FILE": self.ca_bundle_path,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    def token_requests(self) -> list[TokenGrant]:
        return self.identity.token_requests()

    # ------------------------------------------------------------------ request log
    def requests(
        self,
        method: str | None = None,
        path_contains: str | None = None,
        *,
        api: str | None = None,
        include_tokens: bool = False,
    ) -> list[RecordedRequest]:
        """Recorded requests, oldest first, filtered (path_contains ignores case)."""
        with self._lock:
            log = list(self._log)
        out = []
        for r in log:
            if r.api == "token" and not include_tokens and api != "token":
                continue
            if method and r.method != method.upper():
                continue
            if path_contains and path_contains.lower() not in r.path.lower():
                continue
            if api and r.api != api:
                continue
            out.append(r)
        return out

    def writes(self, api: str | None = None) -> list[RecordedRequest]:
        """Requests that may change something: every method but GET/HEAD/OPTIONS, except
        token requests and Log Analytics queries (POSTs that only read)."""
        return [
            r
            for r in self.requests(api=api)
            if r.method not in ("GET", "HEAD", "OPTIONS") and r.api not in ("token", "logs")
        ]

    def last_request(
        self, method: str | None = None, path_contains: str | None = None, *, api: str | None = None
    ) -> RecordedRequest:
        found = self.requests(method, path_contains, api=api)
        if not found:
            raise AssertionError(
                f"no request {method or '*'} {path_contains or ''} api={api}; log: {self.requests(include_tokens=True)}"
            )
        return found[-1]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # ------------------------------------------------------------------ faults and routes
    def inject(
        self,
        method: str | None,
        path_regex: str,
        status: int | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        times: int = 1,
        delay_seconds: float = 0.0,
        drop_connection: bool = False,
        api: str | None = None,
    ) -> Fault:
        """Answer the next ``times`` requests matching method (None/"*": any) and
        ``path_regex`` (``re.search`` on the decoded path, no query) with a fault.

        - ``status`` (+ ``headers``/``body``; an ARM-style error body by default): that answer;
        - ``delay_seconds``: wait first (longer than a client's read timeout to make it time out);
          with ``status=None`` the request is then answered normally;
        - ``drop_connection``: close the connection without an answer.

        Faults are consumed in the order injected; when used up, normal behaviour resumes.
        Token requests (api="token", path "/msi/token") can be faulted too.
        """
        if status is None and not delay_seconds and not drop_connection:
            raise ValueError("a fault needs a status, a delay or drop_connection")
        fault = Fault(
            method,
            re.compile(path_regex, re.IGNORECASE),
            status,
            dict(headers or {}),
            body,
            times,
            float(delay_seconds),
            drop_connection,
            api,
        )
        with self._lock:
            self._faults.append(fault)
        return fault

    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def route(self, method: str | Iterable[str] | None, path_regex: str, handler: RouteHandler) -> None:
        """Answer matching requests with ``handler(request, match)`` (after faults and auth,
        before the built-in routes). It returns a FakeResponse, a (status, body) tuple or a
        JSON body (200). Cleared by reset()."""
        methods = (
            None
            if method in (None, "*")
            else frozenset([method.upper()] if isinstance(method, str) else [m.upper() for m in method])
        )
        with self._lock:
            self._routes.append((methods, re.compile(path_regex, re.IGNORECASE), handler))

    # ------------------------------------------------------------------ dispatch
    def handle_request(
        self, kind: str, method: str, raw_path: str, headers: Headers, raw: bytes
    ) -> FakeResponse | None:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        if len(path) > 1:
            path = path.rstrip("/")
        api = "token" if kind == "token" else _api_for(path)
        req = RecordedRequest(
            method.upper(),
            path,
            raw_path,
            dict(parse_qsl(split.query, keep_blank_values=True)),
            headers,
            _parse_body(raw, headers),
            raw,
            time.time(),
            api,
        )
        with self._lock:
            self._log.append(req)
            abort = self._abort
            fault = next((f for f in self._faults if f.matches(req)), None)
            if fault is not None:
                fault.hits += 1
                req.fault = True
        if fault is not None:
            if fault.delay_seconds and abort.wait(fault.delay_seconds):
                return None
            if fault.drop_connection:
                return None
            if fault.status is not None:
                resp = fault.response()
                req.status = resp.status
                return resp
        with self._lock:
            if abort is not self._abort or abort.is_set():
                return None  # reset or stopped while this request waited
            try:
                resp = self._answer(req)
            except Exception as exc:
                tb = traceback.format_exc()
                self.errors.append(tb)
                resp = FakeResponse(500, {"error": {"code": "FakeError", "message": f"{type(exc).__name__}: {exc}"}})
            resp.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
            req.status = resp.status
            return resp

    def _answer(self, req: RecordedRequest) -> FakeResponse:
        if req.api == "token":
            return self.identity.answer(req)
        denied = self._check_auth(req)
        if denied is not None:
            return denied
        for methods, pattern, handler in self._routes:
            m = pattern.search(req.path)
            if m and (methods is None or req.method in methods):
                return _coerce(handler(req, m))
        if req.api == "arm":
            return self._arm_answer(req)
        if req.api == "graph":
            return self._graph_answer(req)
        if req.api == "logs":
            return self._logs_answer(req)
        if req.api == "acs":
            return self._acs_answer(req)
        return FakeResponse(
            404, {"error": {"code": "NoRoute", "message": f"azure_fake: no route for {req.method} {req.path}"}}
        )

    def _audiences(self, api: str) -> set[str]:
        if api == "acs":
            return {ACS_AUDIENCE}
        return {self.url.lower(), f"https://localhost:{self.port}"}

    def _check_auth(self, req: RecordedRequest) -> FakeResponse | None:
        auth = req.header("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        grant = self.identity.grant_for(token)
        req.token_resource = grant.resource if grant else None
        if not self.require_auth or req.api == "unknown":
            return None
        graph = req.api == "graph"
        if not token:
            code, msg = (
                ("InvalidAuthenticationToken", "Access token is empty.")
                if graph
                else ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
            )
            return FakeResponse(401, {"error": {"code": code, "message": msg}})
        if grant is None:
            return FakeResponse(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "The access token is invalid (not issued by the fake's identity endpoint).",
                    }
                },
            )
        if grant.resource.rstrip("/").lower() not in self._audiences(req.api):
            return FakeResponse(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationTokenAudience",
                        "message": f"The access token has been obtained for the wrong audience or resource '{grant.resource}'. "
                        f"It should exactly match one of {sorted(self._audiences(req.api))}.",
                    }
                },
            )
        return None

    # ================================================================== ARM
    def set_lro(
        self,
        resource_type: str,
        *,
        polls: int = 1,
        fail: Mapping[str, str] | None = None,
        methods: Iterable[str] = ("PUT", "DELETE"),
    ) -> None:
        """Answer PUT (201 new / 200 existing) and DELETE (202) of ``resource_type``
        (e.g. "Microsoft.Network/networkSecurityGroups") as long-running operations with an
        ``Azure-AsyncOperation`` header: the operation reports InProgress ``polls`` times,
        then Succeeded (or Failed with ``fail`` = {"code", "message"})."""
        with self._lock:
            self._lro[resource_type.lower()] = {
                "polls": polls,
                "fail": dict(fail) if fail else None,
                "methods": {m.upper() for m in methods},
            }

    def add_resource(self, resource_id: str, document: Mapping[str, Any]) -> dict:
        """Seed any ARM resource (stored as given, plus id/name/type/etag and provisioningState)."""
        ap = parse_arm_path(resource_id)
        if ap is None or ap.is_collection:
            raise ValueError(f"not an ARM resource id: {resource_id}")
        doc = copy.deepcopy(dict(document))
        doc["id"] = resource_id
        doc["name"] = ap.name
        doc.setdefault("type", ap.type)
        doc.setdefault("etag", _etag())
        doc.setdefault("properties", {})
        doc["properties"].setdefault("provisioningState", "Succeeded")
        with self._lock:
            self._store(doc)
        return copy.deepcopy(doc)

    def add_vm(
        self,
        resource_id: str,
        location: str,
        nic_ids: Iterable[str],
        tags: Mapping[str, str] | None = None,
        *,
        os_type: str = "Linux",
        vm_size: str = "Standard_D2s_v5",
        power_state: str | None = None,
    ) -> dict:
        """Seed a VM whose properties.networkProfile.networkInterfaces[] are ``nic_ids``
        (first primary); NICs already seeded get their virtualMachine back-reference."""
        ap = parse_arm_path(resource_id)
        assert ap and ap.name, resource_id
        nic_ids = list(nic_ids)
        name = ap.name
        doc = {
            "location": location,
            "tags": dict(tags or {}),
            "properties": {
                "vmId": str(uuid.uuid4()),
                "hardwareProfile": {"vmSize": vm_size},
                "storageProfile": {
                    "imageReference": (
                        {
                            "publisher": "Canonical",
                            "offer": "ubuntu-24_04-lts",
                            "sku": "server",
                            "version": "latest",
                            "exactVersion": "24.04.202601010",
                        }
                        if os_type == "Linux"
                        else {
                            "publisher": "MicrosoftWindowsServer",
                            "offer": "WindowsServer",
                            "sku": "2022-datacenter-azure-edition",
                            "version": "latest",
                            "exactVersion": "20348.2849.241206",
                        }
                    ),
                    "osDisk": {
                        "osType": os_type,
                        "name": f"{name}_OsDisk_1",
                        "createOption": "FromImage",
                        "caching": "ReadWrite",
                        "managedDisk": {
                            "storageAccountType": "Premium_LRS",
                            "id": f"/subscriptions/{ap.subscription}/resourceGroups/{ap.resource_group}/providers/Microsoft.Compute/disks/{name}_OsDisk_1",
                        },
                        "deleteOption": "Delete",
                        "diskSizeGB": 30,
                    },
                    "dataDisks": [],
                },
                "osProfile": {
                    "computerName": name,
                    "adminUsername": "azureuser",
                    **(
                        {"linuxConfiguration": {"disablePasswordAuthentication": True, "provisionVMAgent": True}}
                        if os_type == "Linux"
                        else {"windowsConfiguration": {"provisionVMAgent": True, "enableAutomaticUpdates": True}}
                    ),
                    "secrets": [],
                    "allowExtensionOperations": True,
                },
                "networkProfile": {
                    "networkInterfaces": [
                        {"id": nic, "properties": {"primary": i == 0, "deleteOption": "Detach"}}
                        for i, nic in enumerate(nic_ids)
                    ]
                },
                "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
                "timeCreated": _now_iso(),
            },
        }
        if power_state:
            doc["properties"]["instanceView"] = {
                "statuses": [
                    {"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
                    {"code": f"PowerState/{power_state}", "level": "Info", "displayStatus": f"VM {power_state}"},
                ]
            }
        vm = self.add_resource(resource_id, doc)
        with self._lock:
            for i, nic in enumerate(nic_ids):
                stored = self._arm.get(_key(nic))
                if stored is not None:
                    stored = copy.deepcopy(stored)
                    stored["properties"]["virtualMachine"] = {"id": resource_id}
                    stored["properties"]["primary"] = i == 0
                    stored["etag"] = _etag()
                    self._store(stored)
        return vm

    def add_nic(
        self,
        resource_id: str,
        location: str,
        nsg_id: str | None = None,
        ip_configurations: Iterable[Mapping[str, Any]] | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        vm_id: str | None = None,
        mac_address: str | None = None,
        accelerated_networking: bool = False,
    ) -> dict:
        """Seed a NIC as ARM returns it.

        ``ip_configurations``: ARM-shaped items ({"name", "properties": {...}}) or short ones
        ({"name", "subnet_id", "private_ip", "public_ip_id", "primary"}); default one
        ``ipconfig1`` in ``<vnet-RG>/subnets/default`` with a fresh 10.0.0.x address.
        """
        ap = parse_arm_path(resource_id)
        assert ap and ap.name, resource_id
        default_subnet = (
            f"/subscriptions/{ap.subscription}/resourceGroups/{ap.resource_group}/providers/"
            f"Microsoft.Network/virtualNetworks/vnet-{ap.resource_group}/subnets/default"
        )
        configs = []
        for i, cfg in enumerate(ip_configurations or [{}]):
            cfg = dict(cfg)
            name = cfg.get("name") or f"ipconfig{i + 1}"
            if "properties" in cfg:
                props = copy.deepcopy(cfg["properties"])
            else:
                with self._lock:
                    self._ip_counter += 1
                    ip = cfg.get("private_ip") or f"10.0.{self._ip_counter // 250}.{self._ip_counter % 250 + 4}"
                props = {
                    "privateIPAddress": ip,
                    "privateIPAllocationMethod": cfg.get("allocation", "Dynamic"),
                    "privateIPAddressVersion": "IPv4",
                    "subnet": {"id": cfg.get("subnet_id") or default_subnet},
                    "primary": cfg.get("primary", i == 0),
                }
                if cfg.get("public_ip_id"):
                    props["publicIPAddress"] = {"id": cfg["public_ip_id"]}
            props.setdefault("provisioningState", "Succeeded")
            configs.append(
                {
                    "name": name,
                    "id": f"{resource_id}/ipConfigurations/{name}",
                    "type": "Microsoft.Network/networkInterfaces/ipConfigurations",
                    "properties": props,
                }
            )
        mac = mac_address or "00-22-48-" + "-".join(f"{b:02X}" for b in secrets.token_bytes(3))
        props: dict[str, Any] = {
            "resourceGuid": str(uuid.uuid4()),
            "ipConfigurations": configs,
            "dnsSettings": {
                "dnsServers": [],
                "appliedDnsServers": [],
                "internalDomainNameSuffix": f"{secrets.token_hex(8)}.ax.internal.cloudapp.net",
            },
            "macAddress": mac,
            "primary": True,
            "vnetEncryptionSupported": False,
            "enableAcceleratedNetworking": accelerated_networking,
            "disableTcpStateTracking": False,
            "enableIPForwarding": False,
            "hostedWorkloads": [],
            "tapConfigurations": [],
            "nicType": "Standard",
            "auxiliaryMode": "None",
            "auxiliarySku": "None",
        }
        if nsg_id:
            props["networkSecurityGroup"] = {"id": nsg_id}
        if vm_id:
            props["virtualMachine"] = {"id": vm_id}
        doc = {"location": location, "tags": dict(tags or {}), "kind": "Regular", "properties": props}
        return self.add_resource(resource_id, doc)

    def add_nsg(
        self,
        resource_id: str,
        location: str,
        security_rules: Iterable[Mapping[str, Any]] = (),
        *,
        tags: Mapping[str, str] | None = None,
    ) -> dict:
        """Seed an NSG (default rules added; ``security_rules`` ARM-shaped {"name", "properties"})."""
        doc = {
            "location": location,
            "tags": dict(tags or {}),
            "properties": {
                "resourceGuid": str(uuid.uuid4()),
                "securityRules": [copy.deepcopy(dict(r)) for r in security_rules],
            },
        }
        with self._lock:
            doc = self._normalise(resource_id, doc, None, parse_arm_path(resource_id))  # type: ignore[arg-type]
        return self.add_resource(resource_id, doc)

    def get_resource(self, resource_id: str) -> dict | None:
        """The stored resource (as a GET would answer it), or None; ids ignore case."""
        with self._lock:
            doc = self._arm.get(_key(resource_id))
            return self._present(doc) if doc is not None else None

    def resources(self, resource_type: str | None = None) -> list[dict]:
        with self._lock:
            return [
                self._present(d)
                for d in self._arm.values()
                if resource_type is None or d.get("type", "").lower() == resource_type.lower()
            ]

    def resource_history(self, resource_id: str) -> list[dict]:
        """Every stored version of a resource, seed first."""
        with self._lock:
            return copy.deepcopy(self._history.get(_key(resource_id), []))

    def delete_resource(self, resource_id: str) -> None:
        with self._lock:
            self._arm.pop(_key(resource_id), None)

    # ARM internals ---------------------------------------------------------
    def _store(self, doc: dict) -> None:
        key = _key(doc["id"])
        self._arm[key] = doc
        self._history.setdefault(key, []).append(copy.deepcopy(doc))

    def _present(self, doc: dict) -> dict:
        out = copy.deepcopy(doc)
        if out.get("type", "").lower() == _NSG:
            me = _key(out["id"])
            nics = [
                {"id": d["id"]}
                for d in self._arm.values()
                if d.get("type", "").lower() == _NIC
                and _key(((d.get("properties") or {}).get("networkSecurityGroup") or {}).get("id") or "/") == me
            ]
            if nics:
                out.setdefault("properties", {})["networkInterfaces"] = nics
            else:
                out.get("properties", {}).pop("networkInterfaces", None)
        return out

    def _arm_answer(self, req: RecordedRequest) -> FakeResponse:
        m = re.match(
            r"^/subscriptions/[^/]+/providers/[^/]+/locations/[^/]+/(?:operations|operationResults)/([^/]+)$",
            req.path,
            re.I,
        )
        if m and req.method == "GET" and m.group(1) in self._operations:
            return self._operation_status(m.group(1))
        ap = parse_arm_path(req.path)
        if req.method == "POST":
            return FakeResponse(204)  # ARM actions (alert dismiss/resolve, ...): recorded, no content
        if ap is None:
            return _arm_error(
                404,
                "InvalidResourceId" if req.method != "GET" else "ResourceNotFound",
                f"The resource path '{req.path}' is not a valid ARM resource id.",
            )
        if req.method in ("GET", "HEAD"):
            return self._arm_get(req, ap)
        if req.method == "PUT":
            return self._arm_put(req, ap)
        if req.method == "PATCH":
            return self._arm_patch(req, ap)
        if req.method == "DELETE":
            return self._arm_delete(req, ap)
        return _arm_error(405, "MethodNotAllowed", f"{req.method} is not supported.")

    def _not_found(self, ap: ArmPath) -> FakeResponse:
        if ap.type == "Microsoft.Resources/resourceGroups":
            return _arm_error(404, "ResourceGroupNotFound", f"Resource group '{ap.name}' could not be found.")
        return _arm_error(
            404,
            "ResourceNotFound",
            f"The Resource '{ap.type}/{ap.name}' under resource group '{ap.resource_group}' was not found. "
            "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
        )

    def _inline_parent(self, ap: ArmPath) -> tuple[dict, str] | None:
        segs = ap.path.strip("/").split("/")
        coll = segs[-1] if ap.is_collection else segs[-2]
        prop = _INLINE_CHILDREN.get(coll.lower())
        if prop is None:
            return None
        parent_path = "/" + "/".join(segs[:-1] if ap.is_collection else segs[:-2])
        parent = self._arm.get(_key(parent_path))
        return (parent, prop) if parent is not None else None

    def _arm_get(self, req: RecordedRequest, ap: ArmPath) -> FakeResponse:
        doc = self._arm.get(_key(req.path))
        if doc is not None:
            return FakeResponse(200, self._present(doc), {"ETag": doc.get("etag", "")})
        inline = self._inline_parent(ap)
        if inline is not None:
            parent, prop = inline
            items = (parent.get("properties") or {}).get(prop) or []
            if ap.is_collection:
                return FakeResponse(200, {"value": copy.deepcopy(items)})
            for item in items:
                if str(item.get("name", "")).lower() == (ap.name or "").lower():
                    return FakeResponse(200, copy.deepcopy(item))
            return self._not_found(ap)
        if ap.is_collection:
            coll = _key(req.path)
            found = []
            for k, d in self._arm.items():
                if k.rsplit("/", 1)[0] == coll or (
                    ap.resource_group is None
                    and d.get("type", "").lower() == ap.type.lower()
                    and k.startswith(f"/subscriptions/{ap.subscription.lower()}/")
                ):
                    found.append(d)
            return FakeResponse(200, {"value": [self._present(d) for d in found]})
        return self._not_found(ap)

    def _precondition(self, req: RecordedRequest, old: dict | None) -> FakeResponse | None:
        if_match = req.header("If-Match")
        if if_match and if_match != "*" and (old is None or old.get("etag") != if_match):
            return _arm_error(
                412, "PreconditionFailed", "The condition specified using HTTP conditional header(s) is not met."
            )
        if if_match == "*" and old is None:
            return self._not_found(parse_arm_path(req.path))  # type: ignore[arg-type]
        if req.header("If-None-Match") == "*" and old is not None:
            return _arm_error(412, "PreconditionFailed", "The resource already exists.")
        return None

    def _normalise(self, rid: str, body: dict, old: dict | None, ap: ArmPath) -> dict:
        """Build the stored document of a PUT: server-side fields added or kept."""
        rtype = (old or {}).get("type") or ap.type
        t = rtype.lower()
        doc: dict[str, Any] = {"id": (old or {}).get("id") or rid, "name": ap.name, "type": rtype}
        for k, v in body.items():
            if k not in ("id", "name", "type", "etag"):
                doc[k] = copy.deepcopy(v)
        if "location" not in doc and old and "location" in old:
            doc["location"] = old["location"]
        props = doc.get("properties")
        if not isinstance(props, dict):
            props = doc["properties"] = {}
        old_props = (old or {}).get("properties") or {}
        for k in _READ_ONLY.get(t, _READ_ONLY["*"]):
            if k not in props and k in old_props:
                props[k] = copy.deepcopy(old_props[k])
        etag = _etag()
        doc["etag"] = etag
        props["provisioningState"] = "Succeeded"
        if t == _NIC:
            for k in ("networkSecurityGroup", "virtualMachine", "privateEndpoint", "dscpConfiguration"):
                if props.get(k) is None:
                    props.pop(k, None)
                else:
                    props[k] = _ref(props[k])
            dns = props.get("dnsSettings")
            if isinstance(dns, dict):
                for k in _READ_ONLY_DNS:
                    if k not in dns and k in (old_props.get("dnsSettings") or {}):
                        dns[k] = copy.deepcopy(old_props["dnsSettings"][k])
            for cfg in props.get("ipConfigurations") or []:
                cp = cfg.setdefault("properties", {})
                for k in ("subnet", "publicIPAddress"):
                    if cp.get(k) is not None:
                        cp[k] = _ref(cp[k])
        for child in ("ipConfigurations", "securityRules"):
            if child in props:
                self._normalise_children(doc["id"], child, props, old_props, etag, rtype)
        if t == _NSG:
            props.setdefault("defaultSecurityRules", _default_security_rules(doc["id"]))
            props.setdefault("resourceGuid", str(uuid.uuid4()))
            props.pop("networkInterfaces", None)  # computed on read
        return doc

    @staticmethod
    def _normalise_children(rid: str, child: str, props: dict, old_props: dict, etag: str, rtype: str) -> None:
        old_items = {str(i.get("name", "")).lower(): i for i in old_props.get(child) or [] if isinstance(i, dict)}
        items = []
        for item in props.get(child) or []:
            item = dict(item)
            name = item.get("name")
            item["id"] = f"{rid}/{child}/{name}"
            item["etag"] = etag
            item["type"] = f"{rtype}/{child}"
            ip = item.setdefault("properties", {})
            old_ip = (old_items.get(str(name).lower()) or {}).get("properties") or {}
            for k in _READ_ONLY_CHILD.get(child, ()):
                if k not in ip and k in old_ip:
                    ip[k] = copy.deepcopy(old_ip[k])
            ip["provisioningState"] = "Succeeded"
            items.append(item)
        props[child] = items

    def _validate(self, doc: dict) -> FakeResponse | None:
        if doc.get("type", "").lower() == _NIC:
            nsg_id = ((doc.get("properties") or {}).get("networkSecurityGroup") or {}).get("id")
            if nsg_id:
                nsg = self._arm.get(_key(nsg_id))
                if nsg is None or _norm_location(nsg.get("location")) != _norm_location(doc.get("location")):
                    return _arm_error(
                        400,
                        "InvalidResourceReference",
                        f"Resource {nsg_id} referenced by resource {doc['id']} was not found. Please make sure "
                        "that the referenced resource exists, and that both resources are in the same region.",
                    )
        return None

    def _lro_response(self, ap: ArmPath, key: str, kind: str, status: int, body: Any, cfg: dict) -> FakeResponse:
        op_id = str(uuid.uuid4())
        location = _norm_location((self._arm.get(key) or {}).get("location")) or "global"
        namespace = ap.type.split("/")[0]
        self._operations[op_id] = {
            "key": key,
            "kind": kind,
            "remaining": cfg["polls"],
            "fail": cfg["fail"],
            "start": _now_iso(),
        }
        url = f"{self.url}/subscriptions/{ap.subscription}/providers/{namespace}/locations/{location}/operations/{op_id}?api-version=2024-05-01"
        return FakeResponse(status, body, {"Azure-AsyncOperation": url, "retry-after-ms": str(self.lro_retry_after_ms)})

    def _operation_status(self, op_id: str) -> FakeResponse:
        op = self._operations[op_id]
        base = {"id": op_id, "name": op_id, "startTime": op["start"]}
        headers = {"retry-after-ms": str(self.lro_retry_after_ms)}
        if op.get("done"):
            return FakeResponse(200, op["done"], headers)
        if op["remaining"] > 0:
            op["remaining"] -= 1
            return FakeResponse(200, {**base, "status": "InProgress"}, headers)
        doc = self._arm.get(op["key"])
        if op["fail"]:
            if doc is not None and op["kind"] == "put":
                doc["properties"]["provisioningState"] = "Failed"
            result = {**base, "status": "Failed", "endTime": _now_iso(), "error": op["fail"]}
        else:
            if op["kind"] == "put" and doc is not None:
                doc["properties"]["provisioningState"] = "Succeeded"
                self._history.setdefault(op["key"], []).append(copy.deepcopy(doc))
            elif op["kind"] == "delete":
                self._arm.pop(op["key"], None)
            result = {**base, "status": "Succeeded", "endTime": _now_iso()}
        op["done"] = result
        return FakeResponse(200, result, headers)

    def _arm_put(self, req: RecordedRequest, ap: ArmPath) -> FakeResponse:
        if ap.is_collection or not ap.name:
            return _arm_error(405, "MethodNotAllowed", "PUT needs a resource id, not a collection.")
        if not isinstance(req.body, dict):
            return _arm_error(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            )
        inline = self._inline_parent(ap)
        if inline is not None and _key(req.path) not in self._arm:
            return self._arm_put_inline(req, ap, *inline)
        key = _key(req.path)
        old = self._arm.get(key)
        bad = self._precondition(req, old)
        if bad is not None:
            return bad
        doc = self._normalise(req.path, req.body, old, ap)
        bad = self._validate(doc)
        if bad is not None:
            return bad
        status = 200 if old is not None else 201
        cfg = self._lro.get(doc["type"].lower())
        if cfg and "PUT" in cfg["methods"]:
            doc["properties"]["provisioningState"] = "Updating" if old is not None else "Creating"
            self._store(doc)
            return self._lro_response(ap, key, "put", status, self._present(doc), cfg)
        self._store(doc)
        return FakeResponse(status, self._present(doc), {"ETag": doc["etag"]})

    def _arm_put_inline(self, req: RecordedRequest, ap: ArmPath, parent: dict, prop: str) -> FakeResponse:
        props = parent.setdefault("properties", {})
        items = props.setdefault(prop, [])
        body = copy.deepcopy(req.body)
        body["name"] = ap.name
        existing = next((i for i, x in enumerate(items) if str(x.get("name", "")).lower() == ap.name.lower()), None)  # type: ignore[union-attr]
        new_props = dict(props)
        new_items = list(items)
        if existing is None:
            new_items.append(body)
        else:
            new_items[existing] = body
        new_props[prop] = new_items
        new_parent = {k: v for k, v in parent.items() if k not in ("id", "name", "type", "etag")}
        new_parent["properties"] = new_props
        parent_ap = parse_arm_path(parent["id"])
        doc = self._normalise(parent["id"], new_parent, parent, parent_ap)  # type: ignore[arg-type]
        bad = self._validate(doc)
        if bad is not None:
            return bad
        self._store(doc)
        child = next(x for x in doc["properties"][prop] if str(x.get("name", "")).lower() == ap.name.lower())  # type: ignore[union-attr]
        return FakeResponse(201 if existing is None else 200, copy.deepcopy(child))

    def _arm_patch(self, req: RecordedRequest, ap: ArmPath) -> FakeResponse:
        key = _key(req.path)
        old = self._arm.get(key)
        if old is None:
            return self._not_found(ap)
        bad = self._precondition(req, old)
        if bad is not None:
            return bad
        if not isinstance(req.body, dict):
            return _arm_error(
                400, "InvalidRequestContent", "The request content was invalid and could not be deserialized."
            )
        doc = copy.deepcopy(old)
        for k, v in req.body.items():
            if k in ("id", "name", "type", "etag"):
                continue
            if k == "tags":
                doc["tags"] = copy.deepcopy(v)  # PATCH replaces the tag set
            elif isinstance(v, dict) and isinstance(doc.get(k), dict):
                doc[k] = _deep_merge(doc[k], v)
            else:
                doc[k] = copy.deepcopy(v)
        doc["etag"] = _etag()
        bad = self._validate(doc)
        if bad is not None:
            return bad
        self._store(doc)
        return FakeResponse(200, self._present(doc), {"ETag": doc["etag"]})

    def _arm_delete(self, req: RecordedRequest, ap: ArmPath) -> FakeResponse:
        key = _key(req.path)
        old = self._arm.get(key)
        if old is None:
            inline = self._inline_parent(ap)
            if inline is not None and not ap.is_collection:
                parent, prop = inline
                items = parent.get("properties", {}).get(prop) or []
                kept = [x for x in items if str(x.get("name", "")).lower() != (ap.name or "").lower()]
                if len(kept) != len(items):
                    parent["properties"][prop] = kept
                    parent["etag"] = _etag()
                    self._history.setdefault(_key(parent["id"]), []).append(copy.deepcopy(parent))
                    return FakeResponse(200)
            return FakeResponse(204)
        if old.get("type", "").lower() == _NSG:
            users = [
                d["id"]
                for d in self._arm.values()
                if d.get("type", "").lower() == _NIC
                and _key(((d.get("properties") or {}).get("networkSecurityGroup") or {}).get("id") or "/") == key
            ]
            if users:
                return _arm_error(
                    400,
                    "InUseNetworkSecurityGroupCannotBeDeleted",
                    f"Network security group {old['id']} cannot be deleted because it is in use by the following resources: {users}.",
                )
        cfg = self._lro.get(old.get("type", "").lower())
        if cfg and "DELETE" in cfg["methods"]:
            return self._lro_response(ap, key, "delete", 202, None, cfg)
        self._arm.pop(key, None)
        return FakeResponse(200)

    # ================================================================== Graph
    def add_user(
        self,
        id: str,
        upn: str,
        user_type: str = "Member",
        enabled: bool = True,
        forbidden: bool = False,
        *,
        display_name: str | None = None,
        mail: str | None = None,
        **extra: Any,
    ) -> dict:
        """Seed an Entra ID user. ``forbidden``: PATCH/revoke answer 403 (a privileged admin
        the app may not touch); GET still works."""
        data = {
            "id": id,
            "userPrincipalName": upn,
            "displayName": display_name or upn.split("@")[0],
            "givenName": None,
            "surname": None,
            "jobTitle": None,
            "mail": mail if mail is not None else (None if user_type == "Guest" else upn),
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "businessPhones": [],
            "userType": user_type,
            "accountEnabled": enabled,
            **extra,
        }
        with self._lock:
            self._users[id.lower()] = {"data": data, "forbidden": forbidden, "revocations": 0, "patches": []}
        return copy.deepcopy(data)

    def add_mailbox(self, address: str) -> dict:
        """A user that can send mail (the MAIL_SENDER mailbox)."""
        return self.add_user(str(uuid.uuid5(uuid.NAMESPACE_DNS, address.lower())), address, mail=address)

    def set_user_forbidden(self, id_or_upn: str, forbidden: bool = True) -> None:
        with self._lock:
            rec = self._find_user(id_or_upn)
            if rec is None:
                raise KeyError(id_or_upn)
            rec["forbidden"] = forbidden

    def get_user(self, id_or_upn: str) -> dict | None:
        """The user's full record (all properties), or None."""
        with self._lock:
            rec = self._find_user(id_or_upn)
            return copy.deepcopy(rec["data"]) if rec else None

    def sign_in_revocations(self, id_or_upn: str) -> int:
        """How many times revokeSignInSessions succeeded for the user."""
        with self._lock:
            rec = self._find_user(id_or_upn)
            return rec["revocations"] if rec else 0

    def add_service_principal(
        self, id: str, app_id: str, display_name: str, *, enabled: bool = True, forbidden: bool = False, **extra: Any
    ) -> dict:
        data = {
            "id": id,
            "appId": app_id,
            "displayName": display_name,
            "accountEnabled": enabled,
            "servicePrincipalType": "Application",
            "appDisplayName": display_name,
            "servicePrincipalNames": [app_id],
            "tags": [],
            **extra,
        }
        with self._lock:
            self._sps[id.lower()] = {"data": data, "forbidden": forbidden, "patches": []}
        return copy.deepcopy(data)

    def get_service_principal(self, id_or_app_id: str) -> dict | None:
        with self._lock:
            rec = self._find_sp(id_or_app_id)
            return copy.deepcopy(rec["data"]) if rec else None

    def sent_mail(self) -> list[SentMail]:
        with self._lock:
            return list(self._mail)

    def _find_user(self, key: str) -> dict | None:
        k = key.lower()
        rec = self._users.get(k)
        if rec is not None:
            return rec
        for rec in self._users.values():
            d = rec["data"]
            if str(d.get("userPrincipalName") or "").lower() == k or str(d.get("mail") or "").lower() == k:
                return rec
        return None

    def _find_sp(self, key: str) -> dict | None:
        k = key.lower()
        rec = self._sps.get(k)
        if rec is not None:
            return rec
        return next((r for r in self._sps.values() if str(r["data"].get("appId", "")).lower() == k), None)

    def _graph_context(self, req: RecordedRequest, what: str) -> str:
        version = req.path.split("/")[1]
        return f"{self.url}/{version}/$metadata#{what}"

    def _graph_answer(self, req: RecordedRequest) -> FakeResponse:
        p = req.path
        m = re.match(r"^/(?:v1\.0|beta)/users/([^/]+)$", p)
        if m:
            return self._graph_user(req, m.group(1))
        m = re.match(r"^/(?:v1\.0|beta)/users/([^/]+)/revokeSignInSessions$", p, re.I)
        if m and req.method == "POST":
            rec = self._find_user(m.group(1))
            if rec is None:
                return _graph_not_found(m.group(1))
            if rec["forbidden"]:
                return _graph_forbidden()
            rec["revocations"] += 1
            return FakeResponse(200, {"@odata.context": self._graph_context(req, "Edm.Boolean"), "value": True})
        m = re.match(r"^/(?:v1\.0|beta)/users/([^/]+)/sendMail$", p, re.I)
        if m and req.method == "POST":
            return self._graph_send_mail(req, m.group(1))
        m = re.match(r"^/(?:v1\.0|beta)/servicePrincipals(?:/([^/(]+)|\(appId='([^']+)'\))$", p)
        if m:
            return self._graph_sp(req, m.group(1) or m.group(2))
        return _graph_error(
            400,
            "BadRequest",
            f"Resource not found for the segment in '{req.method} {p}' (azure_fake has no such Graph route).",
        )

    def _graph_user(self, req: RecordedRequest, key: str) -> FakeResponse:
        rec = self._find_user(key)
        if rec is None:
            return _graph_not_found(key)
        if req.method == "GET":
            data = rec["data"]
            select = [s.strip() for s in req.query.get("$select", "").split(",") if s.strip()]
            names = select or list(_GRAPH_USER_DEFAULT_PROPERTIES)
            out = {"@odata.context": self._graph_context(req, "users/$entity")}
            for n in names:
                match = next((k for k in data if k.lower() == n.lower()), None)
                out[match or n] = copy.deepcopy(data.get(match)) if match else None
            return FakeResponse(200, out)
        if req.method == "PATCH":
            return self._graph_patch(req, rec)
        return _graph_error(405, "Request_BadRequest", f"{req.method} is not supported on a user in azure_fake.")

    def _graph_sp(self, req: RecordedRequest, key: str) -> FakeResponse:
        rec = self._find_sp(key)
        if rec is None:
            return _graph_not_found(key)
        if req.method == "GET":
            return FakeResponse(
                200,
                {"@odata.context": self._graph_context(req, "servicePrincipals/$entity"), **copy.deepcopy(rec["data"])},
            )
        if req.method == "PATCH":
            return self._graph_patch(req, rec)
        return _graph_error(
            405, "Request_BadRequest", f"{req.method} is not supported on a service principal in azure_fake."
        )

    @staticmethod
    def _graph_patch(req: RecordedRequest, rec: dict) -> FakeResponse:
        """PATCH of a user or service principal: 403 when forbidden, else merge and answer 204 as Graph does."""
        if rec["forbidden"]:
            return _graph_forbidden()
        if not isinstance(req.body, dict):
            return _graph_error(400, "BadRequest", "Empty Payload. JSON content expected.")
        changes = {k: v for k, v in req.body.items() if not k.startswith("@odata")}
        rec["data"].update(copy.deepcopy(changes))
        rec["patches"].append(changes)
        return FakeResponse(204)

    def _graph_send_mail(self, req: RecordedRequest, sender: str) -> FakeResponse:
        if self._find_user(sender) is None:
            return _graph_error(404, "ErrorInvalidUser", f"The requested user '{sender}' is invalid.")
        body = req.body if isinstance(req.body, dict) else {}
        message = body.get("message") or body.get("Message")
        if not isinstance(message, dict):
            return _graph_error(400, "ErrorInvalidRequest", "The message is missing from the request body.")
        recipients = [r for key in ("toRecipients", "ccRecipients", "bccRecipients") for r in message.get(key) or []]
        if not recipients or not all(((r or {}).get("emailAddress") or {}).get("address") for r in recipients):
            return _graph_error(400, "ErrorInvalidRecipients", "At least one recipient is not valid.")
        self._mail.append(SentMail(sender, copy.deepcopy(message), body.get("saveToSentItems"), time.time()))
        return FakeResponse(202)

    # ================================================================== Log Analytics
    @staticmethod
    def la_table(columns: Iterable[Any], rows: Iterable[Iterable[Any]], name: str = "PrimaryResult") -> dict:
        """A Log Analytics table; columns as {"name","type"} dicts or (name, type) pairs."""
        cols = [c if isinstance(c, dict) else {"name": c[0], "type": c[1]} for c in columns]
        return {"name": name, "columns": cols, "rows": [list(r) for r in rows]}

    def set_log_analytics_tables(
        self,
        tables: Iterable[Mapping[str, Any]],
        *,
        workspace: str | None = None,
        partial_error: Mapping[str, Any] | str | None = None,
    ) -> None:
        """Answer queries (to ``workspace``, or any) with these tables; ``partial_error``
        adds an "error" beside them (the SDK then returns a LogsQueryPartialResult)."""
        if isinstance(partial_error, str):
            partial_error = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "details": [{"code": "EngineError", "message": partial_error}],
            }
        with self._lock:
            self._la_tables[(workspace or "*").lower()] = [copy.deepcopy(dict(t)) for t in tables]
            self._la_error[(workspace or "*").lower()] = copy.deepcopy(dict(partial_error)) if partial_error else None

    def log_analytics_queries(self) -> list[dict]:
        """[{"workspace", "query", "timespan", "body"}] for each query received (batch items included)."""
        out = []
        for r in self.requests(api="logs"):
            m = re.match(r"^/v1/workspaces/([^/]+)/query$", r.path)
            if m and isinstance(r.body, dict):
                out.append(
                    {
                        "workspace": m.group(1),
                        "query": r.body.get("query"),
                        "timespan": r.body.get("timespan"),
                        "body": r.body,
                    }
                )
            elif r.path == "/v1/$batch" and isinstance(r.body, dict):
                for item in r.body.get("requests") or []:
                    b = item.get("body") or {}
                    out.append(
                        {
                            "workspace": item.get("workspace"),
                            "query": b.get("query"),
                            "timespan": b.get("timespan"),
                            "body": b,
                        }
                    )
        return out

    def _la_result(self, workspace: str, body: dict) -> FakeResponse:
        if self.log_analytics_handler is not None:
            return _coerce(self.log_analytics_handler(workspace, copy.deepcopy(body)))
        key = workspace.lower() if workspace.lower() in self._la_tables else "*"
        tables = self._la_tables.get(key) or [{"name": "PrimaryResult", "columns": [], "rows": []}]
        result: dict[str, Any] = {"tables": copy.deepcopy(tables)}
        if self._la_error.get(key):
            result["error"] = copy.deepcopy(self._la_error[key])
        return FakeResponse(200, result)

    def _logs_answer(self, req: RecordedRequest) -> FakeResponse:
        m = re.match(r"^/v1/workspaces/([^/]+)/query$", req.path)
        if m and req.method == "POST":
            if not isinstance(req.body, dict) or not req.body.get("query"):
                return FakeResponse(
                    400,
                    {
                        "error": {
                            "code": "BadArgumentError",
                            "message": "The request had some invalid properties",
                            "details": [{"code": "QueryValidationError", "message": "query is required"}],
                        }
                    },
                )
            return self._la_result(m.group(1), req.body)
        if req.path == "/v1/$batch" and req.method == "POST":
            responses = []
            for item in (req.body or {}).get("requests") or []:
                r = self._la_result(item.get("workspace") or "", item.get("body") or {})
                responses.append(
                    {
                        "id": item.get("id"),
                        "status": r.status,
                        "body": r.body,
                        "headers": {"Content-Type": "application/json; charset=utf-8"},
                    }
                )
            return FakeResponse(200, {"responses": responses})
        return FakeResponse(
            404, {"error": {"code": "PathNotFoundError", "message": f"The requested path does not exist: {req.path}"}}
        )

    # ================================================================== ACS
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
                "time": _now_iso(),
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
            call = CallRecord(
                call_connection_id=str(uuid.uuid4()),
                server_call_id="aHR0cHM6Ly9mYWtl" + secrets.token_urlsafe(24),
                correlation_id=str(uuid.uuid4()),
                request=copy.deepcopy(body),
            )
            self._calls[call.call_connection_id] = call
            return FakeResponse(201, call.properties())
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


# --------------------------------------------------------------------------
# module helpers
# --------------------------------------------------------------------------


def _api_for(path: str) -> str:
    low = path.lower()
    if low.startswith(("/v1.0/", "/beta/")):
        return "graph"
    if low.startswith("/v1/workspaces/") or low == "/v1/$batch":
        return "logs"
    if low.startswith("/calling/"):
        return "acs"
    if low.startswith(("/subscriptions", "/providers/", "/tenants")):
        return "arm"
    return "unknown"


def _coerce(result: Any) -> FakeResponse:
    if isinstance(result, FakeResponse):
        return result
    if isinstance(result, tuple):
        return FakeResponse(*result)
    return FakeResponse(200, result)


def _arm_error(status: int, code: str, message: str) -> FakeResponse:
    return FakeResponse(status, {"error": {"code": code, "message": message}})


def _graph_error(status: int, code: str, message: str) -> FakeResponse:
    rid = str(uuid.uuid4())
    return FakeResponse(
        status,
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                    "request-id": rid,
                    "client-request-id": rid,
                },
            }
        },
        {"request-id": rid},
    )


def _graph_not_found(key: str) -> FakeResponse:
    return _graph_error(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
    )


def _graph_forbidden() -> FakeResponse:
    return _graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _system_ca_pem() -> bytes:
    """The CA certificates this process trusts today (env override, certifi, or the OS bundle)."""
    candidates = [os.environ.get("SSL_CERT_FILE"), os.environ.get("REQUESTS_CA_BUNDLE")]
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:  # pragma: no cover
        pass
    candidates.append(ssl.get_default_verify_paths().cafile)
    for path in candidates:
        if path and os.path.isfile(path) and "azure-fake-" not in path:
            with open(path, "rb") as f:
                return f.read()
    return b""


# Deadline helper for tests that wait on background work.
def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)
