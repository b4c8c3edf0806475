"""The Python worker's shared event loop: async functions run on ONE long-lived loop in a thread.

The durable SDK keeps a module-global aiohttp session bound to the loop that created it, so
``asyncio.run`` per call, or a loop per runtime, breaks it; sync functions run in the caller's thread.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from typing import Any


class _LoopThread:
    """A daemon thread running one asyncio loop for the whole process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="functions-runtime-loop", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    def stop(self) -> None:
        if self.loop.is_closed():
            return

        async def _shutdown() -> None:
            try:  # close the durable SDK's shared aiohttp session, if any
                from azure.durable_functions.models.utils import http_utils

                await http_utils._close_session()
            except Exception:  # pragma: no cover - best effort at exit
                pass

        try:
            asyncio.run_coroutine_threadsafe(_shutdown(), self.loop).result(5)
        except Exception:  # pragma: no cover
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


_LOOP: _LoopThread | None = None
_LOOP_LOCK = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """The process-wide event loop async functions run on (started lazily)."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None:
            _LOOP = _LoopThread()
            atexit.register(_LOOP.stop)
        return _LOOP.loop


def _forget_foreign_durable_session(loop: asyncio.AbstractEventLoop) -> None:
    """Drop the durable SDK's global aiohttp session if another loop made it.

    ``azure.durable_functions.models.utils.http_utils`` caches one
    ``aiohttp.ClientSession`` per process; a session created by a different
    (possibly closed) loop cannot be used from ours.
    """
    try:
        from azure.durable_functions.models.utils import http_utils
    except Exception:  # pragma: no cover
        return
    session = getattr(http_utils, "_client_session", None)
    if session is not None and getattr(session, "_loop", loop) is not loop:
        http_utils._client_session = None


def run_coroutine(coro, timeout: float | None = 120.0) -> Any:
    """Run ``coro`` on the shared loop from a non-loop thread and wait for it."""
    loop = background_loop()
    if threading.current_thread() is _LOOP.thread:  # type: ignore[union-attr]
        coro.close()
        raise RuntimeError(
            "devtools: a function running on the runtime's event loop called the "
            "runtime synchronously (this would deadlock). Call it from a test/driver "
            "thread instead."
        )
    _forget_foreign_durable_session(loop)
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


# --------------------------------------------------------------------------
