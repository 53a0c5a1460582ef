"""The shared budget's arithmetic: replicas (threads with their own loops and clients) on one account."""

from __future__ import annotations

import asyncio
import functools
import itertools
import threading
import time

import redis

from tests.activecampaign.windows import max_in_window
from tests.redis.replicas import Slots, in_threads, lanes, limiter
from worker.activecampaign.pacing import RequestKind, SlotSchedule
from worker.clients.redis import close_redis_clients

RPS, BPM = 50.0, 600.0  # AC's proportions (a third of the requests may be bulk), scaled to run fast
US = 1_000_000
SCHEDULE = SlotSchedule(RPS, BPM, safety=0.985)


def test_replicas_together_stay_within_both_budgets(redis_url: str, key_prefix: str) -> None:
    slots = Slots()
    plan: dict[RequestKind, tuple[int, int]] = {"bulk": (2, 6), "other": (3, 12)}
    replicas = [limiter(slots, i, redis_url, key_prefix, rps=RPS, bpm=BPM) for i in range(3)]
    in_threads([functools.partial(lanes, r, plan) for r in replicas])

    everything = slots.of()
    bulk = slots.of("bulk")
    assert len(bulk) == 3 * 12 and len(everything) == 3 * (12 + 36)
    assert all(len(slots.of(replica=i)) == 48 for i in range(3))
    # Every one-second window holds at most the account's requests per second, and bulk POSTs keep the
    # per-minute budget's pace (600/min = at most 10 in any second).
    assert max_in_window([t / US for t in everything], 1.0) <= RPS
    assert max_in_window([t / US for t in bulk], 1.0) <= BPM / 60
    assert max_in_window([t / US for t in bulk], 60.0) <= BPM
    assert min(b - a for a, b in itertools.pairwise(everything)) >= SCHEDULE.any_spacing * US - 1
    assert min(b - a for a, b in itertools.pairwise(bulk)) >= SCHEDULE.bulk_spacing * US - 1


def test_polls_on_one_replica_never_push_back_bulk_posts_waiting_on_another(
    redis_url: str, key_prefix: str
) -> None:
    slots = Slots()
    polling = limiter(slots, 0, redis_url, key_prefix, rps=RPS, bpm=BPM)
    posting = limiter(slots, 1, redis_url, key_prefix, rps=RPS, bpm=BPM)
    in_threads([lambda: lanes(polling, {"other": (4, 30)}), lambda: lanes(posting, {"bulk": (2, 8)})])

    bulk = slots.of("bulk")
    everything = slots.of()
    assert len(bulk) == 16
    # Polls really competed: they took slots between the bulk POSTs.
    assert any(bulk[0] < t < bulk[-1] for t in slots.of("other"))
    any_us, bulk_us = SCHEDULE.any_spacing * US, SCHEDULE.bulk_spacing * US
    pushed = []
    for previous, post in itertools.pairwise(bulk):
        lane = previous + bulk_us  # where the POST's own lane put it
        before = max(t for t in everything if t < post)
        if post > lane + 1 and before + any_us > lane + 1 and before not in bulk:
            pushed.append((post - lane) / 1000)
    assert pushed == [], f"bulk POSTs pushed back by polls (ms): {pushed}"


async def test_a_backoff_on_one_replica_pauses_every_replica(redis_url: str, key_prefix: str) -> None:
    slots = Slots()
    pausing = limiter(slots, 0, redis_url, key_prefix, rps=RPS, bpm=BPM)
    other = limiter(slots, 1, redis_url, key_prefix, rps=RPS, bpm=BPM)
    stop = threading.Event()

    async def keep_polling() -> None:
        while not stop.is_set():
            await other.acquire("other")

    thread = threading.Thread(target=in_threads, args=([keep_polling],))
    thread.start()
    try:
        await _until(lambda: len(slots.of(replica=1)) >= 5)
        pausing.backoff(1.0)
        # The pause reaches Redis from a task; this replica honours it at once, here, without Redis.
        await pausing.acquire("other")
        paused_until = int(await _blocked_until(redis_url, pausing.state_key))
        # The other replica carries on once the pause is over.
        await _until(lambda: max(slots.of(replica=1)) >= paused_until)
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
        await close_redis_clients()
    paused_from = paused_until - US
    lead = min(SCHEDULE.any_spacing / 2, 0.025) * US  # a slot granted just before the pause may lie ahead
    inside = [t for t in slots.of() if paused_from + lead < t < paused_until]
    assert inside == []
    assert slots.of(replica=0) == [t for t in slots.of(replica=0) if t >= paused_until]


async def _until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _blocked_until(url: str, key: str) -> bytes | str:
    client = redis.asyncio.Redis.from_url(url)
    try:
        value = await client.hget(key, "blocked_until")
        assert value is not None, "the pause never reached Redis"
        return value
    finally:
        await client.aclose()
