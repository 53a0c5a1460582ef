"""The request budget of one ActiveCampaign account, shared by every request this process sends.

Why a limiter in front of every request rather than reacting to 429s: AC's limits are per account and
counted in sliding windows, and a bulk POST refused with "Rate limit exceeded" costs a round trip and
delays the whole sync. Pacing requests evenly (see `pacing`) keeps us under both windows, so 429s only
happen when someone else uses the same account; `backoff()` handles those.

`RateLimiter` is the small protocol the client depends on, so a Redis-backed limiter (several replicas on
one account) can replace `AccountLimiter` without touching the client.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from typing import Protocol

from worker.activecampaign.pacing import RequestKind, SlotSchedule
from worker.activecampaign.waiting import WaitLines

__all__ = ["AccountLimiter", "RateLimiter", "RequestKind"]


class RateLimiter(Protocol):
    """What the client needs from a limiter: a slot per request, and a way to obey AC's "wait"."""

    #: Total seconds callers spent waiting for slots (for metrics).
    waited_seconds: float
    #: The bulk budget being paced to; sizes the pause after a bulk "Rate limit exceeded" without a figure.
    bulk_per_minute: float

    async def acquire(self, kind: RequestKind) -> float:
        """Wait for a slot for one request of `kind`; return the seconds waited."""
        ...

    def backoff(self, seconds: float) -> None:
        """AC asked us to pause (429 Retry-After, bulk "Rate limit exceeded"): nobody sends until then."""
        ...


class AccountLimiter:
    """Both budgets of one AC account, in this process.

    Waiters are served first come, first served within each kind; a waiting bulk POST goes before any
    "other" request that would delay it (polls must never slow the import down), and a "read" (verify)
    goes only while no "other" request waits. All timing uses the
    running event loop's clock, so the limiter can be shared by every task of that loop.
    """

    def __init__(
        self, requests_per_second: float = 5.0, bulk_per_minute: float = 100.0, *, safety: float = 0.985
    ) -> None:
        self.requests_per_second = float(requests_per_second)
        self.bulk_per_minute = float(bulk_per_minute)
        #: The slot arithmetic; public so tests and diagnostics can read (or record) the slot times.
        self.schedule = SlotSchedule(self.requests_per_second, self.bulk_per_minute, safety=safety)
        self.waited_seconds = 0.0
        self._lines = WaitLines()

    def __repr__(self) -> str:
        return (
            f"AccountLimiter(requests_per_second={self.requests_per_second}, "
            f"bulk_per_minute={self.bulk_per_minute})"
        )

    async def acquire(self, kind: RequestKind) -> float:
        """Wait for the next slot of `kind`; returns the seconds waited."""
        if kind not in self._lines.queues:
            raise ValueError(f"unknown request kind {kind!r}; expected 'bulk', 'other' or 'read'")
        loop = asyncio.get_running_loop()
        start = loop.time()
        queue = self._lines.queues[kind]
        ticket = object()
        queue.append(ticket)
        if kind == "bulk":
            self._lines.notify()  # "other" heads must make room for this POST
        try:
            while True:
                now = loop.time()
                delay: float | None = None
                if queue[0] is ticket and not self._lines.yields(kind):
                    bulk_waiting = kind != "bulk" and bool(self._lines.queues["bulk"])
                    if self.schedule.grant(kind, now, bulk_waiting=bulk_waiting) is not None:
                        queue.popleft()
                        break
                    delay = self.schedule.earliest(kind, now, bulk_waiting=bulk_waiting) - now
                await self._lines.sleep(loop, ticket, delay)
        except BaseException:
            # Cancelled while queued: step out of line so the ones behind move up.
            with suppress(ValueError):
                queue.remove(ticket)
            self._lines.notify()
            raise
        self._lines.notify()
        waited = max(0.0, loop.time() - start)
        self.waited_seconds += waited
        return waited

    def backoff(self, seconds: float) -> None:
        """Nobody sends for `seconds` from now (only ever extends an existing pause)."""
        if seconds <= 0:
            return
        try:
            now = asyncio.get_running_loop().time()
        except RuntimeError:  # called outside a loop: nobody is waiting, so nothing to schedule
            return
        self.schedule.block(now + seconds)
        self._lines.notify()
