"""The run protocol's randomized sweep (issue 15): long histories with several crashes and lost answers.

Where the crash-point walker (``tests/run/walker``, in ``make test``) takes every single step of one run,
this takes random histories: 3 to 6 deliveries of refreshes of one export (older ones late, one twice, the
same refresh requested again), each delivery and redelivery meeting, more often than not, a crash before a
random step or the loss of its answer, the interrupted runs coming back interleaved with the others
(``tests/run/walker/sweep.py``). It runs the real engine in this process against the stage's simulator over
HTTP and the state store on the stage's S3 bucket (moto), one interleaving per seed from ``--sweep-seed``.

After each interleaving the walk's invariants must hold (list exact, values, synced state = what AC holds,
one completion event per run, nothing sent twice beyond what the README allows, nobody who unsubscribed
themselves re-subscribed); a failing interleaving is a failed check naming its seed and how to replay it.
The row's columns measure the last interleaving's list and every event of record, published to the stage's
events exchange (a run's event re-published after a lost confirm is the same event: counted once here, and
checked identical by the sweep).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from chaos.stage import S3_KEY_ID, S3_SECRET, Stage
from tests.e2e.conftest import API_KEY

LIST = 3


def protocol_sweep(stage: Stage) -> None:
    from tests.run.walker.sweep import sweep
    from tests.run.walker.walk import Walk, write_snapshots
    from tests.run.walker.world import KEY_ENV, SELF_UNSUBSCRIBED, Stores, email, person

    first, n = stage.size.sweep_seed, stage.size.sweeps
    env = {KEY_ENV: API_KEY, "AWS_ENDPOINT_URL": stage.s3.meta.endpoint_url, "AWS_ACCESS_KEY_ID": S3_KEY_ID,
           "AWS_SECRET_ACCESS_KEY": S3_SECRET, "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    log_path = stage.dir / "sweep.log"
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s %(args)s"))
    loggers = [logging.getLogger(name) for name in ("segment_export", "worker")]  # the engine's, the client's
    saved_loggers = [(lg, lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:  # into the sweep's own log (searched below), not the suite's output
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
        lg.propagate = False
    stage.sim.client.configure(processing_delay=0.0, rate_scale=1000.0)
    published: set[str] = set()
    channel = stage.broker.conn.channel()

    def publish(event: dict[str, Any]) -> None:
        """The run's event of record to the events exchange (once per run: see the module docstring)."""
        from kombu import Producer

        if event["run_id"] in published:
            return
        published.add(event["run_id"])
        Producer(channel, auto_declare=False).publish(
            orjson.dumps(event), exchange=stage.broker.events_exchange, routing_key=event["type"],
            content_type="application/json", content_encoding="binary", retry=False)

    faults: Counter[str] = Counter()
    deliveries = 0
    failed: list[int] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            walk = Walk(stage.sim.client, Stores("s3", Path(tmp), stage.bucket), write_snapshots(Path(tmp)))
            walk.prepare()
            last = None
            for seed in range(first, first + n):
                result = sweep(walk, seed, on_publish=publish)
                last = result
                faults.update(result.faults)
                deliveries += result.deliveries
                if result.violations:
                    failed.append(seed)
                    stage.check(False, f"seed {seed}: {result.violations[:3]} (replay: python -m tests.run.walker "
                                       f"--store s3 --sweep 1 --seed {seed} --verbose)")
            stage.runs.update({run_id: "succeeded" for run_id in published})
            if last is not None and last.newest is not None:  # the table measures the last interleaving's list
                newest = last.newest
                stage.expected[LIST] = {email(i): {"FirstName": p["First"], "LastName": p["Last"], "Phone": ""}
                                        for i, v in newest.members.items() if i not in SELF_UNSUBSCRIBED
                                        for p in [person(i, v)]}
    finally:
        for lg, lg_level, propagate in saved_loggers:
            lg.removeHandler(handler)
            lg.setLevel(lg_level)
            lg.propagate = propagate
        handler.close()
        with contextlib.suppress(Exception):
            channel.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = log_path.read_text(errors="replace")
    leaked = [name for name, secret in (("API key", API_KEY), ("S3 secret", S3_SECRET)) if secret in text]
    stage.check(not leaked, f"the sweep's engine logs hold: {', '.join(leaked)}")
    whole = set(re.findall(r"p\d+@walk\.example\.com", text))
    stage.check(not whole, f"{len(whole)} unmasked email address(es) in the sweep's engine logs")
    stage.note(f"{n} interleavings (seeds {first}..{first + n - 1}) on S3: {deliveries} deliveries, "
               f"{sum(faults.values())} faults met ({', '.join(f'{v} {k}' for k, v in sorted(faults.items()))}); "
               f"{len(published)} runs published; failed seeds: {failed or 'none'}")

