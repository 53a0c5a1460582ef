"""The planner-to-sender hand-off: planning runs in a thread, sending on the event loop.

Why a thread: mapping and diffing a page is CPU work (tens of milliseconds) that would stall the
loop's HTTP traffic and timers; the sender must keep its pace while the next page is planned.
Why bounded: the planner is much faster than ActiveCampaign's budget, so without back-pressure it
would hold the whole snapshot's batches in memory.

The hand-off is a semaphore of ``capacity`` slots taken by the planner thread before it hands a
batch over (``call_soon_threadsafe``, which cannot fail half-way) and given back by the sender when
it takes one. So no batch is ever queued twice: the earlier design put with a timeout and retried,
and a put that completed just after its timeout queued the batch again (a double POST).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from worker.activecampaign.importer import Batch, Prepare
from worker.contacts.plan import REMOVE, PlanPart

log = logging.getLogger("segment_export.pipeline")

_END = object()


class PlanFeed:
    """Runs ``parts`` (a planner's output) in a thread and yields its batches to the sender.

    ``on_part`` runs in the planner thread for each part before its batches are handed over (record
    the part, report progress); batches whose number is in ``skip`` (accepted by an earlier attempt)
    are not handed over. ``prepare`` maps a plan operation to the step that runs before the POST of a
    batch of that operation (re-entries; ``REMOVE``: any batch holding a removal). After ``stop`` is set
    no new batch is yielded (a checkpoint), and ``stopped`` says so.
    """

    def __init__(self, parts: Iterable[PlanPart], *, on_part: Callable[[PlanPart], None],
                 on_batch: Callable[[], None] | None = None, skip: set[int] | frozenset[int] = frozenset(),
                 stop: asyncio.Event | None = None, prepare: dict[str, Prepare] | None = None,
                 capacity: int = 16) -> None:
        self._parts = parts
        self._prepare = prepare or {}
        self._on_part = on_part
        self._on_batch = on_batch
        self._skip = skip
        self._stop = stop
        self._slots = threading.Semaphore(capacity)
        self._abort = threading.Event()
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.stopped = False

    async def __aenter__(self) -> PlanFeed:
        self._loop = asyncio.get_running_loop()
        self._thread = asyncio.ensure_future(asyncio.to_thread(self._produce))
        return self

    async def __aexit__(self, *exc: object) -> None:
        """End the planner thread (it may be mid-snapshot when the run stopped or failed)."""
        self._abort.set()
        if self._thread is not None:
            await asyncio.shield(self._thread)

    async def planned(self) -> None:
        """Wait until the planner has planned the whole snapshot; raises what it raised."""
        assert self._thread is not None
        await asyncio.shield(self._thread)
        if self._error is not None:
            raise self._error

    def _hand(self, item: Any) -> bool:
        """Planner thread: wait for a free slot, then queue ``item``; False when the feed was aborted."""
        while not self._slots.acquire(timeout=0.5):
            if self._abort.is_set():
                return False
        if self._abort.is_set():
            return False
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        return True

    def _produce(self) -> None:
        try:
            for part in self._parts:
                if self._abort.is_set():
                    return
                self._on_part(part)
                for b in part.batches:
                    if self._on_batch is not None:
                        self._on_batch()
                    if b.number in self._skip:
                        continue
                    prepare = self._prepare.get(b.ops[0]) if b.ops else None
                    if prepare is None and REMOVE in b.ops:  # leavers share batches with the last updates
                        prepare = self._prepare.get(REMOVE)
                    if not self._hand(Batch(b.number, b.contacts, b.emails, prepare)):
                        return
        except BaseException as exc:  # hand the failure to the sender's iterator, and to planned()
            self._error = exc
            if not self._abort.is_set():
                self._hand(exc)
            return
        self._hand(_END)

    async def batches(self) -> AsyncIterator[Batch]:
        """The batches to send, in plan order, until the plan ends or ``stop`` is set."""
        stop = self._stop
        stop_wait = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            while True:
                if stop is not None and stop.is_set():
                    self.stopped = True
                    return
                getter = asyncio.ensure_future(self._queue.get())
                waits: set[asyncio.Future[Any]] = {getter} if stop_wait is None else {getter, stop_wait}
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    self.stopped = True  # checkpoint: no new batches; those in flight still finish
                    return
                item = getter.result()
                self._slots.release()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            if stop_wait is not None:
                stop_wait.cancel()
