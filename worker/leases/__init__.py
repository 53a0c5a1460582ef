"""Export leases: one run per export at a time across replicas.

Usage::

    leases = open_leases(config.worker.redis_url, store, ttl=config.worker.lease_seconds, owner=replica_id)
    lease = await leases.acquire(export.name)        # None: another replica holds it (put the request back)
    if lease is not None:
        async with lease:                            # renewed every ttl/3 while held; released on exit
            ... lease.valid_for(seconds) before each send; write lease.token with what the run records ...

With a ``redis_url`` leases live in Redis (`redis_backend`); without, in the state store as
``exports/<export>/lease`` (`store_backend`). `acquire` raises `LeaseUnavailable` when the backend cannot
be asked: it never grants a lease it could not record. The engine fences a run with its lease
(``worker.run.fence``).

May import: ``worker.state``, ``worker.clients``.
"""

from __future__ import annotations

import asyncio

from worker.leases.lease import Backend, Lease, LeaseUnavailable
from worker.state import StateStore

__all__ = ["Lease", "LeaseUnavailable", "Leases", "open_leases"]

#: Seconds an acquire may wait for the backend before LeaseUnavailable (at least the ttl).
ACQUIRE_TIMEOUT = 10.0


class Leases:
    """Hands out `Lease`s on exports from one backend."""

    def __init__(self, backend: Backend, *, ttl: float) -> None:
        if not ttl > 0:
            raise ValueError(f"lease ttl must be > 0 seconds, got {ttl!r}")
        self.backend = backend
        self.ttl = float(ttl)

    def __repr__(self) -> str:
        return f"Leases(backend={self.backend.name}, ttl={self.ttl})"

    async def acquire(self, export: str) -> Lease | None:
        """The export's lease, or None if another holder has it; LeaseUnavailable if nobody can tell."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            # A grant that took longer than the ttl is counted from `started`, so it is already lost
            # and the caller learns that at once; this bound only stops a backend that never answers.
            async with asyncio.timeout(max(self.ttl, ACQUIRE_TIMEOUT)):
                grant = await self.backend.try_acquire(export, self.ttl)
        except TimeoutError:
            raise LeaseUnavailable(f"the lease backend ({self.backend.name}) did not answer in time") from None
        return None if grant is None else Lease(self.backend, export, grant, self.ttl, started)


def open_leases(
    redis_url: str | None, store: StateStore, *, ttl: float, owner: str, key_prefix: str | None = None
) -> Leases:
    """Leases in Redis when ``redis_url`` is set, else in ``store``. ``owner`` names this replica (logs).

    ``key_prefix`` (Redis only) separates deployments or tests sharing one Redis.
    """
    if not owner:
        raise ValueError("lease owner must be a non-empty name for this replica (e.g. its host name and pid)")
    if redis_url:
        from worker.clients.redis import check_redis_url
        from worker.leases.redis_backend import DEFAULT_KEY_PREFIX, RedisLeases

        backend: Backend = RedisLeases(check_redis_url(redis_url), owner, key_prefix=key_prefix or DEFAULT_KEY_PREFIX)
    else:
        from worker.leases.store_backend import StoreLeases

        backend = StoreLeases(store, owner)
    return Leases(backend, ttl=ttl)
