"""``python -m tests.run.walker [--store file|s3] [--every N]``: walk every case and print the walker's table.

Starts its own simulator (and, for ``--store s3``, moto's S3 server), runs every case of ``walk.Walk`` in
this process and prints: the steps walked by kind, the cases per step, the violations found by kind (with
one example each), and the time. Exit status 1 when any case broke an invariant. ``--every N`` walks every
N-th step only (a quick look).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.run.walker", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", choices=["file", "s3"], default="file")
    p.add_argument("--every", type=int, default=1, help="walk every N-th step only")
    p.add_argument("--verbose", action="store_true", help="print every case that broke an invariant")
    p.add_argument("--sweep", type=int, default=0, metavar="N",
                   help="instead of the walk, N interleavings of the randomized sweep (tests/run/walker/sweep.py)")
    p.add_argument("--seed", type=int, default=1, help="the sweep's first seed (default 1)")
    args = p.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the engine's own logs: thousands of lines, none needed here

    from tests.run.walker.walk import Walk, write_snapshots
    from tests.run.walker.world import KEY, KEY_ENV, SCALE, Stores
    from worker.sim import SimClient, SimSettings, SimulatorServer

    os.environ[KEY_ENV] = KEY
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        moto = None
        if args.store == "s3":
            moto = _moto()
        try:
            with SimulatorServer(SimSettings(api_keys=(KEY,), processing_delay=0.0, rate_scale=SCALE)) as server:
                stores = Stores(args.store, Path(tmp) / "stores", "walker" if moto else None)
                walk = Walk(SimClient(server.url), stores, write_snapshots(Path(tmp) / "snapshots"))
                walk.prepare()
                if args.sweep:
                    return _sweep(walk, args.seed, args.sweep, args.verbose, started)
                every = {id(step) for i, step in enumerate(walk.steps()) if i % args.every == 0}
                cases = [c for c in walk.cases() if c[0] is None or id(c[0]) in every]
                kinds: Counter[str] = Counter()
                instances: Counter[str] = Counter()
                examples: dict[str, str] = {}
                broken = 0
                for step, kind, competitor in cases:
                    outcome = walk.case(step, kind, competitor)
                    if not outcome.case.violations:
                        continue
                    broken += 1
                    where = (f"{step.label} #{step.occurrence}" if step else "after the last step") + \
                        f", {kind.value if kind else 'ack lost'}, {competitor.value}"
                    if args.verbose:
                        print(f"{where}: {outcome.case.violations[:4]}", flush=True)
                    seen = set()
                    for v in outcome.case.violations:
                        k = v.split(":", 1)[0]
                        instances[k] += 1
                        if k not in seen:
                            seen.add(k)
                            kinds[k] += 1
                        examples.setdefault(k, f"{v} [{where}]")
        finally:
            if moto is not None:
                moto.stop()
    walked = walk.steps()
    steps = Counter(s.kind for s in walked)
    print(f"store: {args.store}; steps walked: {len(walked)} ({steps['store']} store writes, "
          f"{steps['ac']} ActiveCampaign requests, {steps['broker']} publish) + after the last step")
    print(f"cases per step: 2 faults (crash before, lose the reply; a store write also: the store fails) x 4 "
          f"continuations (resume; same refresh again; older refresh late; newer refresh) = 8 (12 for a store "
          f"write); {len(cases)} cases")
    print(f"cases that broke an invariant: {broken}")
    for k, count in kinds.most_common():
        print(f"  {count:4d} cases, {instances[k]:5d} instances  {k}   e.g. {examples[k]}")
    print(f"time: {time.monotonic() - started:.1f} s")
    return 1 if broken else 0


def _sweep(walk, first: int, n: int, verbose: bool, started: float) -> int:  # type: ignore[no-untyped-def]
    from tests.run.walker.sweep import sweep

    faults: Counter[str] = Counter()
    deliveries = 0
    failed = []
    for seed in range(first, first + n):
        result = sweep(walk, seed)
        faults.update(result.faults)
        deliveries += result.deliveries
        if result.violations:
            failed.append(seed)
            print(f"seed {seed}: {result.violations[:5]}\n  history: {result.history}", flush=True)
        elif verbose:
            print(f"seed {seed}: ok; {result.history}", flush=True)
    print(f"sweep: {n} interleavings (seeds {first}..{first + n - 1}), {deliveries} deliveries, "
          f"{sum(faults.values())} faults met ({', '.join(f'{v} {k}' for k, v in faults.items())}); "
          f"failed seeds: {failed or 'none'}; {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


def _moto():  # type: ignore[no-untyped-def]
    from moto.server import ThreadedMotoServer

    from tests.conftest import _atomic_conditional_puts, free_port

    _atomic_conditional_puts()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    import boto3

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="walker")
    return server


if __name__ == "__main__":
    sys.exit(main())
