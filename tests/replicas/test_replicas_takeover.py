"""Must show 2 (issue 9): kill -9 of the replica holding a run. Another replica takes the run over once the
lease has expired and finishes it: one completion event, the list exact, and ActiveCampaign accepted no
more bulk imports than the run's batches plus the ones in flight at the kill.

The takeover time (kill -> the first request of the new holder) is printed, not asserted: it is the
lease's remaining life plus the put-back delay of the redelivered request, whatever the machine does.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import run_id_for
from tests.replicas.harness import (
    BULK_PATH,
    Completions,
    all_alive,
    batch_records,
    lease_owner,
    make_export,
    refreshed,
    runs_started,
    unique_name,
    wait_until,
    write_configs,
)

LEASE_SECONDS = 6
PEOPLE = 20_000  # 80 bulk imports
BULK_PER_MINUTE = 300.0  # the connection's budget, below the simulator's: the run sends for about 16 s
MAX_CONCURRENT_POSTS = 16  # the importer's bound on POSTs in flight


@pytest.mark.slow
def test_kill_9_of_the_lease_holder_another_replica_takes_the_run_over(
        tmp_path: Path, rabbit_delays, redis_url: str, accounts, workers, shared_redis_keys) -> None:
    broker = rabbit_delays
    account = accounts("takeover", bulk_per_minute=BULK_PER_MINUTE)
    export = make_export(tmp_path, unique_name("takeover"), account, 3, range(1, PEOPLE + 1))
    shared_redis_keys(hostnames=account.account_keys, exports=[export.name])
    state_url = f"file://{tmp_path / 'state'}"
    replicas = write_configs(tmp_path, broker, [account], [export], count=3, state_url=state_url,
                             redis_url=redis_url, worker={"lease_seconds": LEASE_SECONDS, "request_timeout_seconds": 2})
    for r in replicas:
        r.proc = workers(r.config)
    total = export.batches

    broker.publish(refreshed(export, refresh_id="takeover-1"))
    run_id = run_id_for(export.name, "takeover-1")
    wait_until(lambda: batch_records(state_url, export.name, run_id)[0] >= 10, 120,
               "the run to have 10 batches accepted", interval=0.05, check=all_alive(replicas))
    owner = lease_owner(redis_url, export.name)
    assert owner is not None, "a run is sending without a lease in Redis"
    holders = [r for r in replicas if owner.split("/", 1)[0].endswith(f"-{r.pid}")]
    assert len(holders) == 1, (owner, [r.pid for r in replicas])
    holder = holders[0]
    assert holder.logged("run starting", export=export.name), "the lease holder did not start the run"

    assert holder.proc is not None
    holder.proc.kill()
    killed_at = time.monotonic()
    accepted_at_kill, _ = batch_records(state_url, export.name, run_id)
    assert accepted_at_kill < total, "the run was over before the kill: make it longer"
    # Every request the dead replica sent is in the simulator's log once a probe sent now is answered
    # (and nobody else may send for this export before its lease expires, seconds from now).
    account.caught_up()
    before = len(account.requests())
    wait_until(lambda: all(r["status"] != 0 for r in account.requests()[:before]), 30,
               "the dead replica's requests to be answered")
    posts_by_dead = sum(1 for r in account.requests()[:before]
                        if r["method"] == "POST" and r["path"] == BULK_PATH and r["status"] == 200)
    in_flight = posts_by_dead - accepted_at_kill
    assert 0 <= in_flight <= MAX_CONCURRENT_POSTS, (posts_by_dead, accepted_at_kill)

    survivors = [r for r in replicas if r is not holder]
    done = Completions(broker)
    done.wait([export.name], 180, check=all_alive(survivors))
    broker.wait_idle(60, check=all_alive(survivors))
    after = account.requests()[before:]
    assert after, "nobody sent anything after the kill"
    takeover = after[0]["at"] - killed_at

    events = done.of(export.name)
    posts = len(account.accepted_posts())
    print(f"\ntakeover: kill -9 of replica pid {holder.pid} with {accepted_at_kill} of {total} batches accepted "
          f"and {in_flight} in flight; first request of the new holder {takeover:.1f}s after the kill "
          f"(lease {LEASE_SECONDS}s); {posts} bulk imports accepted for {total} batches")
    assert len(events) == 1, events
    assert events[0]["run_id"] == run_id and events[0]["status"] == "succeeded", events[0]
    assert events[0]["counts"]["added"] == PEOPLE and events[0]["counts"]["failed"] == 0, events[0]["counts"]
    account.assert_list_exact(3, export.segment.expected)
    assert total <= posts <= total + in_flight, (posts, total, in_flight)
    started = runs_started(survivors, export.name)
    assert sum(started.values()) == 1, f"the run should be taken over once, by one survivor: {started}"
    assert broker.read_dead() == []
