"""Fixtures for the replica tests: brokers and worker processes from tests/e2e, Redis from tests/redis, and
the cleanup of what a test leaves on the shared servers (delay queues, Redis keys of its accounts and
exports)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import (  # noqa: F401 - fixtures and the report hook, used by name
    RabbitBroker,
    _api_key_env,
    make_sqs,
    pytest_runtest_makereport,
    rabbit,
    workers,
)
from tests.redis.conftest import private_redis, redis_url  # noqa: F401 - fixtures, used by name
from tests.replicas.harness import Account, open_account
from worker.activecampaign.shared_limiter import DEFAULT_KEY_PREFIX as LIMITER_PREFIX
from worker.leases.redis_backend import DEFAULT_KEY_PREFIX as LEASE_PREFIX


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Callable[..., Account]]:
    """Factory: ``accounts(tag, lists=..., processing_delay=...)`` starts a simulated account; all are
    stopped at teardown."""
    opened: list[Account] = []

    def make(tag: str, **kw: object) -> Account:
        account = open_account(tmp_path, tag, **kw)  # type: ignore[arg-type]
        opened.append(account)
        return account

    try:
        yield make
    finally:
        for a in opened:
            a.server.stop()


@pytest.fixture
def shared_redis_keys(redis_url: str) -> Iterator[Callable[..., None]]:  # noqa: F811 - the fixture above
    """``shared_redis_keys(hostnames=[...], exports=[...])`` names what this test uses on the shared Redis;
    the limiter schedules of those hosts and the leases (and token counters) of those exports are
    deleted at teardown (never anything else: other tests use the same Redis)."""
    import redis

    hosts: list[str] = []
    names: list[str] = []

    def note(*, hostnames: Iterable[str] = (), exports: Iterable[str] = ()) -> None:
        hosts.extend(hostnames)
        names.extend(exports)

    try:
        yield note
    finally:
        client = redis.Redis.from_url(redis_url)
        try:
            for pattern in ([f"{LIMITER_PREFIX}{{{h.lower()}}}*" for h in hosts]
                            + [f"{LEASE_PREFIX}{{{e}}}*" for e in names]):
                keys = list(client.scan_iter(match=pattern, count=1000))
                if keys:
                    client.delete(*keys)
        finally:
            client.close()


@pytest.fixture
def rabbit_delays(rabbit: RabbitBroker) -> Iterator[RabbitBroker]:  # noqa: F811 - the fixture imported above
    """The ``rabbit`` broker, whose delay queues (declared on first use by a worker putting a request
    back) are deleted at teardown too."""
    try:
        yield rabbit
    finally:
        from kombu import Connection

        with Connection(rabbit.url) as conn:
            for name in rabbit.topology().delay_queues():
                with contextlib.suppress(Exception):
                    conn.channel().queue_delete(queue=name)
