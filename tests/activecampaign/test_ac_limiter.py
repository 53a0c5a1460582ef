"""AccountLimiter's queueing on the running loop; assertions are on recorded slot times, not elapsed time."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from worker.activecampaign.limiter import AccountLimiter, RateLimiter
from worker.activecampaign.pacing import RequestKind, SlotSchedule

from .windows import max_in_window


class RecordingSchedule(SlotSchedule):
    """Records every slot taken, and whether a bulk slot was pushed back by an earlier "other" request."""

    def __init__(self, *args: float, **kwargs: float) -> None:
        super().__init__(*args, **kwargs)
        self.slots: list[tuple[RequestKind, float]] = []
        self.bulk_pushed: list[bool] = []

    def take(self, kind: RequestKind, at: float) -> None:
        if kind == "bulk" and self._bulk_next > float("-inf"):
            lane = max(self._bulk_next, self.blocked_until)
            self.bulk_pushed.append(at > lane + 1e-9 and self._last_any + self.any_spacing > lane + 1e-9)
        self.slots.append((kind, at))
        super().take(kind, at)


def recording_limiter(rps: float, bpm: float) -> tuple[AccountLimiter, RecordingSchedule]:
    limiter = AccountLimiter(rps, bpm)
    schedule = RecordingSchedule(rps, bpm, safety=0.985)
    limiter.schedule = schedule
    return limiter, schedule


def test_account_limiter_satisfies_the_protocol() -> None:
    limiter: RateLimiter = AccountLimiter()
    assert limiter.bulk_per_minute == 100.0
    assert "AccountLimiter" in repr(limiter)


async def test_waiters_of_one_kind_are_served_in_arrival_order() -> None:
    limiter, schedule = recording_limiter(2000.0, 60000.0)
    order: list[int] = []

    async def one(i: int) -> None:
        await limiter.acquire("bulk")
        order.append(i)

    async with asyncio.timeout(10):
        await asyncio.gather(*(one(i) for i in range(30)))
    assert order == list(range(30))
    times = [t for _, t in schedule.slots]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= schedule.bulk_spacing - 1e-9


async def test_polls_never_push_back_a_waiting_bulk_post_and_the_windows_hold() -> None:
    rps, bpm = 300.0, 6000.0  # AC's proportions (1/3 bulk), fast enough for a unit test
    limiter, schedule = recording_limiter(rps, bpm)

    async def lane(kind: RequestKind, n: int) -> None:
        for _ in range(n):
            await limiter.acquire(kind)

    async with asyncio.timeout(20):
        # Several concurrent callers per lane, as the importer has.
        await asyncio.gather(*(lane("bulk", 10) for _ in range(4)), *(lane("other", 20) for _ in range(4)))
    assert not any(schedule.bulk_pushed)
    everything = [t for _, t in schedule.slots]
    bulk = [t for k, t in schedule.slots if k == "bulk"]
    assert len(bulk) == 40 and len(everything) == 120
    assert max_in_window(everything, 1.0) <= rps
    assert max_in_window(everything, 0.1) <= rps / 10
    assert min(b - a for a, b in itertools.pairwise(bulk)) >= schedule.bulk_spacing - 1e-9
    assert limiter.waited_seconds > 0


async def test_reads_go_last_and_never_push_back_a_waiting_bulk_post() -> None:
    """verify's reads: in the "other" lane, granted only while no poll waits, never ahead of a bulk POST."""
    rps, bpm = 300.0, 6000.0
    limiter, schedule = recording_limiter(rps, bpm)
    polls_waiting_at_read: list[int] = []
    take = schedule.take

    def recording_take(kind: RequestKind, at: float) -> None:
        if kind == "read":
            polls_waiting_at_read.append(len(limiter._lines.queues["other"]))
        take(kind, at)

    schedule.take = recording_take  # type: ignore[method-assign]

    async def lane(kind: RequestKind, n: int) -> None:
        for _ in range(n):
            await limiter.acquire(kind)

    async with asyncio.timeout(20):
        await asyncio.gather(lane("read", 30), *(lane("bulk", 10) for _ in range(2)),
                             *(lane("other", 15) for _ in range(2)))
    kinds = [k for k, _ in schedule.slots]
    assert kinds.count("read") == 30 and kinds.count("other") == 30 and kinds.count("bulk") == 20
    assert polls_waiting_at_read == [0] * 30
    first_other, last_other = kinds.index("other"), max(i for i, k in enumerate(kinds) if k == "other")
    assert "read" not in kinds[first_other:last_other + 1]  # with polls always waiting, reads wait it out
    assert not any(schedule.bulk_pushed)
    everything = [t for _, t in schedule.slots]
    assert max_in_window(everything, 1.0) <= rps
    non_bulk = [t for k, t in schedule.slots if k != "bulk"]
    assert max_in_window(non_bulk, 1.0) <= (rps - bpm / 60) + 1  # reads share the non-bulk lane


async def test_backoff_holds_everyone_until_the_pause_ends() -> None:
    limiter, schedule = recording_limiter(1000.0, 20000.0)
    await limiter.acquire("other")
    loop = asyncio.get_running_loop()
    before = loop.time()
    limiter.backoff(0.05)
    pause_end = schedule.blocked_until
    assert before + 0.05 <= pause_end <= loop.time() + 0.05
    async with asyncio.timeout(5):
        await asyncio.gather(limiter.acquire("bulk"), limiter.acquire("other"))
    after = [t for _, t in schedule.slots[1:]]
    assert len(after) == 2 and min(after) >= pause_end - 1e-9


async def test_a_backoff_moves_a_sleeping_waiter_to_the_end_of_the_pause() -> None:
    limiter, schedule = recording_limiter(20.0, 400.0)  # "other" slots about 51 ms apart
    await limiter.acquire("other")
    loop = asyncio.get_running_loop()
    old_slot = schedule.earliest("other", loop.time())
    waiter = asyncio.create_task(limiter.acquire("other"))
    await asyncio.sleep(0)  # one loop turn: it queues and sleeps until its slot
    assert not waiter.done()
    limiter.backoff(0.2)  # a pause past its slot: it must not go at its old time
    pause_end = schedule.blocked_until
    assert pause_end > old_slot
    async with asyncio.timeout(5):
        await waiter
    assert [k for k, _ in schedule.slots] == ["other", "other"]
    assert schedule.slots[1][1] >= pause_end - 1e-9


async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_moves_up() -> None:
    limiter, schedule = recording_limiter(1000.0, 20000.0)
    limiter.backoff(0.05)
    first = asyncio.create_task(limiter.acquire("bulk"))
    second = asyncio.create_task(limiter.acquire("bulk"))
    await asyncio.sleep(0)
    first.cancel()
    async with asyncio.timeout(5):
        await second
    assert first.cancelled()
    assert [k for k, _ in schedule.slots] == ["bulk"]
    assert not limiter._lines.queues["bulk"] and not limiter._lines._sleepers


async def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError):
        await AccountLimiter().acquire("poll")  # type: ignore[arg-type]
