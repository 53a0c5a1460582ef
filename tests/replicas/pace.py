"""The shared-budget scenario (issue 9, must show 1), used by the test at a short size and by
bench/replicas_bench.py at full size: three `segment-export run` replicas on RabbitMQ and one Redis, six
exports on one account and three on another, every account's simulator at 20x AC's budget.

Both accounts get the same number of contacts in all (the second's three exports are twice as large),
so both are busy for about as long. Each export has its own segment, so each is its own request
message and RabbitMQ spreads them over the replicas.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Broker, WorkerProc
from tests.replicas.harness import (
    Account,
    AccountFigures,
    Completions,
    ExportDef,
    Replica,
    all_alive,
    chunks,
    figures,
    make_export,
    refreshed,
    runs_started,
    unique_name,
    write_configs,
)

REPLICAS = 3


@dataclass
class PaceResult:
    accounts: list[Account]
    exports: list[ExportDef]
    replicas: list[Replica]
    completions: Completions
    figures: list[AccountFigures]
    runs_by_replica: dict[str, dict[int, int]]  # export -> replica index -> runs started

    def report(self) -> str:
        spread = {name: sorted(r) for name, r in self.runs_by_replica.items()}
        return "\n".join([f"shared budget, {REPLICAS} replicas:", *("  " + f.line() for f in self.figures),
                          f"  runs by replica: {spread}"])


def run_pace_scenario(tmp_path: Path, broker: Broker, redis_url: str,
                      open_account: Callable[..., Account], start_worker: Callable[[Path], WorkerProc], *,
                      people_per_a_export: int, timeout: float = 900.0,
                      note_redis: Callable[..., Any] | None = None) -> PaceResult:
    """Run the scenario to its end (every export completed, the queue idle) and read the figures."""
    a = open_account("a", lists=6)
    b = open_account("b", lists=3)
    sizes = [people_per_a_export] * 6 + [2 * people_per_a_export] * 3
    people = list(chunks(1, sizes))
    exports = [make_export(tmp_path, unique_name(f"pace-a{i + 1}"), a, i + 1, people[i]) for i in range(6)]
    exports += [make_export(tmp_path, unique_name(f"pace-b{i + 1}"), b, i + 1, people[6 + i]) for i in range(3)]
    if note_redis is not None:
        note_redis(hostnames=[*a.account_keys, *b.account_keys], exports=[e.name for e in exports])
    replicas = write_configs(tmp_path, broker, [a, b], exports, count=REPLICAS, redis_url=redis_url,
                             worker={"expected_replicas": REPLICAS})
    for r in replicas:
        r.proc = start_worker(r.config)
    alive = all_alive(replicas)
    # Round-robin over three consumers: this order gives each replica two exports of a and one of b.
    a_exports, b_exports = exports[:6], exports[6:]
    order = [a_exports[0], a_exports[1], b_exports[0], a_exports[2], b_exports[1], a_exports[3], b_exports[2],
             a_exports[4], a_exports[5]]
    for e in order:
        broker.publish(refreshed(e))
    done = Completions(broker)
    done.wait([e.name for e in exports], timeout, check=alive)
    broker.wait_idle(120, check=alive)
    return PaceResult([a, b], exports, replicas, done, [figures(a), figures(b)],
                      {e.name: runs_started(replicas, e.name) for e in exports})
