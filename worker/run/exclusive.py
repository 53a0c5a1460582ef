"""Holding an export's lease outside a run: ``verify --repair`` and ``forget`` change its synced state.

Why the lease: a run reads the synced state at its start and commits a new one at its end; a change
made in between is caught by the commit's compare-and-swap, but then the run is retried from scratch.
Holding the export's lease (the one runs take, ``worker.leases``) while the state is changed means no
run of the export is in progress, and none starts, until the change is committed.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from worker.leases import Lease, Leases, LeaseUnavailable, open_leases
from worker.settings import Config
from worker.state import StateStore


class ExportBusy(Exception):
    """A run of the export holds its lease (or the lease backend cannot be asked): try again later."""


def leases_for(config: Config, store: StateStore, purpose: str) -> Leases:
    w = config.worker
    return open_leases(w.redis_url, store, ttl=w.lease_seconds,
                       owner=f"{purpose}-{socket.gethostname()}-{os.getpid()}")


@asynccontextmanager
async def holding(leases: Leases, export: str, *, wait: float) -> AsyncIterator[Lease]:
    """The export's lease, waiting up to ``wait`` seconds (a killed holder's lease expires by then)."""
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            lease = await leases.acquire(export)
        except LeaseUnavailable as exc:
            raise ExportBusy(f"the lease of export {export} could not be asked for ({exc})") from None
        if lease is not None:
            break
        if asyncio.get_running_loop().time() > deadline:
            raise ExportBusy(f"export {export} is being run (another worker holds its lease); try again when "
                             f"that run is over")
        await asyncio.sleep(1.0)
    async with lease:
        yield lease
