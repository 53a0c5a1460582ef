"""Redis gone: the limiter falls back to its local share, says so once, and comes back when Redis does."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator

import pytest

from tests.redis.conftest import PrivateRedis
from worker.activecampaign.limiter import AccountLimiter
from worker.activecampaign.limiter_factory import make_limiter
from worker.activecampaign.shared_limiter import SharedLimiter
from worker.clients.redis import close_redis_clients


def shared(url: str, seen: list[bool], **kwargs: object) -> SharedLimiter:
    return SharedLimiter(connection_name="marketing", hostname="acct.api-us1.com", requests_per_second=50,
                         bulk_per_minute=600, redis_url=url, expected_replicas=3,
                         on_degraded=lambda name, degraded: seen.append(degraded), probe_interval=0.2,
                         **kwargs)  # type: ignore[arg-type]


async def until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_falls_back_when_redis_stops_and_returns_when_it_is_back(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="worker.activecampaign.shared_limiter")
    seen: list[bool] = []
    limiter = shared(private_redis.url, seen)
    try:
        async with asyncio.timeout(60):
            for kind in ("bulk", "other", "other"):
                await limiter.acquire(kind)  # type: ignore[arg-type]
            assert private_redis.client().exists(limiter.state_key) == 1
            assert seen == [] and not limiter.degraded

            private_redis.stop()
            for kind in ("other", "bulk", "other", "other", "bulk"):
                await limiter.acquire(kind)  # type: ignore[arg-type]
            limiter.backoff(0.05)  # a pause while degraded stays local and does not fail
            await limiter.acquire("other")
            assert seen == [True] and limiter.degraded

            private_redis.start()  # empty: it kept nothing
            await until(lambda: seen == [True, False])
            await limiter.acquire("other")
            assert not limiter.degraded
            assert private_redis.client().exists(limiter.state_key) == 1  # the shared budget is used again
    finally:
        await limiter.aclose()
        await close_redis_clients()

    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert [level for level, _ in messages] == [logging.WARNING, logging.INFO], messages
    assert "marketing" in messages[0][1] and "1/3 of the budget" in messages[0][1]
    assert "answers again" in messages[1][1]
    assert private_redis.password and all(private_redis.password not in text for _, text in messages)
    assert "***" in messages[0][1]


async def test_a_pause_reaches_redis_and_holds_other_replicas(private_redis: PrivateRedis) -> None:
    seen: list[bool] = []
    one, two = shared(private_redis.url, seen), shared(private_redis.url, seen)
    try:
        await one.acquire("other")
        one.backoff(30.0)
        await until(lambda: private_redis.client().hget(one.state_key, "blocked_until") is not None)
        # The other replica is refused until then: it is still waiting when we give up on it.
        waiting = asyncio.ensure_future(two.acquire("other"))
        done, _ = await asyncio.wait([waiting], timeout=1.0)
        assert done == set()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await one.aclose()
        await two.aclose()
        await close_redis_clients()
    assert seen == []


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers: a Redis hung mid-call."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"


async def test_a_redis_that_never_answers_does_not_hold_requests_forever(silent_server: str) -> None:
    seen: list[bool] = []
    limiter = shared(silent_server, seen)
    try:
        async with asyncio.timeout(30):
            waited = await limiter.acquire("bulk")
            await limiter.acquire("other")
    finally:
        await limiter.aclose()
        await close_redis_clients()
    assert seen == [True]
    assert waited > 0  # it did wait for the socket timeout, and then went on with the local share


def test_the_factory_picks_the_limiter_from_the_config() -> None:
    local = make_limiter(connection_name="c", hostname="acct.api-us1.com", requests_per_second=5,
                         bulk_per_minute=100, redis_url=None, expected_replicas=3)
    assert isinstance(local, AccountLimiter) and local.bulk_per_minute == 100
    remote = make_limiter(connection_name="c", hostname="acct.api-us1.com", requests_per_second=5,
                          bulk_per_minute=100, redis_url="redis://:hunter2@127.0.0.1:6379/0",
                          expected_replicas=3)
    assert isinstance(remote, SharedLimiter) and remote.bulk_per_minute == 100
    assert "hunter2" not in repr(remote)
    with pytest.raises(ValueError, match="not a Redis URL") as bad:
        make_limiter(connection_name="c", hostname="h", requests_per_second=5, bulk_per_minute=100,
                     redis_url="http://user:hunter2@example.com", expected_replicas=3)
    assert "hunter2" not in str(bad.value)
    with pytest.raises(ValueError, match="expected_replicas"):
        make_limiter(connection_name="c", hostname="h", requests_per_second=5, bulk_per_minute=100,
                     redis_url="redis://127.0.0.1:6379/0", expected_replicas=0)
