"""Rate windows and 429 storms, exact and deterministic.

Our tests assert "no 429 at the default budget" for a client that paces itself, so the windows here are
exact sliding windows on `time.monotonic()` with no randomness: a request is admitted when fewer than
`limit` admitted requests arrived in the last `window` seconds (an entry stamped t stops counting at
exactly t + window). Rejected requests are not recorded, so being told "slow down" never costs budget.

A rate that is not a whole number per base period is turned into an equivalent integer window: `rate`
per `base` seconds becomes ``n = max(1, floor(rate))`` requests per ``base * n / rate`` seconds. This keeps
the long-run rate exact (5/s * 0.05 = 0.25/s becomes 1 request per 4 s) and is identical to AC's figures
at integer rates (5 per 1 s, 100 per 60 s, 50 per 1 s at rate_scale 10).
"""

from __future__ import annotations

import math
from collections import deque

from worker.sim.settings import SimSettings


def window_shape(rate: float, base: float) -> tuple[int, float]:
    """(limit, window seconds) for `rate` requests per `base` seconds; see the module docstring."""
    # A hair of tolerance so 100 * 0.05 = 5.000000000000001 stays 5, not 5 rounded oddly.
    limit = max(1, math.floor(rate + 1e-9))
    return limit, base * limit / rate


class SlidingWindow:
    """At most `limit` admissions in any `window`-second span (timestamps of admitted requests only)."""

    __slots__ = ("_stamps", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._stamps: deque[float] = deque()

    def reshape(self, limit: int, window: float) -> None:
        """Change the limit at runtime, keeping history so a rescale cannot open a burst loophole."""
        self.limit = limit
        self.window = window

    def clear(self) -> None:
        self._stamps.clear()

    def _expire(self, now: float) -> None:
        stamps = self._stamps
        cutoff = now - self.window
        while stamps and stamps[0] <= cutoff:
            stamps.popleft()

    def try_acquire(self, now: float) -> bool:
        """Admit and record one request at `now`, or refuse without recording it."""
        self._expire(now)
        if len(self._stamps) >= self.limit:
            return False
        self._stamps.append(now)
        return True

    def remaining(self, now: float) -> int:
        self._expire(now)
        return max(0, self.limit - len(self._stamps))

    def retry_after(self, now: float) -> float:
        """Seconds until one more request would be admitted (0 if it would be now)."""
        self._expire(now)
        excess = len(self._stamps) - self.limit
        if excess < 0:
            return 0.0
        # The (excess)-th oldest stamp must expire before a slot frees up.
        return max(0.0, self._stamps[excess] + self.window - now)


class RateLimits:
    """The account's three windows (whole API per second, bulk multi, bulk single) plus storm schedule."""

    def __init__(self, settings: SimSettings, now: float) -> None:
        self.api = SlidingWindow(1, 1.0)
        self.bulk = SlidingWindow(1, 60.0)
        self.single_bulk = SlidingWindow(1, 60.0)
        self.storm_epoch = now
        self._storm_key: tuple[float, float] = (-1.0, -1.0)
        self.apply(settings, now)

    def apply(self, settings: SimSettings, now: float) -> None:
        """Adopt new settings; the storm clock restarts only when the storm knobs change."""
        self.api.reshape(*window_shape(settings.effective_rps, 1.0))
        self.bulk.reshape(*window_shape(settings.effective_bulk_per_minute, 60.0))
        self.single_bulk.reshape(*window_shape(settings.effective_single_bulk_per_minute, 60.0))
        key = (settings.storm_every, settings.storm_duration)
        if key != self._storm_key:
            self._storm_key = key
            self.storm_epoch = now

    def clear(self, now: float) -> None:
        self.api.clear()
        self.bulk.clear()
        self.single_bulk.clear()
        self.storm_epoch = now

    def storm_remaining(self, settings: SimSettings, now: float) -> float:
        """Seconds left in the current 429 storm, or 0 when calm.

        Storms start at epoch + k * storm_every for k >= 1 (the first period is calm, so a test can set up
        before the weather turns) and last storm_duration seconds.
        """
        every, duration = settings.storm_every, settings.storm_duration
        if every <= 0 or duration <= 0:
            return 0.0
        elapsed = now - self.storm_epoch
        if elapsed < every:
            return 0.0
        if duration >= every:  # storms overlap: it never clears once it started
            return duration
        phase = elapsed % every
        return duration - phase if phase < duration else 0.0

    def bulk_window(self, contacts: int) -> SlidingWindow:
        """AC counts one-contact imports separately from multi-contact ones."""
        return self.single_bulk if contacts == 1 else self.bulk


def retry_after_header(seconds: float) -> str:
    """Retry-After as AC sends it: whole seconds, at least 1 (rounded up so obeying it always works)."""
    return str(max(1, math.ceil(seconds - 1e-9)))
