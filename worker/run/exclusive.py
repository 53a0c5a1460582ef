"""Changing an export's synced state outside a run (``verify --repair``, ``forget``): the lease, and the plans.

Why the lease: a run reads the synced state at its start and commits a new one at its end; a change
made in between is caught by the commit's compare-and-swap, but then the run is retried from scratch.
Holding the export's lease (the one runs take, ``worker.leases``) while the state is changed means no
run of the export is in progress, and none starts, until the change is committed.

Why fold first: the run protocol's rule is that every commit folds in every plan still open on the state
it replaces (``worker.run.settle``): such a plan may have sent batches whose outcome only its records
hold, and once the state changes under it, it is never folded. So these commits fold the open plans in
first (``fold_open_plans``), exactly as a run does before it plans.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from worker.activecampaign.client import ActiveCampaignClient
from worker.activecampaign.importer import BulkImporter
from worker.contacts.synced import SyncedState
from worker.leases import Lease, Leases, LeaseUnavailable, open_leases
from worker.run.plans import live_plans
from worker.run.runbook import RunKeys
from worker.run.settle import settle
from worker.run.tags import GivenByOthers
from worker.run.types import RunError
from worker.settings import Config, Export
from worker.state import StateStore

#: Attempts at folding the open plans in before giving up (another commit won each time).
FOLD_ROUNDS = 3


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


async def fold_open_plans(store: StateStore, export: Export, client: Callable[[], ActiveCampaignClient], *,
                          others: GivenByOthers | None = None) -> bool:
    """Fold every plan still open on the export's synced state into it (the caller holds the lease);
    True when there were any (the state changed). ``client`` makes the client that polls their batches;
    ``others``: the tags the account's other exports give a contact (``worker.run.tags``)."""
    folded = False
    for _ in range(FOLD_ROUNDS):
        synced, version = await asyncio.to_thread(SyncedState.load, store, RunKeys(export.name, "-").synced)
        heads = await asyncio.to_thread(live_plans, store, export.name, synced.base, "-")
        if not heads:
            return folded
        async with client() as ac:
            await settle(store, export.name, export.list_id, heads, synced, version,
                         lambda: BulkImporter(ac, export.list_id), others=others)
        folded = True
    raise RunError("concurrent_commit", f"export {export.name}: its synced state kept changing while open plans "
                                        f"were folded in", transient=True)
