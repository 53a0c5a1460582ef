"""Component tests: replica processes, each driving the real ActiveCampaignClient with a shared limiter,
on one simulated account at 20x AC's budget. Figures (pace, refusals) are printed, not asserted tightly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.redis.conftest import PrivateRedis
from tests.redis.processes import ScriptProcess, wait_until
from tests.redis.sim_support import accepted_posts, pace, refusals, replica
from worker.sim import SimClient, SimSettings, SimulatorServer

LIST_ID = 3
SIZE = 20  # contacts per batch: multi-contact imports (AC's per-minute bulk window), cheap to process
SETTINGS = SimSettings(rate_scale=20, processing_delay=0.2, seed=7)


def start_replicas(tmp_path: Path, server: SimulatorServer, redis: str, prefix: str, *, count: int,
                   batches: int) -> list[ScriptProcess]:
    s = server.settings
    replicas = [
        replica(tmp_path / f"replica-{i}.log", sim=server.url, redis=redis, prefix=prefix, replica=i,
                replicas=count, batches=batches, size=SIZE, rps=s.effective_rps,
                bpm=s.effective_bulk_per_minute)
        for i in range(count)
    ]
    try:
        wait_until(lambda: all(r.seen("ready") for r in replicas), "replicas ready")
    except BaseException:
        for r in replicas:
            r.kill()
        raise
    for r in replicas:
        r.send("go")
    return replicas


def report(title: str, sim: SimClient, server: SimulatorServer, results: list[dict[str, Any]]) -> float:
    refused, total = refusals(sim)
    measured = pace(accepted_posts(sim))
    ceiling = server.settings.effective_bulk_per_minute
    print(f"\n{title}: {total} requests, {refused} refused ({100 * refused / total:.2f}%), "
          f"bulk pace {measured:.0f}/min of {ceiling:.0f}/min ({100 * measured / ceiling:.1f}%), "
          f"accepted per replica {[r['accepted'] for r in results]}")
    return measured


def test_three_replicas_share_one_account_budget(tmp_path: Path, redis_url: str, key_prefix: str) -> None:
    batches = 60
    with SimulatorServer(SETTINGS) as server:
        sim = SimClient(server.url)
        replicas = start_replicas(tmp_path, server, redis_url, key_prefix, count=3, batches=batches)
        results = [r.finish() for r in replicas]
        members = sim.members(LIST_ID)
        refused, total = refusals(sim)
        report("3 replicas, shared Redis", sim, server, results)
    assert all(r["accepted"] == batches and r["completed"] == batches for r in results)
    assert all(r.seen("degraded") == [] for r in replicas)
    assert len(members) == 3 * batches * SIZE
    assert all(m["status"] == "subscribed" for m in members.values())
    assert refused < 0.005 * total
    # The pace is printed by report(), not asserted: speed lives in bench/replicas_bench.py.


def test_redis_stopped_mid_way_and_started_again(
    tmp_path: Path, private_redis: PrivateRedis
) -> None:
    def posts_beyond(count: int, more: int) -> bool:
        return len(accepted_posts(sim)) >= count + more

    with SimulatorServer(SETTINGS) as server:
        sim = SimClient(server.url)
        replicas = start_replicas(tmp_path, server, private_redis.url, "segment-export-test:", count=3, batches=0)
        try:
            wait_until(lambda: posts_beyond(0, 30), "bulk imports under the shared budget")
            private_redis.stop()
            at_stop = len(accepted_posts(sim))
            wait_until(lambda: all(r.seen("degraded") for r in replicas), "every replica degraded")
            wait_until(lambda: posts_beyond(at_stop, 60), "bulk imports while Redis is down")
            private_redis.start()
            at_start = len(accepted_posts(sim))
            wait_until(lambda: all(len(r.seen("degraded")) == 2 for r in replicas), "every replica back")
            wait_until(lambda: posts_beyond(at_start, 60), "bulk imports after Redis is back")
            for r in replicas:
                r.send("stop")
            results = [r.finish() for r in replicas]
        finally:
            for r in replicas:
                r.kill()
        members = sim.members(LIST_ID)
        refused, total = refusals(sim)
        report("3 replicas, Redis stopped and started", sim, server, results)
    for r in replicas:
        assert [e["value"] for e in r.seen("degraded")] == [True, False]
    assert all(r["completed"] == r["accepted"] > 0 for r in results)
    assert len(members) == sum(r["accepted"] for r in results) * SIZE
    assert refused < 0.02 * total
