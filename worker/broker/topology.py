"""Names of the broker objects the worker uses, and how each transport spells them.

The names are configurable (two deployments may share a broker), but the relation between them is
fixed by the public contract: the dead-letter queue is always the requests queue's name plus ``-dlq``.
"""

from __future__ import annotations

from dataclasses import dataclass

ERROR_HEADER = "x-segment-export-error"
ERROR_CLASS_HEADER = "x-segment-export-error-class"

#: Where publish/publish_once can send a message.
REQUESTS = "requests"
EVENTS = "events"


@dataclass(frozen=True)
class Topology:
    """The requests queue, its dead-letter queue and the events exchange (a queue on SQS)."""

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
