"""The planner-to-sender hand-off (worker.run.pipeline.PlanFeed): every batch once, in order, bounded.

The earlier hand-off put each batch with a timeout and retried; a put that completed just after its
timeout queued the batch again (a double POST). The feed now takes a slot before handing a batch over,
so these properties hold by construction; the tests check them under a tight capacity and a consumer
that lags behind, across stop, skip and planner failure.
"""

from __future__ import annotations

import asyncio

import pytest

from worker.contacts.plan import Counts, PlannedBatch, PlanPart
from worker.run.pipeline import PlanFeed


def _parts(n_parts: int, per_part: int) -> list[PlanPart]:
    parts, number = [], 0
    for p in range(n_parts):
        batches = []
        for _ in range(per_part):
            email = f"u{number}@x.co"
            batches.append(PlannedBatch(number, [email], ["0" * 16], ["a"], [{"email": email}]))
            number += 1
        parts.append(PlanPart(p, batches, [], [], [], Counts()))
    return parts


async def test_every_batch_is_handed_over_exactly_once_in_order_with_a_lagging_sender() -> None:
    parts = _parts(40, 25)
    seen_parts: list[int] = []
    got: list[int] = []
    planned = 0

    def on_part(part: PlanPart) -> None:
        seen_parts.append(part.number)

    def on_batch() -> None:
        nonlocal planned
        planned += 1

    async with PlanFeed(iter(parts), on_part=on_part, on_batch=on_batch, capacity=2) as feed:
        async for batch in feed.batches():
            got.append(batch.number)
            # bounded: the planner thread is at most the capacity (+ the batch it is counting) ahead
            assert planned - len(got) <= 2 + 1
            for _ in range(3):  # the sender lags: a few loop turns per batch
                await asyncio.sleep(0)
        await feed.planned()
    assert got == list(range(1000))
    assert seen_parts == list(range(40))
    assert not feed.stopped


async def test_skipped_batches_are_not_handed_over_and_stop_is_a_checkpoint() -> None:
    stop = asyncio.Event()
    got: list[int] = []
    async with PlanFeed(iter(_parts(10, 10)), on_part=lambda part: None, skip={0, 1, 2, 50},
                        stop=stop, capacity=1) as feed:
        async for batch in feed.batches():
            got.append(batch.number)
            if batch.number == 20:
                stop.set()
    assert got == [n for n in range(3, 21) if n != 50]
    assert feed.stopped


async def test_a_planner_failure_reaches_the_sender_and_planned() -> None:
    def parts():
        yield from _parts(2, 3)
        raise RuntimeError("the snapshot broke")

    got: list[int] = []
    async with PlanFeed(parts(), on_part=lambda part: None, capacity=1) as feed:
        with pytest.raises(RuntimeError, match="the snapshot broke"):
            async for batch in feed.batches():
                got.append(batch.number)
        with pytest.raises(RuntimeError, match="the snapshot broke"):
            await feed.planned()
    assert got == list(range(6))
