"""A scripted stand-in for ActiveCampaign over real HTTP, for client edge cases the simulator never produces.

Each (method, path) has a queue of replies; the last reply repeats. Every request is recorded with its
headers, query and body so tests can check what the client actually sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able, or bytes sent as text/html
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class ScriptedAC:
    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        self.requests: list[dict[str, Any]] = []
        self._server: TestServer | None = None
        self.url = ""

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.replies[(method, "/api/3/" + path)] = list(replies)

    def sent(self, method: str, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and r["path"] == "/api/3/" + path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": orjson.loads(raw) if raw else None,
            }
        )
        queue = self.replies.get((request.method, request.path))
        if not queue:
            return web.json_response({"message": "No Result found"}, status=404)
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if isinstance(reply.body, bytes):
            return web.Response(
                body=reply.body, status=reply.status, headers=reply.headers, content_type="text/html"
            )
        return web.Response(
            body=orjson.dumps(reply.body) if reply.body is not None else b"",
            status=reply.status,
            headers=reply.headers,
            content_type="application/json",
        )

    async def __aenter__(self) -> ScriptedAC:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        self.url = str(self._server.make_url("")).rstrip("/")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.close()


class FakeLimiter:
    """Grants every slot at once and records what the client asked for."""

    def __init__(self, bulk_per_minute: float = 100.0) -> None:
        self.bulk_per_minute = bulk_per_minute
        self.waited_seconds = 0.0
        self.kinds: list[str] = []
        self.backoffs: list[float] = []

    async def acquire(self, kind: str) -> float:
        self.kinds.append(kind)
        return 0.0

    def backoff(self, seconds: float) -> None:
        self.backoffs.append(seconds)
