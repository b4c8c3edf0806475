"""Issue 16: a loopback HTTP server in front of the in-process app, signing the browser in as App Service would.

A real browser (headless Chromium in tests/console) cannot call ``LocalFunctionsRuntime`` directly: this
serves ``http://127.0.0.1:<port>/api/...`` by forwarding each request into the runtime, adding the
``X-MS-CLIENT-PRINCIPAL`` header of the role chosen for the test (``sign_in``), as App Service
Authentication adds it in Azure. The browser's ``Origin`` is mapped onto the app's own origin, as a
front end forwarding to the app would. Requests are served one at a time (the runtime is not
re-entrant from several threads).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import urlsplit

from shared.access import principal_header


class ConsoleHost:
    """``with ConsoleHost(runtime) as host: host.sign_in("lead@…", ["Approver"]); host.url("/api/console")``."""

    def __init__(self, runtime: Any):
        self.runtime = runtime
        self.principal: str | None = None
        self.requests: list[tuple[str, str, int]] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet; the request list is the log
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() != "x-ms-client-principal"}
                if headers.get("Origin") == host.origin:
                    headers["Origin"] = host.runtime.base_url
                if host.principal:
                    headers["X-MS-CLIENT-PRINCIPAL"] = host.principal
                resp = host.runtime.http(self.command, self.path, body=body, headers=headers)
                data = resp.get_body() or b""
                host.requests.append((self.command, urlsplit(self.path).path, resp.status_code))
                self.send_response(resp.status_code)
                sent = set()
                for name, value in resp.headers.items():
                    if name.lower() in ("content-length", "transfer-encoding", "connection"):
                        continue
                    self.send_header(name, value)
                    sent.add(name.lower())
                if "content-type" not in sent and resp.mimetype:
                    self.send_header("Content-Type", f"{resp.mimetype}; charset={resp.charset or 'utf-8'}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="console-host", daemon=True)

    def sign_in(self, name: str | None, roles: list[str] | tuple[str, ...] = ()) -> None:
        """Every following request carries this principal (None: signed out)."""
        self.principal = principal_header(name, list(roles)) if name else None

    def url(self, path: str) -> str:
        return self.origin + path

    def __enter__(self) -> ConsoleHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
