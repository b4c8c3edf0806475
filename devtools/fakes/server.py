"""The fake's loopback HTTPS server: TLS from a throw-away ``trustme`` CA, the request log, fault injection.

``FakeServer`` is what every faked service shares: one port for every API (plus the plain-HTTP
managed-identity endpoint next to it), every request recorded (``requests()``, ``writes()``), faults
injected per method and path (``inject()``: a status such as 429/5xx with its headers, a delay longer
than a client's timeout, a dropped connection), extra routes (``route()``), and ``reset()`` between
tests. The services (``devtools.fakes.arm``, ``graph``, ``log_analytics``, ``acs``) extend it;
``devtools.fakes.AzureFake`` puts them together and decides which one answers (``_answer``).
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from devtools.fakes.identity import ManagedIdentityEndpoint, TokenGrant
from devtools.fakes.records import FakeResponse, Fault, Headers, RecordedRequest, parse_body
from devtools.fakes.transport import Server, serve

RouteHandler = Callable[[RecordedRequest, "re.Match[str]"], Any]


class FakeServer:
    """The HTTPS server, its request log, faults and extra routes; services subclass it (see module doc)."""

    def __init__(self, *, host: str = "127.0.0.1"):
        self.host = host
        self.identity = ManagedIdentityEndpoint(host=host)
        self._lock = threading.RLock()
        self._abort = threading.Event()
        self._server: Server | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._ca_pem_path: str | None = None
        self._bundle_path: str | None = None
        self._ssl_server_ctx: ssl.SSLContext | None = None
        self.errors: list[str] = []  # tracebacks of exceptions raised while answering
        self._init_state()

    # ------------------------------------------------------------------ lifecycle
    def _init_state(self) -> None:
        """The state ``reset()`` starts afresh; each service extends it (and calls super)."""
        self._log: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._routes: list[tuple[frozenset[str] | None, re.Pattern[str], RouteHandler]] = []
        # issue 15: configured latency per API ("arm", "graph", "acs", "logs"), every request
        self._latency: dict[str, float] = {}

    def start(self) -> Self:
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
        self._server = Server((self.host, 0), self, "api", ctx)
        serve(self._server)
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self) -> None:
        """Fresh state (each service's, plus faults, routes and log).

        Issued tokens survive (credentials cache them across tests). Requests still
        delayed by an injected fault are answered by a dropped connection.
        """
        with self._lock:
            self._abort.set()
            self._abort = threading.Event()
            self._init_state()
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

    # -- issue 15: latency -------------------------------------------------------------------------
    def set_latency(self, api: str, seconds: float) -> None:
        """Answer every request of ``api`` ("arm", "graph", "acs", "logs") ``seconds`` late, as the
        real service's round trip would be (0 removes it). Concurrent requests wait side by side, so
        clients that call in parallel see the parallelism. Cleared by reset()."""
        with self._lock:
            if seconds > 0:
                self._latency[api] = float(seconds)
            else:
                self._latency.pop(api, None)

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
        api = "token" if kind == "token" else api_for(path)
        req = RecordedRequest(
            method.upper(),
            path,
            raw_path,
            dict(parse_qsl(split.query, keep_blank_values=True)),
            headers,
            parse_body(raw),
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
        latency = self._latency.get(api, 0.0)  # issue 15: waited outside the lock, side by side
        if latency and abort.wait(latency):
            return None
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
        """The answer to a request no fault took (called under the lock); ``AzureFake`` routes it."""
        raise NotImplementedError


def api_for(path: str) -> str:
    low = path.lower()
    if low.startswith(("/v1.0/", "/beta/")):
        return "graph"
    if low.startswith("/v1/workspaces/") or low == "/v1/$batch":
        return "logs"
    if low.startswith("/calling/"):
        return "acs"
    if low.startswith(("/subscriptions", "/providers/", "/tenants")):
        return "arm"
    if low.startswith("/secrets/"):  # issue 16: Key Vault secrets
        return "keyvault"
    if low.startswith("/powerautomate/"):  # issue 16: Teams Workflows webhooks
        return "teams"
    if ENTRA_TOKEN_PATH.match(low):  # issue 11: Entra ID's token endpoint, /{tenant}/oauth2/v2.0/token
        return "token"
    return "unknown"


ENTRA_TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$", re.IGNORECASE)


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
