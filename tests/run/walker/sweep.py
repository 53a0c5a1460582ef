"""The randomized sweep: longer histories than the walk's, with several crashes and lost answers, from seeds.

One *interleaving* per seed, from the walk's base: 3 to 6 deliveries of refreshes drawn from r0, r1, r1
requested again (another run id), r2 and r3, in any order (an older refresh arrives late, a refresh comes
twice). Every delivery, and every redelivery of a run that a crash or a lost answer handed back, meets a
fault with probability 0.6 at a random step of its process (crash before it, or lose its answer); the runs
handed back come back at random later points, interleaved with the others; at the end every pending run is
delivered until it is done (after three faults, a run is left alone). Then the walk's invariants hold, the
newest refresh delivered being the one the list must show.

``python -m tests.run.walker --sweep N [--seed S]`` runs N interleavings from seed S; ``make chaos`` runs the
``protocol-sweep`` scenario (on S3). A failure names its seed: the same seed replays the same history.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.run.walker.walk import Walk, check
from tests.run.walker.world import (
    EXPORT,
    MAX_DELIVERIES,
    R0,
    R1,
    R2,
    R3,
    Fault,
    FaultKind,
    Refresh,
    World,
)
from worker.run.runbook import run_id_for
from worker.run.types import RunSpec

POOL = ((R0, False), (R1, False), (R1, True), (R2, False), (R3, False))
FAULT_CHANCE = 0.6
FAULTS_PER_RUN = 3
MAX_STEP = 50  # faults land on one of the first steps of a process (a whole run has about 50)


@dataclass
class Interleaving:
    seed: int
    deliveries: int = 0
    faults: Counter[str] = field(default_factory=Counter)  # "crash before" / "lose the reply" -> met
    violations: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    newest: Refresh | None = None  # the newest refresh delivered: the one the list must show


def sweep(walk: Walk, seed: int, on_publish: Callable[[dict[str, Any]], None] | None = None) -> Interleaving:
    """Play the interleaving of ``seed`` in a fresh copy of the base; never raises for what it finds."""
    out = Interleaving(seed)
    world = walk.world(tag=f"s{seed}-", on_publish=on_publish)
    walk.sim.restore("walk-base")
    try:
        out.violations = asyncio.run(_play(world, random.Random(seed), out))
    except Exception as exc:  # the sweep's own machinery failing is a finding too
        out.violations = [f"error: {type(exc).__name__}: {exc}"[:300]]
    return out


async def _play(world: World, rng: random.Random, out: Interleaving) -> list[str]:
    picks = [rng.choice(POOL) for _ in range(rng.randint(3, 6))]
    queue: list[RunSpec] = []
    for n, (refresh, requested) in enumerate(picks):
        run_id = run_id_for(EXPORT, f"{world.tag}{refresh.name}\0requested-{n}") if requested else None
        queue.append(world.spec(refresh, run_id))
    refreshes = {world.tag + r.name: r for r, _ in picks}
    runs = {s.run_id: s for s in queue}
    pending: list[RunSpec] = []
    faults: Counter[str] = Counter()
    deliveries: Counter[str] = Counter()
    while queue or pending:
        if pending and (not queue or rng.random() < 0.4):
            spec = pending.pop(rng.randrange(len(pending)))
        else:
            spec = queue.pop(0)
        fault = None
        if faults[spec.run_id] < FAULTS_PER_RUN and rng.random() < FAULT_CHANCE:
            kind = FaultKind.CRASH if rng.random() < 0.7 else FaultKind.LOSE
            fault = Fault("", 0, kind, at=rng.randint(1, MAX_STEP))
            faults[spec.run_id] += 1
        deliveries[spec.run_id] += 1
        if deliveries[spec.run_id] > MAX_DELIVERIES:
            return [f"run never finished: {spec.run_id} (stuck after {MAX_DELIVERIES} deliveries)"]
        how = await world.deliver(spec, fault)
        met = world.processes[-1].faulted
        if met is not None and fault is not None:
            out.faults[fault.kind.value] += 1
        out.history.append(f"{spec.refresh_id}/{spec.run_id[-6:]}: "
                           f"{f'{fault.kind.value} {met.label}, ' if met and fault else ''}{how}")
        if how in ("again", "crashed"):
            pending.append(spec)
    out.deliveries = sum(deliveries.values())
    out.newest = max(refreshes.values(), key=lambda r: r.occurred_at)
    return check(world, runs, out.newest)
