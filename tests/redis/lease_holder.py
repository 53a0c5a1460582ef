"""A lease holder run as a process, so a test can freeze it (SIGSTOP) or kill it like a real replica.

Prints {"event": "held", "token": n} once it holds the export's lease, then {"event": "lost"} if the lease
is lost, or {"event": "released"} after a "release" line on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from worker.clients.redis import close_redis_clients
from worker.leases import open_leases
from worker.state import open_store


def emit(event: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def main(opts: argparse.Namespace) -> None:
    store = open_store(opts.state)
    await asyncio.to_thread(store.get, "warm-up")  # a first S3 call builds the client: not part of the lease
    leases = open_leases(opts.redis or None, store, ttl=opts.ttl, owner=opts.owner, key_prefix=opts.prefix)
    async with asyncio.timeout(60):
        while (lease := await leases.acquire(opts.export)) is None:
            await asyncio.sleep(0.05)
    emit({"event": "held", "token": lease.token})
    release = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
    lost = asyncio.ensure_future(lease.lost.wait())
    await asyncio.wait([release, lost], return_when=asyncio.FIRST_COMPLETED)
    if lost.done():
        emit({"event": "lost"})
    await release
    await lease.release()
    emit({"event": "released"})
    await close_redis_clients()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name, kind in (("redis", str), ("state", str), ("prefix", str), ("export", str), ("owner", str),
                       ("ttl", float)):
        parser.add_argument(f"--{name}", type=kind, required=True)
    asyncio.run(main(parser.parse_args()))
