"""Export leases on every backend (Redis, a file store, S3 through moto): exclusive, renewed, taken over
after expiry with a higher token, and the old holder told that it lost the lease."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.redis.conftest import PrivateRedis
from tests.redis.processes import ScriptProcess, wait_until
from worker.clients.redis import close_redis_clients
from worker.leases import Lease, Leases, LeaseUnavailable, open_leases
from worker.state import StateStore, open_store

HOLDER = Path(__file__).with_name("lease_holder.py")


@dataclass
class Backend:
    kind: str
    redis_url: str | None
    state_url: str
    prefix: str

    @property
    def store(self) -> StateStore:
        return open_store(self.state_url)

    def leases(self, owner: str, ttl: float) -> Leases:
        return open_leases(self.redis_url, self.store, ttl=ttl, owner=owner, key_prefix=self.prefix)


@pytest.fixture(params=["redis", "file", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    state_url = (tmp_path / "state").as_uri()
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        yield Backend("redis", url, state_url, request.getfixturevalue("key_prefix"))
    elif request.param == "file":
        yield Backend("file", None, state_url, "")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        yield Backend("s3", None, f"s3://{bucket}/state", "")
    await close_redis_clients()


def export_name() -> str:
    return f"vip-{uuid.uuid4().hex[:8]}"


async def test_one_holder_at_a_time_and_tokens_increase(backend: Backend) -> None:
    export = export_name()
    first = await backend.leases("replica-a", ttl=5).acquire(export)
    assert isinstance(first, Lease)
    assert await backend.leases("replica-b", ttl=5).acquire(export) is None
    assert await backend.leases("replica-a", ttl=5).acquire(export) is None  # same owner name, other run
    await first.release()
    async with await_lease(backend.leases("replica-b", ttl=5).acquire(export)) as second:
        assert second.token > first.token
        assert await backend.leases("replica-a", ttl=5).acquire(export) is None
    assert not first.lost.is_set() and not second.lost.is_set()
    third = await backend.leases("replica-c", ttl=5).acquire(export)
    assert third is not None and third.token > second.token
    await third.release()
    if backend.kind != "redis":
        record = json.loads(backend.store.get(f"exports/{export}/lease") or b"{}")
        assert record["owner"] == "replica-c" and record["token"] == third.token
        assert record["expires_at"] == 0  # released: free, and the next token is still one higher


async def test_renewal_keeps_the_lease_well_past_its_ttl(backend: Backend) -> None:
    export, ttl = export_name(), 1.0
    held = await backend.leases("replica-a", ttl=ttl).acquire(export)
    assert held is not None
    other = backend.leases("replica-b", ttl=ttl)
    deadline = time.monotonic() + 3 * ttl
    while time.monotonic() < deadline:
        assert await other.acquire(export) is None
        await asyncio.sleep(0.1)
    assert not held.lost.is_set()
    await held.release()
    assert await other.acquire(export) is not None


async def test_a_renewal_that_finds_another_holder_loses_the_lease(backend: Backend) -> None:
    export, ttl = export_name(), 1.0
    held = await backend.leases("replica-a", ttl=ttl).acquire(export)
    assert held is not None
    # Someone else's lease record appears (what a takeover after a missed expiry leaves behind).
    if backend.redis_url:
        import redis

        client = redis.Redis.from_url(backend.redis_url)
        client.set(f"{backend.prefix}{{{export}}}", "replica-z/0123", px=10_000)
        client.close()
    else:
        record = {"owner": "replica-z", "token": held.token + 1, "expires_at": time.time() + 10}
        backend.store.put(f"exports/{export}/lease", json.dumps(record).encode())
    async with asyncio.timeout(10):
        await held.lost.wait()
    await held.release()  # a lost lease is not released: the other holder keeps it
    assert await backend.leases("replica-b", ttl=ttl).acquire(export) is None


async def test_a_frozen_holder_is_taken_over_after_expiry_and_learns_it_lost(
    backend: Backend, tmp_path: Path
) -> None:
    export, ttl = export_name(), 1.5
    holder = ScriptProcess(HOLDER, tmp_path / "holder.log", redis=backend.redis_url or "",
                           state=backend.state_url, prefix=backend.prefix, export=export, owner="replica-a",
                           ttl=ttl)
    try:
        wait_until(lambda: bool(holder.seen("held")), "the holder's lease")
        old_token = holder.seen("held")[0]["token"]
        holder.signal(signal.SIGSTOP)  # a replica that stops answering (GC pause, frozen VM) without dying
        leases = backend.leases("replica-b", ttl=ttl)
        async with asyncio.timeout(30):
            while (lease := await leases.acquire(export)) is None:
                await asyncio.sleep(0.05)
        assert lease.token > old_token
        holder.signal(signal.SIGCONT)
        wait_until(lambda: bool(holder.seen("lost")), "the old holder noticing")
        holder.send("release")
        holder.finish(event="released")
        # The old holder's release did not free the new holder's lease.
        assert await backend.leases("replica-c", ttl=ttl).acquire(export) is None
        assert not lease.lost.is_set()
        await lease.release()
    finally:
        holder.signal(signal.SIGCONT)
        holder.kill()


async def test_a_killed_holder_is_taken_over_after_expiry(backend: Backend, tmp_path: Path) -> None:
    export, ttl = export_name(), 1.5
    holder = ScriptProcess(HOLDER, tmp_path / "holder.log", redis=backend.redis_url or "",
                           state=backend.state_url, prefix=backend.prefix, export=export, owner="replica-a",
                           ttl=ttl)
    try:
        wait_until(lambda: bool(holder.seen("held")), "the holder's lease")
    finally:
        holder.kill()
    leases = backend.leases("replica-b", ttl=ttl)
    assert await leases.acquire(export) is None  # not before it expires
    async with asyncio.timeout(30):
        while (lease := await leases.acquire(export)) is None:
            await asyncio.sleep(0.05)
    assert lease.token > holder.seen("held")[0]["token"]
    await lease.release()


async def test_an_unreachable_store_never_grants_a_lease(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    leases = open_leases(None, open_store(str(blocker / "state")), ttl=5, owner="replica-a")
    with pytest.raises(LeaseUnavailable, match="state"):
        await leases.acquire("vip")


# Redis restarts -----------------------------------------------------------------------------------------

async def test_a_redis_restart_without_persistence_keeps_a_held_lease(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="worker.leases.lease")
    ttl = 3.0
    leases = open_leases(private_redis.url, open_store("unused"), ttl=ttl, owner="replica-a")
    try:
        held = await leases.acquire("vip")
        assert held is not None
        private_redis.stop()
        with pytest.raises(LeaseUnavailable):
            await open_leases(private_redis.url, open_store("unused"), ttl=ttl, owner="replica-b").acquire("x")
        await until(lambda: any("renewal failed" in r.getMessage() for r in caplog.records))
        private_redis.start()  # empty: the lease key is gone
        await until(lambda: any("renewed again" in r.getMessage() for r in caplog.records))
        assert not held.lost.is_set()
        assert private_redis.client().get("segment-export:lease:{vip}").startswith(b"replica-a/")
        assert await open_leases(private_redis.url, open_store("unused"), ttl=ttl,
                                 owner="replica-b").acquire("vip") is None
        await held.release()
        assert private_redis.client().exists("segment-export:lease:{vip}") == 0
        # The counter was lost with the restart, yet tokens still increase.
        again = await leases.acquire("vip")
        assert again is not None and again.token > held.token
        await again.release()
    finally:
        await close_redis_clients()
    texts = " ".join(r.getMessage() for r in caplog.records)
    assert private_redis.password and private_redis.password not in texts


async def test_redis_down_longer_than_the_ttl_loses_the_lease(private_redis: PrivateRedis) -> None:
    leases = open_leases(private_redis.url, open_store("unused"), ttl=1.0, owner="replica-a")
    try:
        held = await leases.acquire("vip")
        assert held is not None
        private_redis.stop()
        async with asyncio.timeout(10):
            await held.lost.wait()
        await held.release()  # nothing to do, and no error
    finally:
        await close_redis_clients()


def await_lease(acquiring: object) -> _Held:
    return _Held(acquiring)


class _Held:
    """``async with await_lease(leases.acquire(x)) as lease``: acquire, assert it was granted, release."""

    def __init__(self, acquiring: object) -> None:
        self._acquiring = acquiring
        self._lease: Lease | None = None

    async def __aenter__(self) -> Lease:
        self._lease = await self._acquiring  # type: ignore[misc]
        assert self._lease is not None, "the lease was not granted"
        return self._lease

    async def __aexit__(self, *exc: object) -> None:
        assert self._lease is not None
        await self._lease.release()


async def until(condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
