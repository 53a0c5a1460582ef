"""Leases in the state store, for deployments without Redis: ``exports/<export>/lease``.

The record is JSON ``{"owner", "token", "expires_at"}``. Taking a free lease is ``put_if_absent``; taking
an expired one, renewing and releasing are ``replace_if_unchanged`` on the version just read, so of two
replicas racing for one record exactly one wins, on a folder and on S3 alike. Releasing keeps the record
(expired, same token) so the next holder's token is still one higher.

Why wall-clock time (``time.time()``): the record is read by other hosts, and the only clock they share is
the wall clock (NTP). A monotonic clock means nothing on another machine. Clock skew between hosts eats
into the holder's safety margin (see `Lease`), which is why the holder gives up its lease well before
``expires_at``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from worker.leases.lease import Grant, LeaseUnavailable, Renewal
from worker.state import StateError, StateStore

__all__ = ["StoreLeases", "lease_key"]


def lease_key(export: str) -> str:
    """Where an export's lease record lives in the state store."""
    return f"exports/{export}/lease"


class StoreLeases:
    """The lease `Backend` on a `StateStore` (file or S3)."""

    name = "state store"

    def __init__(self, store: StateStore, owner: str) -> None:
        self._store = store
        self._owner = owner

    async def _io(self, call: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(call, *args)
        except StateError as exc:
            raise LeaseUnavailable(str(exc)) from None

    async def _read(self, export: str) -> tuple[dict[str, Any], str] | None:
        found = await self._io(self._store.get_versioned, lease_key(export))
        if found is None:
            return None
        data, version = found
        return _parse(data, export), version

    def _record(self, token: int, ttl: float) -> bytes:
        return json.dumps({"owner": self._owner, "token": token, "expires_at": time.time() + ttl}).encode()

    async def try_acquire(self, export: str, ttl: float) -> Grant | None:
        key = lease_key(export)
        current = await self._read(export)
        if current is None:
            token, data = 1, self._record(1, ttl)
            written = await self._io(self._store.put_if_absent, key, data)
        else:
            record, version = current
            if float(record["expires_at"]) > time.time():
                return None
            token = int(record["token"]) + 1
            data = self._record(token, ttl)
            written = await self._io(self._store.replace_if_unchanged, key, data, version)
        if not written:  # somebody else won (a lost answer to our own write is resolved by the store)
            return None
        return Grant(token, self._owner)

    async def renew(self, export: str, grant: Grant, ttl: float) -> Renewal:
        current = await self._read(export)
        if current is None or not _is_ours(current[0], grant):
            return "lost"
        data = self._record(grant.token, ttl)
        written = await self._io(self._store.replace_if_unchanged, lease_key(export), data, current[1])
        return "renewed" if written else "lost"

    async def release(self, export: str, grant: Grant) -> None:
        """Expire our record. A renewal cut short by the release may still land after it was read (its
        request was on its way): then the record is still ours at a new version, and is expired again."""
        data = json.dumps({"owner": self._owner, "token": grant.token, "expires_at": 0}).encode()
        for _ in range(3):
            current = await self._read(export)
            if current is None or not _is_ours(current[0], grant):
                return
            if await self._io(self._store.replace_if_unchanged, lease_key(export), data, current[1]):
                return


def _is_ours(record: dict[str, Any], grant: Grant) -> bool:
    return record.get("owner") == grant.holder and record.get("token") == grant.token


def _parse(data: bytes, export: str) -> dict[str, Any]:
    try:
        record = json.loads(data)
        if isinstance(record, dict) and isinstance(record.get("token"), int):
            float(record["expires_at"])
            return record
    except (ValueError, TypeError, KeyError):
        pass
    raise LeaseUnavailable(
        f"the lease record {lease_key(export)} is not valid JSON {{owner, token, expires_at}}; "
        "delete it (no run of this export may be in progress) and retry"
    )
