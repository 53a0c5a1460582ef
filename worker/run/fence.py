"""The lease as a fence: a run writes nothing, and sends nothing, that could land after its lease is gone.

Why: losing the lease does not stop a request already on its way. If a bulk import leaves with less lease
left than the request may take, the next holder can read the run's records before this one records the
batchId, and send the batch again; a record that lands after the next holder read (or re-planned) would
describe a plan nobody follows any more. So:

- every ActiveCampaign write (bulk import, re-subscription) leaves only while the lease will still be
  valid for ``hold`` seconds: the request timeout and a quarter of it again for recording the answer
  (``may_send``, asked by the client right before each attempt, retries included);
- every state-store write of the run goes through ``FencedStore``, which refuses it once the lease is no
  longer valid (``Fenced``: the run stops as if interrupted and the next holder resumes from the records).

``config check`` refuses a ``lease_seconds`` under three request timeouts (``worker.settings.rules``): right
before a renewal a lease has about half its life left, so a healthy run never waits on the fence. Batch
records carry the lease's fencing token, so which holder wrote a record can be told afterwards.
"""

from __future__ import annotations

import builtins

from worker.leases import Lease
from worker.run.types import RunInterrupted
from worker.state import StateStore

#: What a POST needs left of the lease, in request timeouts: the request, then its record.
HOLD_PER_REQUEST = 1.25


class Fenced(RunInterrupted):
    """The run's lease is no longer valid: nothing more may be written; the next holder carries on."""


class Fence:
    """The guard of one run: ``may_send()`` before an ActiveCampaign write, ``check()`` before a store write."""

    def __init__(self, lease: Lease | None, request_timeout: float) -> None:
        self.lease = lease
        self.hold = HOLD_PER_REQUEST * request_timeout

    @property
    def token(self) -> int | None:
        return self.lease.token if self.lease is not None else None

    def may_send(self) -> bool:
        return self.lease is None or self.lease.valid_for(self.hold)

    def check(self) -> None:
        if self.lease is not None and not self.lease.valid_for(0.0):
            raise Fenced(f"the export lease (token {self.lease.token}) is no longer held: nothing more is written")


class FencedStore(StateStore):
    """``store`` for one run: reads as they are, every write checked against the run's ``fence`` first."""

    def __init__(self, store: StateStore, fence: Fence) -> None:
        self.inner = store
        self.fence = fence

    def __repr__(self) -> str:
        return f"FencedStore({self.inner!r})"

    def get(self, key: str) -> bytes | None:
        return self.inner.get(key)

    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        return self.inner.get_versioned(key)

    def put(self, key: str, data: bytes) -> None:
        self.fence.check()
        self.inner.put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self.fence.check()
        return self.inner.put_if_absent(key, data)

    def replace_if_unchanged(self, key: str, data: bytes, version: str | None) -> bool:
        self.fence.check()
        return self.inner.replace_if_unchanged(key, data, version)

    def _put_if_absent(self, key: str, data: bytes) -> bool:  # pragma: no cover - put_if_absent is overridden
        return self.put_if_absent(key, data)

    def _replace_if_unchanged(self, key: str, data: bytes, version: str) -> bool:  # pragma: no cover
        return self.replace_if_unchanged(key, data, version)

    def delete(self, key: str) -> None:
        self.fence.check()
        self.inner.delete(key)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def list_modified(self, prefix: str) -> builtins.list[tuple[str, float]]:
        return self.inner.list_modified(prefix)

    def uri(self, key: str) -> str:
        return self.inner.uri(key)
