"""`SimulatorServer`: the simulator on a real loopback port, in its own thread and event loop.

Tests, the demo and benchmarks drive the system under test from their own (sync or async) code; running
the simulator on a separate loop in a separate thread means its timing (rate windows, processing delays)
is not distorted by whatever the caller's loop is doing, and sync code can use it without asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

from aiohttp import web

from worker.sim.app import create_app
from worker.sim.settings import SimSettings

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class SimulatorServer:
    """Start/stop a simulator on `host:port` (port 0 picks a free one); usable as a context manager."""

    def __init__(self, settings: SimSettings | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.settings = settings or SimSettings()
        self.host = host
        self.port = port
        self.url = ""
        self.app: web.Application | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    def start(self) -> str:
        """Start serving; returns the base URL (API under /api/3/) once the socket accepts connections."""
        if self._thread is not None:
            return self.url
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._serve, name="activecampaign-sim", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError("ActiveCampaign simulator did not start in time")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT)
            self._thread = None
            raise RuntimeError(f"ActiveCampaign simulator failed to start: {self._error}") from self._error
        return self.url

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        stopping = self._stopping
        if stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed (startup failure)
                loop.call_soon_threadsafe(stopping.set)
        thread.join(STOP_TIMEOUT)
        self._thread = None
        self._loop = None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # Thread body -----------------------------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to start() when it happens during startup
            self._error = exc
            self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        stopping = self._stopping = asyncio.Event()
        self.app = create_app(self.settings)
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
            port = _bound_port(runner)
            self.port = port
            self.url = f"http://{_url_host(self.host)}:{port}"
            self._ready.set()
            await stopping.wait()
        finally:
            await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the simulator's socket has no port")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
