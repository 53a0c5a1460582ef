"""An HTTP proxy on loopback that forwards every request to a real server and can lose its reply.

Why HTTP and not a wrapper of our client: a reply lost on the wire is what makes the client retry (botocore's
own retries on S3, our ActiveCampaign client's), and what the retry then meets (a 412 for a conditional PUT
that already landed, a second bulk import) is the server's real answer. So the fault sits between the
client and the server, and everything on both sides is the real thing.

``decide(request) -> Action`` is asked for every request: ``FORWARD``; ``LOSE_REPLY`` (forward it, let the
server act on it, then cut the connection without a byte of the answer); ``REFUSE`` (cut the connection
without forwarding: the request never reached the server). The proxy runs its own event loop in a thread,
like the simulator, so synchronous callers (boto3) and the engine's loop can both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType

import aiohttp
from aiohttp import web

START_TIMEOUT = 10.0
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "expect",
               "proxy-connection", "te", "trailer", "upgrade", "content-encoding"}


class Action(Enum):
    FORWARD = "forward"
    LOSE_REPLY = "lose_reply"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Seen:
    """One request as the proxy saw it (the body is kept: tests read bulk imports' contacts from it)."""

    method: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Exchange:
    """What became of one request: the action taken and the server's answer (status 0: not forwarded)."""

    seen: Seen
    action: Action
    status: int = 0
    reply: bytes = b""
    extra: dict[str, object] = field(default_factory=dict)


Decide = Callable[[Seen], Action]


def _forward_all(_: Seen) -> Action:
    return Action.FORWARD


class FaultProxy:
    """``with FaultProxy("http://127.0.0.1:9000") as proxy: ... proxy.url ...``; ``proxy.decide`` may be
    replaced at any time; ``proxy.exchanges`` is the log, in arrival order."""

    def __init__(self, upstream: str, decide: Decide | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.decide: Decide = decide or _forward_all
        self.exchanges: list[Exchange] = []
        self.url = ""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None

    # Lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._error is not None:
            raise RuntimeError(f"the fault proxy did not start: {self._error}")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(START_TIMEOUT)

    def log(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()

    # Serving -----------------------------------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to __enter__ (start) or ends the thread (stop)
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False,
                                        connector=aiohttp.TCPConnector(limit=64))
        app = web.Application(client_max_size=64 << 20)
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, session)

        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()
            await session.close()

    async def _handle(self, request: web.Request, session: aiohttp.ClientSession) -> web.StreamResponse:
        body = await request.read()
        seen = Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        action = self.decide(seen)
        exchange = Exchange(seen, action)
        with self._lock:
            self.exchanges.append(exchange)
        if action is Action.REFUSE:
            _cut(request)
            return web.Response(status=499)  # never written: the connection is gone
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                   data=body, allow_redirects=False) as upstream:
            reply = await upstream.read()
            exchange.status, exchange.reply = upstream.status, reply
            if action is Action.LOSE_REPLY:
                _cut(request)
                return web.Response(status=499)
            out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(status=upstream.status, headers=out, body=reply)


def _cut(request: web.Request) -> None:
    """Reset the client's connection: it sees the request fail with no answer at all."""
    transport = request.transport
    if transport is not None:
        transport.abort()
