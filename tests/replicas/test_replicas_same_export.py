"""Must show 4 (issue 9): the same export requested on two replicas at once. One runs; the other finds the
export's lease held and puts its request back with a delay (``segment_export_lease_busy_total`` and a log
line), then runs once the first is over and finds nothing left to send. Exactly one completion per run,
no batch sent twice, the list exact.

Two flavours: RabbitMQ with Redis (leases in Redis), and SQS with the state on S3 and no Redis (leases
in the state store), both on moto's server for the latter, at a smaller size.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Broker
from tests.replicas.harness import (
    BULK_PATH,
    Account,
    Completions,
    all_alive,
    make_export,
    requested,
    unique_name,
    wait_until,
    write_configs,
)

LEASE_SECONDS = 6  # a busy request comes back after half of it
BULK_PER_MINUTE = 300.0  # the connection's budget, below the simulator's: the first run sends for seconds
BUSY = "segment_export_lease_busy_total"


def requested_twice(tmp_path: Path, broker: Broker, account: Account, workers: Callable[..., Any], *,
                    people: int, state_url: str, redis_url: str | None,
                    note_redis: Callable[..., None] | None = None) -> None:
    export = make_export(tmp_path, unique_name("twice"), account, 3, range(1, people + 1))
    if note_redis is not None:
        note_redis(hostnames=account.account_keys, exports=[export.name])
    # One delivery at a time per replica, so the two requests land on the two replicas.
    replicas = write_configs(tmp_path, broker, [account], [export], count=2, state_url=state_url,
                             redis_url=redis_url, worker={"lease_seconds": LEASE_SECONDS, "concurrency": 1})
    for r in replicas:
        r.proc = workers(r.config)
    alive = all_alive(replicas)

    first, second = requested(export), requested(export)
    broker.publish(first)
    broker.publish(second)
    done = Completions(broker)
    wait_until(lambda: len(done.of(export.name)) >= 2 or done.failed(), 300, "a completion of both runs",
               interval=0.5, check=alive)
    broker.wait_idle(120, check=alive)

    events = done.of(export.name)
    assert done.failed() == [], done.failed()
    assert len(events) == 2 and len({e["run_id"] for e in events}) == 2, events  # one completion per run
    ran, waited = sorted(events, key=lambda e: e["counts"]["added"], reverse=True)
    busy = [r.metric(BUSY, export=export.name) for r in replicas]
    posts = [r for r in account.requests() if r["method"] == "POST" and r["path"] == BULK_PATH]
    print(f"\nsame export requested twice ({broker.kind}, leases in {'Redis' if redis_url else 'the state store'}): "
          f"first run {ran['duration_seconds']:.1f}s, requests put back {busy} times (replica 0, 1), "
          f"{len(posts)} bulk imports for {export.batches} batches")

    assert ran["status"] == waited["status"] == "succeeded", events
    assert ran["counts"]["added"] == people and ran["counts"]["failed"] == 0, ran["counts"]
    # The second ran only after the first had committed: it found every contact synced and sent nothing.
    assert waited["counts"]["added"] == 0 and waited["counts"]["unchanged"] == people, waited["counts"]
    assert [r["status"] for r in posts] == [200] * export.batches, "a batch was sent twice (or refused)"
    assert sum(r["contacts"] for r in posts) == people
    account.assert_list_exact(3, export.segment.expected)

    # One waited: its request was put back with a delay, said in the metric and the log, on that replica.
    waiting = [r for r, n in zip(replicas, busy, strict=True) if n > 0]
    assert waiting, "neither replica found the lease held: the runs did not meet"
    for r in waiting:
        assert r.logged("another run of this export holds its lease", export=export.name)
    # ... and came back at the pace of its delay, not in a loop: one try per half lease while the first ran.
    assert sum(busy) <= math.ceil(ran["duration_seconds"] / (LEASE_SECONDS / 2)) + 2, busy
    assert broker.read_dead() == []


@pytest.mark.slow
def test_same_export_on_two_replicas_rabbitmq_and_redis(tmp_path: Path, rabbit_delays, redis_url: str, accounts,
                                                        workers, shared_redis_keys) -> None:
    account = accounts("twice", bulk_per_minute=BULK_PER_MINUTE)
    requested_twice(tmp_path, rabbit_delays, account, workers, people=10_000, state_url=f"file://{tmp_path / 'state'}",
                    redis_url=redis_url, note_redis=shared_redis_keys)


@pytest.mark.slow
def test_same_export_on_two_replicas_sqs_and_s3_without_redis(tmp_path: Path, make_sqs, s3_bucket: str, accounts,
                                                              workers) -> None:
    account = accounts("twice-sqs", bulk_per_minute=BULK_PER_MINUTE)
    requested_twice(tmp_path, make_sqs(), account, workers, people=5_000, state_url=f"s3://{s3_bucket}/state",
                    redis_url=None)
