"""/metrics, /healthz and /readyz on the worker's metrics port: Prometheus scrapes and Kubernetes probes.

- ``/healthz`` (liveness): both the event loop and the broker's consumer thread made progress
  recently. A stuck thread or a blocked loop fails it, so Kubernetes restarts the pod.
- ``/readyz`` (readiness): config loaded, broker connected, not draining.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger("segment_export.health")

STALL_SECONDS = 30.0


class HealthServer:
    """Serves the three endpoints; ``consumer_progress`` returns the consumer thread's last beat."""

    def __init__(self, port: int, *, ready: Callable[[], bool], consumer_progress: Callable[[], float],
                 host: str = "0.0.0.0") -> None:
        self.port = port
        self.host = host
        self.ready = ready
        self.consumer_progress = consumer_progress
        self.loop_beat = time.monotonic()
        self._runner: web.AppRunner | None = None
        self._beat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:  # keep working; the failing probes make the problem visible
            log.error("cannot serve metrics on port %s: %s", self.port, exc.strerror)
            return
        self._beat = asyncio.ensure_future(self._tick())
        log.info("metrics and probes on port %s", self.port)

    async def stop(self) -> None:
        if self._beat:
            self._beat.cancel()
        if self._runner:
            await self._runner.cleanup()

    async def _tick(self) -> None:
        while True:
            self.loop_beat = time.monotonic()
            await asyncio.sleep(1.0)

    async def _metrics(self, _: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest())
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return resp

    async def _healthz(self, _: web.Request) -> web.Response:
        now = time.monotonic()
        problems = []
        if now - self.loop_beat > STALL_SECONDS:
            problems.append(f"event loop stalled for {now - self.loop_beat:.0f} s")
        if now - self.consumer_progress() > STALL_SECONDS:
            problems.append(f"consumer thread stalled for {now - self.consumer_progress():.0f} s")
        return web.json_response({"ok": not problems, "problems": problems}, status=500 if problems else 200)

    async def _readyz(self, _: web.Request) -> web.Response:
        ok = self.ready()
        return web.json_response({"ready": ok}, status=200 if ok else 503)
