"""Waiting on a condition with a deadline: the one way tests wait for something (never a bare sleep).

Why one helper: a test that waits for a process, a port, a queue or a record polls a condition and fails
naming what it waited for; written again in each suite, the copies drifted (intervals, early checks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1,
             check: Callable[[], None] | None = None) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); fail naming ``what`` at the deadline.

    ``check`` runs on every round (e.g. "the worker is still alive") and may raise to fail early.
    """
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if check is not None:
            check()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return value


async def wait_for_async(predicate: Callable[[], Awaitable[Any]], timeout: float, what: str,
                         interval: float = 0.2) -> Any:
    """:func:`wait_for` for a condition that must be awaited (an HTTP answer, say)."""
    deadline = time.monotonic() + timeout
    while not (value := await predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)
    return value
