"""Names of the broker objects the worker uses, and how each transport spells them.

The names are configurable (two deployments may share a broker), but the relation between them is
fixed by the public contract: the dead-letter queue is always the requests queue's name plus ``-dlq``.

Delayed delivery ("put this request back in 30 s") needs no plugin. On RabbitMQ each delay has a queue
of its own, ``<requests_queue>-delay-<N>s``, whose messages expire after N seconds and are dead-lettered
back into the requests queue. One queue per delay because RabbitMQ only expires messages at the head of a
queue: a 900 s message in a shared queue would hold back a 30 s one behind it. The delays come from a
fixed ladder (:data:`DELAY_BUCKETS`) and a delay is rounded up to the next rung, so the set of queues is
small and the same on every replica (RabbitMQ refuses to re-declare a queue with other arguments). SQS
has a per-message ``DelaySeconds`` (at most 900) and needs no extra queue.

The delay queues are separate queues, so they never count toward what KEDA scales on (the requests
queue's depth): a replica is not started for work that is not due yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ERROR_HEADER = "x-segment-export-error"
ERROR_CLASS_HEADER = "x-segment-export-error-class"

#: Where publish/publish_once can send a message.
REQUESTS = "requests"
EVENTS = "events"

#: RabbitMQ delay queues, in seconds: a delay is rounded up to the next one.
DELAY_BUCKETS: tuple[int, ...] = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900)
#: The longest delay on any transport (SQS's own ``DelaySeconds`` limit); longer ones are capped to it.
MAX_DELAY_SECONDS = DELAY_BUCKETS[-1]


def check_delay(seconds: float) -> float:
    """``seconds`` if it is a usable delay (a finite number >= 0), else ValueError naming the problem."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds) \
            or seconds < 0:
        raise ValueError(f"delay_seconds must be a finite number >= 0, not {seconds!r}")
    return float(seconds)


def delay_bucket(seconds: float) -> int:
    """The RabbitMQ delay for ``seconds``: the smallest bucket at least that long, capped at 900; 0: none."""
    if check_delay(seconds) == 0:
        return 0
    return next((b for b in DELAY_BUCKETS if b >= seconds), MAX_DELAY_SECONDS)


@dataclass(frozen=True)
class Topology:
    """The requests queue, its dead-letter queue, its delay queues and the events exchange (a queue on SQS)."""

    requests_queue: str = "segment-export-requests"
    events_exchange: str = "segment-export-events"
    max_receive_count: int = 5

    def __post_init__(self) -> None:
        if not self.requests_queue or not self.events_exchange:
            raise ValueError("requests_queue and events_exchange must be non-empty")
        if self.max_receive_count < 1:
            raise ValueError("max_receive_count must be at least 1")

    @property
    def dead_letter_queue(self) -> str:
        """The requests queue's name plus ``-dlq``: a contract, so operators can find it without config."""
        return f"{self.requests_queue}-dlq"

    def delay_queue(self, seconds: float) -> str:
        """The RabbitMQ delay queue that holds a message for ``seconds`` (rounded up to a bucket).

        Declared on first use, so a deployment that never delays anything has none of them.
        """
        bucket = delay_bucket(seconds)
        if bucket == 0:
            raise ValueError("a delay queue needs a delay > 0; publish to the requests queue directly")
        return f"{self.requests_queue}-delay-{bucket}s"

    def delay_queues(self) -> tuple[str, ...]:
        """Every delay queue name this topology may use on RabbitMQ (for operators and cleanup)."""
        return tuple(self.delay_queue(b) for b in DELAY_BUCKETS)
