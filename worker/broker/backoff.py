"""Reconnect delays: capped exponential backoff with jitter.

Jitter matters because every replica loses the broker at the same moment (a RabbitMQ restart); without
it they would all reconnect in lockstep and hammer the node as it comes back.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff_delays(initial: float = 0.2, cap: float = 15.0, factor: float = 2.0,
                   rng: random.Random | None = None) -> Iterator[float]:
    """Yield delays forever: ``initial * factor**n`` capped at ``cap``, each drawn from [d/2, d]."""
    rng = rng or random.Random()
    delay = initial
    while True:
        yield delay / 2 + rng.uniform(0, delay / 2)
        delay = min(cap, delay * factor)
