"""SharedLimiter: one ActiveCampaign account's budget shared by every replica through Redis.

Why: AC's limits are per account, and ops run N replicas. Each replica pacing itself to the whole
budget sends N times too much; `BudgetScript` keeps one schedule in Redis that all of them draw from.

How a request gets its slot. Within this process, waiters queue per kind exactly as in `AccountLimiter`
(first come, first served; only the head of each queue talks to Redis, so a replica costs at most two
script calls per slot). The head asks the script; a grant may be a few milliseconds ahead, which it
sleeps out; a refusal says when to ask again, and the head sleeps until then unless this process's own
state changes first (a pause from `backoff()`, a bulk POST queuing behind a poll, Redis failing).

Why a fallback and not an error when Redis is gone: a sync must never stop because the coordination
service is down. Each replica then paces to its share of the budget (budget / expected_replicas) with an
in-process `AccountLimiter`, says so once (log + `on_degraded`), probes Redis every few seconds in the
background, and returns to the shared budget when it answers again (said once too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from worker.activecampaign.limiter import AccountLimiter
from worker.activecampaign.pacing import RequestKind, SlotSchedule
from worker.activecampaign.shared_budget import BudgetScript, Decision
from worker.activecampaign.waiting import WaitLines
from worker.clients.redis import redact_url, redis_client, redis_failures

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["DEFAULT_KEY_PREFIX", "OnDegraded", "SharedLimiter"]

log = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "segment-export:limiter:"
#: Re-ask Redis at least this often while refused, whatever it said (a bounded view of others' changes).
MAX_REFUSED_SLEEP = 2.0

OnDegraded = Callable[[str, bool], None]


class SharedLimiter:
    """Both budgets of one AC account, shared with every replica using the same Redis (a `RateLimiter`)."""

    def __init__(
        self,
        *,
        connection_name: str,
        hostname: str,
        requests_per_second: float,
        bulk_per_minute: float,
        redis_url: str,
        expected_replicas: int,
        on_degraded: OnDegraded | None = None,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        probe_interval: float = 3.0,
        safety: float = 0.985,
    ) -> None:
        if not isinstance(expected_replicas, int) or expected_replicas < 1:
            raise ValueError(f"expected_replicas must be an integer >= 1, got {expected_replicas!r}")
        if probe_interval <= 0:
            raise ValueError("probe_interval must be > 0")
        self.connection_name = connection_name
        self.requests_per_second = float(requests_per_second)
        self.bulk_per_minute = float(bulk_per_minute)
        self.expected_replicas = expected_replicas
        self.waited_seconds = 0.0
        self._url = redis_url
        self._on_degraded = on_degraded
        self._probe_interval = probe_interval
        account = f"{key_prefix}{{{hostname.strip().lower()}}}"  # braces: one Redis Cluster slot per account
        self._script = BudgetScript(
            SlotSchedule(self.requests_per_second, self.bulk_per_minute, safety=safety),
            state_key=f"{account}:slots",
            waiters_key=f"{account}:bulk-waiting",
            waiter_id=uuid.uuid4().hex,
        )
        self._fallback = AccountLimiter(
            self.requests_per_second / expected_replicas, self.bulk_per_minute / expected_replicas, safety=safety
        )
        self._lines = WaitLines()
        self._blocked_until = float("-inf")  # local copy of a pause this process asked for (loop clock)
        self._degraded = False
        #: Set when Redis answers again: waiters queued for the local share go back to the shared budget.
        self._returned = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return (
            f"SharedLimiter(connection={self.connection_name!r}, requests_per_second={self.requests_per_second}, "
            f"bulk_per_minute={self.bulk_per_minute}, redis={redact_url(self._url)!r})"
        )

    @property
    def degraded(self) -> bool:
        """True while Redis is unreachable and this replica paces to its local share."""
        return self._degraded

    @property
    def state_key(self) -> str:
        """The Redis hash holding the account's schedule (for diagnostics and tests)."""
        return self._script.state_key

    # RateLimiter ---------------------------------------------------------------------------------------

    async def acquire(self, kind: RequestKind) -> float:
        """Wait for the account's next slot of ``kind`` (shared, or the local share while degraded)."""
        if kind not in self._lines.queues:
            raise ValueError(f"unknown request kind {kind!r}; expected 'bulk', 'other' or 'read'")
        loop = asyncio.get_running_loop()
        start = loop.time()
        while self._degraded or not await self._take_shared(kind, loop):
            if await self._take_local(kind):
                break
        waited = max(0.0, loop.time() - start)
        self.waited_seconds += waited
        return waited

    def backoff(self, seconds: float) -> None:
        """Nobody sends for ``seconds``: here at once, on every replica as soon as Redis hears of it."""
        if seconds <= 0:
            return
        self._fallback.backoff(seconds)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside a loop nobody here is waiting; nothing to tell Redis from here
            return
        self._blocked_until = max(self._blocked_until, loop.time() + seconds)
        self._lines.notify()
        if not self._degraded:
            self._spawn(self._push_block(seconds))

    # Shared path -----------------------------------------------------------------------------------------

    async def _take_shared(self, kind: RequestKind, loop: asyncio.AbstractEventLoop) -> bool:
        """Queue for a shared slot; True once granted, False if Redis failed (the caller falls back)."""
        queue = self._lines.queues[kind]
        ticket = object()
        queue.append(ticket)
        if kind == "bulk":
            self._lines.notify()  # a poll at the head must re-ask, now knowing a POST waits here
        try:
            while not self._degraded:
                delay: float | None = None
                if queue[0] is ticket and not self._lines.yields(kind):
                    delay = self._blocked_until - loop.time()
                    if delay <= 0:
                        decision = await self._decide(kind)
                        if decision is None:
                            return False
                        if decision.granted:
                            queue.popleft()
                            self._lines.notify()
                            self._granted(kind, decision.slot_us)
                            if decision.wait > 0:
                                await asyncio.sleep(decision.wait)
                            return True
                        delay = min(decision.wait, MAX_REFUSED_SLEEP)
                await self._lines.sleep(loop, ticket, delay)
            return False
        finally:
            if ticket in queue:  # cancelled, or leaving for the fallback: the ones behind move up
                queue.remove(ticket)
                self._lines.notify()

    async def _take_local(self, kind: RequestKind) -> bool:
        """A slot of this replica's share; False if Redis answered again first (then the caller asks the
        shared budget: a waiter left in the local schedule would be granted on top of it)."""
        if not self._degraded:
            return False
        local = asyncio.ensure_future(self._fallback.acquire(kind))
        returned = asyncio.ensure_future(self._returned.wait())
        try:
            await asyncio.wait({local, returned}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            local.cancel()
            raise
        finally:
            returned.cancel()
        if local.done():
            local.result()
            return True
        local.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await local
        return False

    async def _decide(self, kind: RequestKind) -> Decision | None:
        """The script's answer, or None after switching to the local share because Redis failed."""
        try:
            client = self._client()
            return await self._script.decide(client, kind, bulk_waiting_here=bool(self._lines.queues["bulk"]))
        except redis_failures() as exc:
            self._degrade(exc)
            return None

    def _granted(self, kind: RequestKind, slot_us: int) -> None:
        """Hook: a shared slot was granted at ``slot_us`` on Redis' clock (tests record these)."""

    async def _push_block(self, seconds: float) -> None:
        try:
            await self._script.block(self._client(), seconds)
        except redis_failures() as exc:
            self._degrade(exc)

    def _client(self) -> Redis:
        return redis_client(self._url)

    # Degradation -----------------------------------------------------------------------------------------

    def _degrade(self, exc: BaseException) -> None:
        if self._degraded:
            return
        self._degraded = True
        self._returned = asyncio.Event()
        log.warning(
            "rate limiter for connection %s: Redis at %s failed (%s); pacing to this replica's share "
            "(1/%d of the budget) until it answers again",
            self.connection_name, redact_url(self._url), type(exc).__name__, self.expected_replicas,
        )
        self._report(True)
        self._lines.wake_all()
        self._spawn(self._probe())

    async def _probe(self) -> None:
        """Every `probe_interval`, ask Redis whether it is back; on the first answer, return to it."""
        failures = redis_failures()
        while self._degraded:
            await asyncio.sleep(self._probe_interval)
            with contextlib.suppress(*failures):
                await self._client().ping()
                self._degraded = False
        self._returned.set()
        log.info(
            "rate limiter for connection %s: Redis at %s answers again; back to the shared budget",
            self.connection_name, redact_url(self._url),
        )
        self._report(False)

    def _report(self, degraded: bool) -> None:
        if self._on_degraded is None:
            return
        try:
            self._on_degraded(self.connection_name, degraded)
        except Exception:
            log.exception("on_degraded hook failed (ignored)")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Stop the background probe and pushes (the shared Redis client is closed by its owner)."""
        tasks, self._tasks = list(self._tasks), set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
