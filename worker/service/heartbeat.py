"""The SQS visibility heartbeat of one held delivery: beats, retries with backoff, and a watchdog.

Why a module of its own: a delivery's runs may last far longer than the queue's visibility timeout, so
the service extends it while they run; a heartbeat that dies or hangs unnoticed lets the message
reappear, another replica starts the same runs, and after ``max_receive_count`` a healthy message goes
to the DLQ. So every step here is bounded:

- each beat is one ``ChangeMessageVisibility`` call with its own short connect and read timeouts and a
  single attempt (``worker.broker``); retries are ours, with capped exponential backoff and jitter, each
  failure logged and counted (``segment_export_visibility_extension_failures_total``);
- the beat also waits at most half a beat interval for the bridge's answer: a call that hangs (a black-
  holed connection, a bridge thread stuck behind another call) is a failed beat, noticed in seconds; the
  hung call is not sent again while it is outstanding (awaited again by the next beat, so calls never
  pile up), and the beats go on;
- a watchdog around the loop restarts it should it ever end by an unexpected error;
- once the visibility could not be extended for longer than the timeout (or the broker took the
  delivery back), another consumer may hold the message: ``stop`` is set, so the runs stop sending at a
  checkpoint and hand themselves on instead of finishing blind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from worker.broker import BrokerBridge, Delivery
from worker.broker.backoff import backoff_delays
from worker.run.hooks import Hooks

log = logging.getLogger(__name__)


class VisibilityHeartbeat:
    """Keeps one SQS delivery invisible to other consumers until cancelled (see the module docstring)."""

    def __init__(self, bridge: BrokerBridge, hooks: Hooks, delivery: Delivery, stop: asyncio.Event) -> None:
        self.bridge = bridge
        self.hooks = hooks
        self.delivery = delivery
        self.stop = stop
        self.timeout = bridge.visibility_timeout
        self.interval = max(1.0, self.timeout / 3)
        #: How long one beat waits for the bridge's answer before it counts the beat as failed.
        self.call_timeout = max(1.0, self.interval / 2)
        self.extended = delivery.received_at  # the visibility the receive gave runs from here
        self._pending: asyncio.Future[Any] | None = None

    async def run(self) -> None:
        """Beat until cancelled or the delivery is taken back; the watchdog restarts a loop that failed."""
        if self.bridge.kind != "sqs":
            return
        restarts = self._backoff()
        while True:
            try:
                await self._beats()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or an unforeseen error must not end the heartbeat unnoticed
                self.hooks.visibility_not_extended(self._lapsed(False))
                delay = next(restarts)
                log.error("the visibility heartbeat stopped (%s: %s); the watchdog restarts it in %.1f s",
                          type(exc).__name__, str(exc)[:300], delay, exc_info=exc)
                await asyncio.sleep(delay)
            finally:
                if self._pending is not None and not self._pending.done():
                    self._pending.cancel()

    def _backoff(self) -> Iterator[float]:
        return backoff_delays(initial=min(1.0, self.interval / 4), cap=max(0.5, self.interval / 2))

    def _lapsed(self, taken: bool) -> bool:
        return taken or time.monotonic() - self.extended >= self.timeout

    async def _beats(self) -> None:
        retries: Iterator[float] | None = None
        delay = self.interval - (time.monotonic() - self.extended)
        while True:
            await asyncio.sleep(max(0.0, delay))
            started = time.monotonic()
            ok, why = await self._beat()
            if ok:
                self.extended, delay, retries = started, self.interval, None
                continue
            taken = not any(held is self.delivery for held, _ in self.bridge.unsettled())
            lapsed = self._lapsed(taken)
            self.hooks.visibility_not_extended(lapsed)
            retries = retries or self._backoff()
            delay = next(retries)
            if lapsed and not self.stop.is_set():
                log.error("the delivery's visibility could not be extended for %.0f s (visibility timeout %.0f s): "
                          "another consumer may have taken the message; its runs stop sending at a checkpoint "
                          "and hand themselves on (%s)", time.monotonic() - self.extended, self.timeout, why)
                self.stop.set()
            elif not taken:
                log.warning("could not extend the delivery's visibility (%s); trying again in %.1f s", why, delay)
            if taken:  # the broker took it back: no beat can extend it any more
                return

    async def _beat(self) -> tuple[bool, str]:
        """One extension: (extended, why not). A call still outstanding from a beat before is awaited, not resent."""
        if self._pending is None or self._pending.done():
            self._pending = asyncio.ensure_future(self.bridge.hold(self.delivery))
        try:
            ok = await asyncio.wait_for(asyncio.shield(self._pending), self.call_timeout)
        except TimeoutError:
            return False, (f"no answer within {self.call_timeout:.1f} s: the call hangs (it is awaited again, "
                           "not sent again)")
        except Exception as exc:  # any error: the next beat may work (a dead heartbeat never would)
            return False, f"{type(exc).__name__}: {exc}"[:300]
        return bool(ok), "no broker connection, or the delivery is no longer held"
