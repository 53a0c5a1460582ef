"""The one object a simulator app holds: settings, data, limits, the request log and counters.

Kept separate from the routes so `/_sim/reset` and `/_sim/settings` can swap or clear parts of it in one
place, and so the AC routes and the inspection routes share exactly the same view of the account.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
from collections import Counter, deque
from typing import Any

from aiohttp import web

from worker.sim.imports import Imports
from worker.sim.limits import RateLimits
from worker.sim.settings import SimSettings
from worker.sim.store import Store

#: The request log is bounded so a long `segment-export simulate` session cannot grow without limit;
#: a million-contact benchmark makes about 12,000 requests, far below this.
REQUEST_LOG_MAX = 500_000


class SimState:
    """Mutable state of one simulated account; only ever touched from the app's event loop."""

    def __init__(self, settings: SimSettings) -> None:
        now = time.monotonic()
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.store = Store(settings)
        self.imports = Imports()
        self.limits = RateLimits(settings, now)
        self.request_log: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_MAX)
        self.counters: Counter[str] = Counter()
        self.wakeup = asyncio.Event()  # set when the processor may have new work
        self.pending_callbacks: set[asyncio.Task[None]] = set()
        self.saved: dict[str, Store] = {}  # account data kept aside by name (save / restore)

    def configure(self, knobs: dict[str, Any]) -> SimSettings:
        """Apply runtime changes (validated as a whole, so a bad knob changes nothing)."""
        new = self.settings.with_changes(knobs)
        if "seed" in knobs:
            self.rng = random.Random(new.seed)
        self.settings = new
        self.store.adopt(new)
        self.limits.apply(new, time.monotonic())
        self.wakeup.set()
        return new

    def reset(self) -> None:
        """Fresh account with the same settings: no contacts, batches, tags, exclusions, log or windows."""
        self.store = Store(self.settings)
        self.imports = Imports()
        self.limits.clear(time.monotonic())
        self.request_log.clear()
        self.counters.clear()
        self.rng = random.Random(self.settings.seed)
        self.wakeup.set()

    def save(self, name: str) -> None:
        """Keep a copy of the account's data (contacts, lists, tags, exclusions) under ``name``.

        Why: a test that replays one starting point many times (the crash-point walker) restores it in one
        call instead of re-running the syncs that built it.
        """
        self.saved[name] = copy.deepcopy(self.store)

    def restore(self, name: str) -> None:
        """A fresh account (as ``reset``) holding a copy of the data saved under ``name``; KeyError if none."""
        saved = self.saved[name]
        self.reset()
        self.store = copy.deepcopy(saved)
        self.store.adopt(self.settings)

    def stats(self) -> dict[str, Any]:
        """Counters for /_sim/stats; "resubscribed" and "resubscribed_own" are what consent tests assert on.

        "resubscribed": API re-subscriptions of an unsubscribed contact; "resubscribed_own": those of them
        whose unsubscription was the person's own (a consent breach by the client).
        """
        statuses = {k[7:]: v for k, v in sorted(self.counters.items()) if k.startswith("status:")}
        return {
            "resubscribed": self.store.resubscribed,
            "resubscribed_own": self.store.resubscribed_own,
            "contacts": len(self.store.contacts),
            "batches": self.imports.stats(),
            "requests": sum(statuses.values()),
            "statuses": statuses,
            "rate_limited": self.counters["rate_limited"],
            "storm_limited": self.counters["storm_limited"],
            "bulk_rate_limited": self.counters["bulk_rate_limited"],
            "errors_injected": self.counters["errors_injected"],
            "not_simulated": self.counters["not_simulated"],
            "ignored_field_values": self.store.ignored_field_values,
            "callbacks": {"sent": self.counters["callbacks_sent"],
                          "failed": self.counters["callbacks_failed"]},
        }


STATE: web.AppKey[SimState] = web.AppKey("sim_state", SimState)
