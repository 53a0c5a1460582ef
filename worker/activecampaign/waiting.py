"""Lines of waiters for request slots: first come, first served per kind, only the heads awake.

Why shared: the in-process limiter and the Redis-backed one queue their callers the same way (a line
per kind; the head sleeps until its slot or until something changes; the ones behind sleep until they
become the head), and only decide slots differently.
"""

from __future__ import annotations

import asyncio
from collections import deque

from worker.activecampaign.pacing import RequestKind


class WaitLines:
    """A line of tickets per request kind ("bulk", "other", "read"), and the wake-ups of the sleeping ones."""

    def __init__(self) -> None:
        self.queues: dict[RequestKind, deque[object]] = {"bulk": deque(), "other": deque(), "read": deque()}
        self._sleepers: dict[object, asyncio.Future[None]] = {}  # ticket -> its wake-up

    async def sleep(self, loop: asyncio.AbstractEventLoop, ticket: object, delay: float | None) -> None:
        """Sleep until `delay` passes (None: until woken) or `notify` wakes this ticket."""
        waker: asyncio.Future[None] = loop.create_future()
        self._sleepers[ticket] = waker
        timer = None if delay is None else loop.call_later(max(0.0, delay), _wake, waker)
        try:
            await waker
        finally:
            self._sleepers.pop(ticket, None)
            if timer is not None:
                timer.cancel()

    def notify(self) -> None:
        """Something changed (a slot was taken, a pause began, a POST queued): the heads re-evaluate.

        Only the first waiter of each kind can be granted, so only they are woken; the one behind is
        woken when it becomes the head (its predecessor's grant or cancellation notifies again).
        """
        for queue in self.queues.values():
            if queue and (waker := self._sleepers.get(queue[0])) is not None:
                _wake(waker)

    def yields(self, kind: RequestKind) -> bool:
        """A "read" waits while any "other" request of this process waits: polls and run lookups go first."""
        return kind == "read" and bool(self.queues["other"])

    def wake_all(self) -> None:
        for waker in list(self._sleepers.values()):
            _wake(waker)


def _wake(waker: asyncio.Future[None]) -> None:
    if not waker.done():
        waker.set_result(None)
