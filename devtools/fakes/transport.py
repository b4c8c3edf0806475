"""The fake's HTTP(S) plumbing: one threaded server per port, TLS wrapped per connection, TCP_NODELAY.

A server hands every request to its app's ``handle_request(kind, method, raw_path, headers, body)``;
an answer of None drops the connection (an injected fault, or a request aborted by reset/stop).
"""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from devtools.fakes.records import FakeResponse, Headers


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
            server = cast(Server, self.server)
            resp = server.app.handle_request(server.kind, self.command, self.path, headers, body)
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


class Server(ThreadingHTTPServer):
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


def serve(server: Server) -> threading.Thread:
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        daemon=True,
        name=f"azure-fake-{server.kind}-{server.server_address[1]}",
    )
    thread.start()
    return thread
