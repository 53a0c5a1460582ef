"""Replicas in threads: each its own event loop, Redis client and SharedLimiter, all on one account.

Slots are recorded as the script granted them, on Redis' clock (microseconds), so assertions are exact
arithmetic and never depend on how late a thread happened to run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from worker.activecampaign.pacing import RequestKind
from worker.activecampaign.shared_limiter import SharedLimiter
from worker.clients.redis import close_redis_clients

HOSTNAME = "acct.api-us1.com"


@dataclass
class Slots:
    """Every shared slot granted, by replica: (replica, kind, slot_us)."""

    taken: list[tuple[int, RequestKind, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of(self, kind: RequestKind | None = None, replica: int | None = None) -> list[int]:
        with self.lock:
            return sorted(t for r, k, t in self.taken
                          if (kind is None or k == kind) and (replica is None or r == replica))


class RecordingLimiter(SharedLimiter):
    def __init__(self, slots: Slots, replica: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._slots = slots
        self._replica = replica

    def _granted(self, kind: RequestKind, slot_us: int) -> None:
        with self._slots.lock:
            self._slots.taken.append((self._replica, kind, slot_us))


def limiter(slots: Slots, replica: int, redis_url: str, key_prefix: str, *, rps: float, bpm: float,
            **kwargs: Any) -> RecordingLimiter:
    return RecordingLimiter(slots, replica, connection_name="marketing", hostname=HOSTNAME,
                            requests_per_second=rps, bulk_per_minute=bpm, redis_url=redis_url,
                            expected_replicas=3, key_prefix=key_prefix, **kwargs)


def in_threads(bodies: list[Callable[[], Awaitable[None]]], timeout: float = 60.0) -> None:
    """Run each coroutine function in a thread of its own (its own loop); re-raise the first failure."""
    errors: list[BaseException] = []

    def run(body: Callable[[], Awaitable[None]]) -> None:
        async def main() -> None:
            try:
                async with asyncio.timeout(timeout):
                    await body()
            finally:
                await close_redis_clients()

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


async def lanes(target: SharedLimiter, plan: dict[RequestKind, tuple[int, int]]) -> None:
    """``plan[kind] = (callers, requests each)``: concurrent callers per kind, as the importer has."""

    async def lane(kind: RequestKind, n: int) -> None:
        for _ in range(n):
            await target.acquire(kind)

    await asyncio.gather(*(lane(kind, n) for kind, (callers, n) in plan.items() for _ in range(callers)))
