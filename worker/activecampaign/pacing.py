"""Slot arithmetic for one ActiveCampaign account: when may the next request of each kind go out?

Why a pure class with explicit times: the rules are subtle (sliding windows on AC's side, a priority for
bulk POSTs) and must be testable as arithmetic, without sleeping. `AccountLimiter` feeds it the event
loop's clock; tests feed it numbers.

The rules, all evenly paced (next-slot times, never a bursty token bucket, because AC counts requests in
*sliding* windows: a burst that a token bucket allows is exactly what a sliding window punishes):

* any two requests, of whatever kind, are at least ``1 / (requests_per_second * safety)`` apart. Evenly
  spaced requests can never put more than ``requests_per_second`` into any one-second window, and the
  safety factor leaves room for network jitter moving arrival times;
* two bulk POSTs are at least ``60 / (bulk_per_minute * safety)`` apart (AC's per-minute bulk window);
* "other" requests (polls, lookups) average at most ``(requests_per_second - bulk_per_minute / 60) *
  safety`` per second (GCRA with a tolerance of one interval, so they can use the two free slots between
  bulk POSTs), leaving the bulk share free even when no POST happens to be waiting;
* a waiting bulk POST is never delayed by an "other" request: an "other" request only takes a slot that
  ends (slot + spacing) no later than the waiting bulk POST's own slot;
* "read" requests (``verify`` reading a list back) are paced exactly like "other" ones, in the same lane;
  the limiters only grant one while no "other" request of the process waits (reads come last).

Slots are recorded at their *scheduled* time, not at the moment the event loop got round to sending (as long
as that lateness stays under `grace`). Otherwise every millisecond of loop lateness would shift all later
slots, throughput would leak away, and the two "other" slots between bulk POSTs would stop fitting. Keeping
the grid exact is safe because the safety factor leaves about 15 ms per window for lateness and jitter.
"""

from __future__ import annotations

import math
from typing import Literal

RequestKind = Literal["bulk", "other", "read"]

#: Float slack for slot comparisons; far below any real spacing (milliseconds at the fastest).
_EPS = 1e-9


class SlotSchedule:
    """Next-slot times for the whole account, the bulk lane and the "other" lane.

    Times are plain floats on any monotonic clock. `earliest()` answers "when could this go", `take()`
    records that a request went at a given time. Nothing here sleeps or reads a clock.
    """

    def __init__(self, requests_per_second: float, bulk_per_minute: float, *, safety: float) -> None:
        if not (requests_per_second > 0 and bulk_per_minute > 0):
            raise ValueError("requests_per_second and bulk_per_minute must be > 0")
        if not 0 < safety <= 1:
            raise ValueError("safety must be in (0, 1]")
        bulk_per_second = bulk_per_minute / 60.0
        # AC's own figures leave 3.33/s for everything else. A budget where bulk alone would eat the whole
        # per-second limit is a misconfiguration; rather than starve polls forever, cap bulk at 2/3 of it.
        bulk_per_second = min(bulk_per_second, requests_per_second * 2 / 3)
        self.requests_per_second = requests_per_second
        self.bulk_per_minute = bulk_per_minute
        self.safety = safety
        self.any_spacing = 1.0 / (requests_per_second * safety)
        self.bulk_spacing = 1.0 / (bulk_per_second * safety)
        self.other_spacing = 1.0 / ((requests_per_second - bulk_per_second) * safety)
        # How far behind the clock a slot may be recorded; a third of the jitter room a window has.
        self.grace = min(self.any_spacing / 2, (1 - safety) / safety / 3)
        self._last_any = -math.inf
        self._bulk_next = -math.inf
        self._other_tat = -math.inf  # GCRA theoretical arrival time of the "other" lane
        self.blocked_until = -math.inf

    def block(self, until: float) -> None:
        """Nobody sends before `until` (AC said so: 429 Retry-After or bulk "Rate limit exceeded")."""
        self.blocked_until = max(self.blocked_until, until)

    def earliest(self, kind: RequestKind, now: float, *, bulk_waiting: bool = False) -> float:
        """The earliest time >= now at which a request of `kind` may go, given what went before.

        `bulk_waiting` matters for "other" only: when a bulk POST is queued, the "other" request must not
        take a slot that would push the POST back; it then goes one spacing after the POST's slot.
        """
        return max(now, self._slot(kind, now, bulk_waiting))

    def _slot(self, kind: RequestKind, now: float, bulk_waiting: bool) -> float:
        """The scheduled slot of `kind`, which may lie in the past (the lane has been idle)."""
        base = max(self._last_any + self.any_spacing, self.blocked_until)
        if kind == "bulk":
            return max(base, self._bulk_next)
        at = max(base, self._other_tat - self.other_spacing)
        if bulk_waiting:
            bulk_at = self._recorded(self._slot("bulk", now, False), now)
            if self._recorded(at, now) + self.any_spacing > bulk_at + _EPS:
                at = max(at, bulk_at + self.any_spacing)
        return at

    def grant(self, kind: RequestKind, now: float, *, bulk_waiting: bool = False) -> float | None:
        """Take the slot if `kind` may go at `now` and return the slot time recorded; else None.

        The slot is recorded at its scheduled time when the caller is at most `grace` late (see the module
        docstring), so loop lateness does not accumulate; an idle (or very late) lane restarts from `now`.
        """
        slot = self._slot(kind, now, bulk_waiting)
        if slot > now + _EPS:
            return None
        at = self._recorded(slot, now)
        self.take(kind, at)
        return at

    def _recorded(self, slot: float, now: float) -> float:
        """The time a slot is recorded at if taken at `now`: on the grid unless more than `grace` late."""
        return slot if slot >= now - self.grace else now

    def take(self, kind: RequestKind, at: float) -> None:
        """Record that a request of `kind` went out at `at`."""
        self._last_any = max(self._last_any, at)
        if kind == "bulk":
            self._bulk_next = at + self.bulk_spacing
        else:
            self._other_tat = max(self._other_tat, at) + self.other_spacing
