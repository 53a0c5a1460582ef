"""Lease: one export's run may proceed while this is held; `lost` says when it may not any more.

Why renewal with a local expiry: the holder cannot know at once that the lease ended (a crash elsewhere
does not send a message), so it keeps proving it is alive (renew every ttl/3) and counts down on its own
clock. If renewals fail (the backend is unreachable), the lease is kept until the last successful renewal
plus ttl minus a margin; after that another replica may already hold it, so `lost` is set and the run
must stop sending. The margin covers the gap between this host's clock and the backend's.

The fencing token is strictly increasing per export, so whatever the run writes can carry it and a
stale holder's late write can be recognised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Protocol, Self

__all__ = ["Backend", "Grant", "Lease", "LeaseUnavailable", "Renewal"]

log = logging.getLogger(__name__)

#: Share of the ttl kept in hand: a lease counts as lost this long before it could have expired elsewhere.
MARGIN_SHARE = 0.15
#: While renewals fail, try again this often (as a share of the ttl), until the local expiry.
RETRY_SHARE = 0.1

Renewal = Literal["renewed", "lost"]


class LeaseUnavailable(Exception):
    """The lease backend could not be asked (Redis or the state store unreachable); try again later."""


@dataclass(frozen=True)
class Grant:
    """What the backend handed out: the fencing token and the holder's unique identity there."""

    token: int
    holder: str


class Backend(Protocol):
    """Where leases live (Redis, or the state store). Unreachable: raise LeaseUnavailable."""

    name: str

    async def try_acquire(self, export: str, ttl: float) -> Grant | None:
        """Take the lease if nobody holds it (None if somebody does)."""
        ...

    async def renew(self, export: str, grant: Grant, ttl: float) -> Renewal:
        """Extend our lease by ttl from now, or report that someone else holds it."""
        ...

    async def release(self, export: str, grant: Grant) -> None:
        """Give the lease up if it is still ours (the token is kept, so the next holder gets a higher one)."""
        ...


class Lease:
    """A held lease on one export: ``token``, ``lost``, ``release()``; ``async with`` releases on exit."""

    def __init__(self, backend: Backend, export: str, grant: Grant, ttl: float, taken_at: float) -> None:
        self.export = export
        self.token = grant.token
        #: Set when the lease is lost (someone else holds it, or it could not be renewed in time).
        self.lost = asyncio.Event()
        self._backend = backend
        self._grant = grant
        self._ttl = ttl
        self._valid_until = taken_at + ttl * (1 - MARGIN_SHARE)
        self._released = False
        loop = asyncio.get_running_loop()
        self._clock = loop.time  # a monotonic clock, readable from any thread (store writes run in threads)
        self._renewer = loop.create_task(self._renew_loop(taken_at))

    def __repr__(self) -> str:
        state = "lost" if self.lost.is_set() else "released" if self._released else "held"
        return f"Lease(export={self.export!r}, token={self.token}, {state}, backend={self._backend.name})"

    def valid_for(self, seconds: float) -> bool:
        """Held, and still held ``seconds`` from now unless renewed (callable from any thread)."""
        return not (self.lost.is_set() or self._released) and self._valid_until - self._clock() >= seconds

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()

    async def release(self) -> None:
        """Stop renewing and give the lease up (idempotent; a backend failure is logged, the lease then
        simply expires)."""
        if self._released:
            return
        self._released = True
        self._renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewer
        if self.lost.is_set():
            return
        try:
            async with asyncio.timeout(self._ttl):
                await self._backend.release(self.export, self._grant)
        except (LeaseUnavailable, TimeoutError) as exc:
            log.warning("lease on export %s (token %d) not released (%s); it expires by itself",
                        self.export, self.token, _describe(exc))

    async def _renew_loop(self, last_try: float) -> None:
        loop = asyncio.get_running_loop()
        failing = False
        while True:
            interval = self._ttl * (RETRY_SHARE if failing else 1 / 3)
            await asyncio.sleep(max(0.0, min(last_try + interval, self._valid_until) - loop.time()))
            started = loop.time()
            if started >= self._valid_until:
                self._lose("not renewed in time")
                return
            try:
                async with asyncio.timeout(self._valid_until - started):
                    renewal = await self._backend.renew(self.export, self._grant, self._ttl)
            except Exception as exc:  # unreachable, slow, or a bug: keep it until the local expiry either way
                if not failing:
                    log.warning("lease on export %s (token %d): renewal failed (%s); kept for %.1fs more",
                                self.export, self.token, _describe(exc),
                                max(0.0, self._valid_until - loop.time()),
                                exc_info=not isinstance(exc, (LeaseUnavailable, TimeoutError)))
                failing = True
                last_try = started
                continue
            if renewal == "lost":
                self._lose("another replica holds it")
                return
            if failing:
                log.info("lease on export %s (token %d): renewed again", self.export, self.token)
            failing = False
            last_try = started
            self._valid_until = started + self._ttl * (1 - MARGIN_SHARE)

    def _lose(self, why: str) -> None:
        log.warning("lease on export %s (token %d) lost: %s; the run must stop sending",
                    self.export, self.token, why)
        self.lost.set()


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
