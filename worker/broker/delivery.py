"""One message handed to the service, and the private handle needed to settle it later."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Delivery:
    """A consumed message: the raw body bytes exactly as the publisher wrote them, plus metadata.

    ``_generation`` ties the delivery to the broker connection that received it: a RabbitMQ delivery
    tag means nothing on a later connection, so settling it there must be refused rather than sent
    (it could ack an unrelated message). ``_message`` is the transport's message object; only the
    bridge's thread may touch it. Identity equality: two deliveries of the same body are different.
    ``received_at`` is ``time.monotonic()`` when the bridge received it (for "held too long" checks).
    """

    body: bytes
    headers: dict[str, Any]
    receive_count: int
    redelivered: bool
    received_at: float = field(default_factory=time.monotonic)
    _generation: int = field(default=0, repr=False)
    _message: Any = field(default=None, repr=False)
    _settled: bool = field(default=False, repr=False)
