"""Sliding-window arithmetic for assertions: the same rule the simulator (and AC) apply."""

from __future__ import annotations

from collections.abc import Sequence


def max_in_window(times: Sequence[float], window: float) -> int:
    """Most requests inside any half-open span (t - window, t] (two pointers over sorted times)."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while ordered[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best
