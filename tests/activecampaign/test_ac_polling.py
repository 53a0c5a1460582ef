"""When import/info is polled: the completion estimate and the oldest-due-first queue."""

from __future__ import annotations

import asyncio

import pytest

from worker.activecampaign.polling import CompletionEstimate, PollQueue


def test_estimate_settles_where_most_first_polls_hit() -> None:
    """AC takes 1.0 s per batch: count polls per batch the way the importer would."""
    estimate = CompletionEstimate(5.0)
    polls_per_batch = []
    for _ in range(300):
        elapsed = estimate.first_poll()
        polls = 1
        while elapsed < 1.0:
            elapsed += estimate.next_poll(polls)
            polls += 1
        estimate.observe(elapsed, polls)
        polls_per_batch.append(polls)
    steady = polls_per_batch[100:]
    assert sum(steady) / len(steady) <= 2.0
    assert estimate.value == pytest.approx(1.0, rel=0.25)


def test_estimate_follows_a_slower_account_and_stays_bounded() -> None:
    estimate = CompletionEstimate(0.5, floor=0.05, ceiling=30.0, max_interval=10.0)
    for _ in range(50):
        estimate.observe(100.0, 3)
    assert estimate.value == 30.0
    assert estimate.next_poll(20) == 10.0
    for _ in range(200):
        estimate.observe(0.0, 1)
    assert estimate.value == 0.05
    assert estimate.next_poll(1) == 0.05


async def test_queue_hands_out_the_oldest_due_batch_first() -> None:
    queue: PollQueue[str] = PollQueue()
    now = asyncio.get_running_loop().time()
    queue.push("young", seq=2, due=now - 1.0)  # due earlier, but accepted later
    queue.push("old", seq=1, due=now - 0.5)
    queue.push("future", seq=0, due=now + 0.05)
    async with asyncio.timeout(5):
        assert await queue.next() == "old"
        assert await queue.next() == "young"
        assert await queue.next() == "future"  # waits until it is due
    assert len(queue) == 0


async def test_push_wakes_a_waiting_reader_and_close_releases_it() -> None:
    queue: PollQueue[str] = PollQueue()
    reader = asyncio.create_task(queue.next())
    await asyncio.sleep(0)
    queue.push("now", seq=1, due=0.0)
    async with asyncio.timeout(5):
        assert await reader == "now"
        idle = asyncio.create_task(queue.next())
        await asyncio.sleep(0)
        queue.close()
        assert await idle is None
