"""The export's lease fences what a run sends and records (issue 15): an old holder's POST or record never
races the next holder.

A lease whose renewals fail is still held until its local expiry; the run must stop sending while the lease
would still outlast a request and the record of its answer (``worker.run.fence``), and write nothing once the
lease is gone. Real parts: leases in a real folder store (renewals cut at the store, as an outage would),
our client against the simulator over HTTP, the engine.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from worker.activecampaign.client import ActiveCampaignClient
from worker.activecampaign.errors import SendCancelled
from worker.activecampaign.limiter import AccountLimiter
from worker.leases import Leases, open_leases
from worker.privacy.secret import Secret
from worker.run.engine import Engine
from worker.run.fence import Fence, Fenced, FencedStore
from worker.run.hooks import Hooks
from worker.run.runbook import run_id_for
from worker.run.types import Progress, RunSpec
from worker.settings import Config, parse_config
from worker.sim import SimClient, SimSettings, SimulatorServer
from worker.state import FileStore, StateError

KEY = "fence-key-9a8b7c6d5e4f"
KEY_ENV = "FENCE_AC_KEY"


class CuttableLeases(FileStore):
    """A folder store whose lease record cannot be read or written while ``cut`` is set (an outage of the
    lease backend: renewals fail, the holder keeps its lease until its local expiry)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.cut = threading.Event()

    def _check(self, key: str) -> None:
        if self.cut.is_set() and key.endswith("/lease"):
            raise StateError(f"cannot reach {key}: cut")

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        self._check(key)
        return super().get_versioned(key)

    def _replace_if_unchanged(self, key: str, data: bytes, version: str) -> bool:
        self._check(key)
        return super()._replace_if_unchanged(key, data, version)


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, SimClient]]:
    monkeypatch.setenv(KEY_ENV, KEY)
    with SimulatorServer(SimSettings(api_keys=(KEY,), processing_delay=0.05, rate_scale=100)) as server:
        yield server.url, SimClient(server.url)


def bulk_posts(simc: SimClient) -> list[dict]:
    return [r for r in simc.requests() if r["method"] == "POST" and r["path"].endswith("/import/bulk_import")
            and r["status"] == 200]


async def test_a_write_leaves_only_while_the_lease_outlasts_it_and_its_record(tmp_path: Path, sim) -> None:
    url, simc = sim
    store = CuttableLeases(tmp_path / "state")
    lease = await open_leases(None, store, ttl=3.0, owner="a").acquire("vip")
    assert lease is not None
    fence = Fence(lease, request_timeout=1.0)
    fenced = FencedStore(store, fence)
    limiter = AccountLimiter(requests_per_second=500, bulk_per_minute=6000)
    store.cut.set()  # from now on the lease cannot be renewed
    refused_at = None
    async with ActiveCampaignClient(url, Secret(KEY), limiter, may_write=fence.may_send) as client:
        for i in range(200):  # bounded: the lease's local expiry comes within its ttl (3 s)
            try:
                await client.bulk_import([{"email": f"p{i}@example.com"}])
            except SendCancelled:
                refused_at = i
                break
            fenced.put(f"exports/vip/runs/r/batches/{i:05d}.accepted", b"{}")
            await asyncio.sleep(0.05)
        assert refused_at is not None, "a POST left although the lease could not be renewed for 10 s"
        # Refused while the lease is still held, with less left than a request and its record take.
        assert lease.valid_for(0.0) and not lease.valid_for(fence.hold)
        assert len(bulk_posts(simc)) == refused_at
        fenced.put("exports/vip/runs/r/still-held", b"1")  # records are still written: the lease is held
        await asyncio.wait_for(lease.lost.wait(), timeout=10)
    with pytest.raises(Fenced):
        fenced.put("exports/vip/runs/r/too-late", b"1")
    assert store.get("exports/vip/runs/r/too-late") is None
    await lease.release()


def config(url: str, tmp_path: Path, bulk_per_minute: float) -> Config:
    return parse_config({
        "worker": {"state_url": (tmp_path / "state").as_uri(), "lease_seconds": 3, "request_timeout_seconds": 1},
        "connections": {"sim": {"hostname": "sim.api-us1.com", "base_url": url, "api_key_env": KEY_ENV,
                                "data_privacy_consent": True, "requests_per_second": 500,
                                "bulk_requests_per_minute": bulk_per_minute}},
        "exports": {"vip": {"segment": "s", "connection": "sim", "list_id": 3,
                            "mapping": {"email": "Email", "first_name": "First"}}},
    })


class CutAfter(Hooks):
    """Cuts the lease backend once ``n`` batches were accepted."""

    def __init__(self, store: CuttableLeases, n: int) -> None:
        self.store, self.n = store, n

    def run_progress(self, progress: Progress) -> None:
        if progress.batches_sent >= self.n:
            self.store.cut.set()


async def test_a_holder_that_loses_its_lease_leaves_nothing_for_the_next_to_send_again(tmp_path: Path, sim) -> None:
    """The first holder's renewals fail mid-run: it stops sending while its lease still outlasts a request,
    records every batch it sent, and stops; the next holder takes over after expiry and sends no batch twice."""
    url, simc = sim
    snapshot = tmp_path / "seg.jsonl"
    snapshot.write_bytes(b"".join(orjson.dumps({"Email": f"p{i}@example.com", "First": f"F{i}"}) + b"\n"
                                  for i in range(250 * 12)))
    store = CuttableLeases(tmp_path / "state")
    simc.configure(latency=0.3)  # every answer takes 0.3 s: a request may still be on its way when time runs out
    slow = config(url, tmp_path, bulk_per_minute=240)  # one bulk import every 0.25 s: the run takes 3 s
    export = slow.exports["vip"]
    spec = RunSpec(export=export, snapshot_uri=snapshot.as_uri(), refresh_id="r1",
                   run_id=run_id_for("vip", "r1"), occurred_at="2026-12-01T10:00:00Z")
    first = Engine(slow, store, hooks=CutAfter(store, 2), leases=Leases(_backend(store, "a"), ttl=3.0))
    try:
        stopped = await first.run(spec)
    finally:
        await first.aclose()
    assert stopped.interrupted and stopped.lease_lost, stopped.outcome
    sent_by_first = len(bulk_posts(simc))
    assert 2 <= sent_by_first < 12
    store.cut.clear()
    simc.configure(latency=0.0)
    second = Engine(config(url, tmp_path, bulk_per_minute=6000), store,
                    leases=Leases(_backend(store, "b"), ttl=3.0))
    try:
        async with asyncio.timeout(30):
            while (done := await second.run(spec)).busy:  # the first holder's lease expires within 3 s
                await asyncio.sleep(0.2)
    finally:
        await second.aclose()
    assert done.exit_code == 0 and done.event is not None and done.event["counts"]["added"] == 3000
    assert len(bulk_posts(simc)) == 12, "a batch the first holder sent was sent again by the next"
    assert sum(m["status"] == "subscribed" for m in simc.members(3).values()) == 3000


def _backend(store: FileStore, owner: str):  # type: ignore[no-untyped-def]
    from worker.leases.store_backend import StoreLeases

    return StoreLeases(store, owner)
