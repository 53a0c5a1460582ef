"""When to poll import/info, and which accepted batch to poll next.

Why this matters: at full speed a bulk POST goes out every 0.6 s and the rest of the account's budget
(3.3 requests/s) must cover every poll, so a batch can afford about two polls on average. Polling right
after the POST wastes that budget (AC needs seconds); polling late delays the run. So the first poll comes
after the *expected* processing time, learned from what we observe, and later polls back off.
"""

from __future__ import annotations

import asyncio
import heapq
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


class CompletionEstimate:
    """Expected seconds from acceptance to a final status, as an EWMA of what polls observed.

    A poll that finds a batch final only proves it finished *by then*. Taking that time as the sample
    would never let the estimate shrink, so a first-poll hit counts as a little less (`probe`): the
    estimate creeps down until some first polls miss, and settles where most first polls hit (about 1.2
    polls per batch when AC's timing is steady).
    """

    def __init__(
        self,
        initial: float,
        *,
        alpha: float = 0.2,
        probe: float = 0.9,
        floor: float = 0.05,
        ceiling: float = 600.0,
        max_interval: float = 60.0,
    ) -> None:
        self.floor = floor
        self.ceiling = ceiling
        self.max_interval = max_interval
        self._alpha = alpha
        self._probe = probe
        self._value = self._clamp(initial)

    @property
    def value(self) -> float:
        return self._value

    def first_poll(self) -> float:
        """Seconds after acceptance for the first poll."""
        return self._value

    def next_poll(self, polls_done: int) -> float:
        """Seconds until the next poll of a batch that was not final after `polls_done` polls.

        Half the estimate, growing by half each time: a batch that is merely a bit late is caught soon, one
        that is stuck (AC's queue is long) costs few polls.
        """
        interval = self._value * 0.5 * 1.5 ** max(0, polls_done - 1)
        return min(self.max_interval, max(self.floor, interval))

    def observe(self, elapsed: float, polls: int) -> None:
        """A batch was seen final `elapsed` seconds after acceptance, on its `polls`-th poll."""
        sample = elapsed * self._probe if polls <= 1 else elapsed
        self._value = self._clamp((1 - self._alpha) * self._value + self._alpha * sample)

    def _clamp(self, value: float) -> float:
        return min(self.ceiling, max(self.floor, value))


@dataclass(order=True)
class _Entry(Generic[T]):
    key: tuple[float, int]
    item: T = field(compare=False)


class PollQueue(Generic[T]):
    """Batches waiting for their next poll; `next()` hands out the *oldest* batch that is due.

    Two heaps: not-yet-due ordered by due time, due ordered by acceptance sequence. When polls fall behind
    (the budget is busy), the oldest accepted batches are confirmed first, which is what frees capacity
    for new POSTs soonest.
    """

    def __init__(self) -> None:
        self._waiting: list[_Entry[T]] = []  # key: (due, seq)
        self._due: list[_Entry[T]] = []  # key: (seq, 0)
        self._closed = False
        self._wakers: set[asyncio.Future[None]] = set()

    def __len__(self) -> int:
        return len(self._waiting) + len(self._due)

    def push(self, item: T, *, seq: int, due: float) -> None:
        """Queue `item` (accepted as number `seq`) for a poll at loop time `due`."""
        heapq.heappush(self._waiting, _Entry((due, seq), item))
        self._wake_all()

    def close(self) -> None:
        """No more polls: every `next()` returns None from now on."""
        self._closed = True
        self._wake_all()

    async def next(self) -> T | None:
        """Wait for the oldest due item; None once the queue is closed."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            now = loop.time()
            while self._waiting and self._waiting[0].key[0] <= now:
                entry = heapq.heappop(self._waiting)
                heapq.heappush(self._due, _Entry((entry.key[1], 0), entry.item))
            if self._due:
                return heapq.heappop(self._due).item
            delay = self._waiting[0].key[0] - now if self._waiting else None
            await self._sleep(loop, delay)
        return None

    async def _sleep(self, loop: asyncio.AbstractEventLoop, delay: float | None) -> None:
        waker: asyncio.Future[None] = loop.create_future()
        self._wakers.add(waker)
        timer = None if delay is None else loop.call_later(max(0.0, delay), _wake, waker)
        try:
            await waker
        finally:
            self._wakers.discard(waker)
            if timer is not None:
                timer.cancel()

    def _wake_all(self) -> None:
        for waker in self._wakers:
            _wake(waker)


def _wake(waker: asyncio.Future[None]) -> None:
    if not waker.done():
        waker.set_result(None)
