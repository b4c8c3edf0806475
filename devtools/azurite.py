"""Start and stop the Azurite storage emulator for tests and local runs.

Azurite comes from npm (``package.json`` pins it; ``npm ci`` installs it in
``node_modules/``). ``Azurite().start()`` runs ``node_modules/.bin/azurite``
in memory on free loopback ports, in its own process group, waits until the
blob, queue and table endpoints answer HTTP, and keeps its output in a temp
file for failure reports. ``stop()`` ends the whole process group.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["ACCOUNT_KEY", "ACCOUNT_NAME", "Azurite", "AzuriteError", "find_azurite"]

# The well-known development storage account (public, documented, not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

REPO_ROOT = Path(__file__).resolve().parent.parent


class AzuriteError(RuntimeError):
    """Azurite is missing, did not start, or exited."""


def find_azurite(repo_root: str | os.PathLike | None = None) -> str | None:
    """Path of the repo's ``node_modules/.bin/azurite`` (or AZURITE_BIN), or None."""
    explicit = os.environ.get("AZURITE_BIN")
    if explicit:
        return explicit if os.path.isfile(explicit) else None
    candidate = Path(repo_root or REPO_ROOT) / "node_modules" / ".bin" / "azurite"
    return str(candidate) if candidate.is_file() else None


def _free_ports(host: str, count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Azurite:
    """One in-memory Azurite (blob, queue, table) on free loopback ports."""

    def __init__(
        self,
        *,
        repo_root: str | os.PathLike | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 30.0,
        executable: str | None = None,
    ):
        self.host = host
        self.startup_timeout = startup_timeout
        self.executable = executable or find_azurite(repo_root)
        self.blob_port = self.queue_port = self.table_port = 0
        self._proc: subprocess.Popen | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None
        self.log_path: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Azurite:
        if self._proc is not None:
            return self
        if not self.executable:
            raise AzuriteError(
                "Azurite is not installed: run `npm ci` at the repository root "
                "(package.json pins azurite) or set AZURITE_BIN."
            )
        if shutil.which("node") is None:
            raise AzuriteError("node is not on PATH; Azurite needs Node.js.")
        last_error: Exception | None = None
        attempts = 3  # a free port can be taken between probing and binding
        for _ in range(attempts):
            try:
                self._spawn()
                self._wait_ready()
                return self
            except AzuriteError as exc:
                last_error = exc
                self.stop(keep_log=False)  # the error message carries the log
        raise AzuriteError(f"Azurite did not start after {attempts} attempts: {last_error}")

    def _spawn(self) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
        self.blob_port, self.queue_port, self.table_port = _free_ports(self.host, 3)
        fd, self.log_path = tempfile.mkstemp(prefix="azurite-", suffix=".log")
        assert self.executable, "start() refuses to spawn without an executable"
        args = [
            self.executable,
            "--inMemoryPersistence",
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--blobHost",
            self.host,
            "--blobPort",
            str(self.blob_port),
            "--queueHost",
            self.host,
            "--queuePort",
            str(self.queue_port),
            "--tableHost",
            self.host,
            "--tablePort",
            str(self.table_port),
        ]
        with os.fdopen(fd, "wb") as log:
            log.write(("$ " + " ".join(args) + "\n").encode())
            log.flush()
            self._proc = subprocess.Popen(
                args,
                cwd=self._workdir.name,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() ends node and all it started
            )

    def _answers(self, port: int) -> bool:
        conn = http.client.HTTPConnection(self.host, port, timeout=1)
        try:
            conn.request("GET", f"/{ACCOUNT_NAME}?comp=list")
            conn.getresponse().read()
            return True  # any HTTP answer (403 without a signature) means it is up
        except OSError:
            return False
        finally:
            conn.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = [self.table_port, self.blob_port, self.queue_port]
        while pending:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise AzuriteError(f"exited with {self._proc.returncode}:\n{self.read_log()}")
            if self._answers(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                raise AzuriteError(f"not answering after {self.startup_timeout}s:\n{self.read_log()}")
            time.sleep(0.1)

    def stop(self, *, keep_log: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None
        if not keep_log and self.log_path and os.path.exists(self.log_path):
            os.unlink(self.log_path)
            self.log_path = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def read_log(self, tail_bytes: int = 20000) -> str:
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - tail_bytes))
            return f.read().decode("utf-8", "replace")

    # ------------------------------------------------------------------ addresses
    @property
    def blob_endpoint(self) -> str:
        return f"http://{self.host}:{self.blob_port}/{ACCOUNT_NAME}"

    @property
    def queue_endpoint(self) -> str:
        return f"http://{self.host}:{self.queue_port}/{ACCOUNT_NAME}"

    @property
    def table_endpoint(self) -> str:
        return f"http://{self.host}:{self.table_port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        """Connection string naming all three endpoints (for EvidenceStorage / AzureWebJobsStorage)."""
        return (
            "DefaultEndpointsProtocol=http;"
            f"AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
            f"QueueEndpoint={self.queue_endpoint};"
            f"TableEndpoint={self.table_endpoint};"
        )
