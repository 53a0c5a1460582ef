"""Helpers for the simulator's tests: HTTP calls to a running simulator, bounded waits.

A module of its own (not conftest) so test modules can import the types and helpers by name.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tests.waiting import wait_for
from worker.sim import SimClient, SimulatorServer

KEY = "sim-key"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Reply:
    """One HTTP answer: status, headers (case-insensitive lookups via .header) and decoded body."""

    status: int
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class Sim:
    """A running simulator plus helpers to call its AC API and its /_sim API."""

    server: SimulatorServer
    url: str
    client: SimClient

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = KEY,
             raw: bytes | None = None) -> Reply:
        """Call `/api/3/<path>` (or an absolute path starting with '/')."""
        url = self.url + (path if path.startswith("/") else "/api/3/" + path)
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        request = urllib.request.Request(url, data=data, method=method)
        if key is not None:
            request.add_header("Api-Token", key)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with _OPENER.open(request, timeout=10) as response:
                return Reply(response.status, dict(response.headers), _decode(response.read()))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers), _decode(exc.read()))

    def bulk(self, contacts: list[dict[str, Any]], **extra: Any) -> Reply:
        return self.call("POST", "import/bulk_import", {"contacts": contacts, **extra})

    def wait_batch(self, batch_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """Poll /import/info until the batch is final (bounded), returning the final info."""
        def final() -> dict[str, Any] | None:
            reply = self.call("GET", f"import/info?batchId={batch_id}")
            assert reply.status == 200, reply
            return reply.body if reply.body["status"] in ("completed", "failed") else None

        found: dict[str, Any] = wait_for(final, timeout, f"batch {batch_id} to be final", interval=0.02)
        return found


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> None:
    """Bounded wait for a condition (``tests.waiting.wait_for`` with this suite's defaults)."""
    wait_for(predicate, timeout, "the simulator's condition", interval=step)
