"""One replica for the component tests, run as a process: the real ActiveCampaignClient and BulkImporter
with the limiter `make_limiter` builds for a redis_url, against the simulator.

Protocol on stdin/stdout (JSON lines out): prints {"event": "ready"}, waits for a "go" line, imports
batches (``--batches N``, or until a "stop" line when N is 0), printing {"event": "degraded", "value": b}
as the limiter reports it, and finally {"event": "done", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

from worker.activecampaign import ActiveCampaignClient, Batch, BatchOutcome, BulkAccepted, BulkImporter
from worker.activecampaign.limiter_factory import make_limiter
from worker.clients.redis import close_redis_clients
from worker.privacy.secret import Secret

LIST_ID = 3


def emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def main(opts: argparse.Namespace) -> None:
    limiter = make_limiter(
        connection_name="marketing", hostname="acct.api-us1.com", requests_per_second=opts.rps,
        bulk_per_minute=opts.bpm, redis_url=opts.redis, expected_replicas=opts.replicas,
        on_degraded=lambda name, degraded: emit({"event": "degraded", "value": degraded}),
        key_prefix=opts.prefix,
    )
    emit({"event": "ready"})
    await asyncio.to_thread(sys.stdin.readline)  # "go"
    stop = asyncio.Event()
    if opts.batches == 0:
        reader = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
        reader.add_done_callback(lambda _: stop.set())
    accepted: list[int] = []
    final: list[BatchOutcome] = []

    async def feed() -> AsyncIterator[Batch]:
        number = 0
        while (number < opts.batches) if opts.batches else not stop.is_set():
            emails = [f"r{opts.replica}-{number}-{i}@example.com" for i in range(opts.size)]
            contacts = [{"email": e, "subscribe": [{"listid": LIST_ID}]} for e in emails]
            yield Batch(number=number, contacts=contacts, emails=emails)
            number += 1

    async def on_accepted(batch: Batch, result: BulkAccepted) -> None:
        accepted.append(batch.number)

    async def on_final(outcome: BatchOutcome) -> None:
        final.append(outcome)

    async with ActiveCampaignClient(opts.sim, Secret("sim-key"), limiter, retry_base=0.05, retry_cap=0.5) as ac:
        importer = BulkImporter(ac, LIST_ID, expected_delay=0.3)
        await importer.run(feed(), on_accepted=on_accepted, on_final=on_final)
    emit({"event": "done", "accepted": len(accepted), "completed": sum(o.status == "completed" for o in final),
          "waited": limiter.waited_seconds})
    aclose = getattr(limiter, "aclose", None)
    if aclose is not None:
        await aclose()
    await close_redis_clients()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name, kind in (("sim", str), ("redis", str), ("prefix", str), ("replica", int), ("replicas", int),
                       ("batches", int), ("size", int), ("rps", float), ("bpm", float)):
        parser.add_argument(f"--{name}", type=kind, required=True)
    asyncio.run(main(parser.parse_args()))
