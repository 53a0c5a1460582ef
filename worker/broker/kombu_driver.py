"""RabbitMQ (and kombu's in-process ``memory://``) through plain kombu producers and consumers.

RabbitMQ does the heavy lifting itself: the requests queue is a quorum queue whose
``x-delivery-limit`` dead-letters a message that keeps coming back (a poison message that crashes
workers never reaches our code's error handling), and publisher confirms make a publish count only once
the broker has it. Delayed requests go to per-delay quorum queues that dead-letter back into the requests
queue (see :mod:`worker.broker.topology`), "at least once": RabbitMQ moves an expired message only once the
requests queue has confirmed it. ``memory://`` shares the code path so the demo exercises the same bridge,
but has no delivery limit and no confirms, and keeps delayed messages in the driver until they are due.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from worker.broker.driver import Described, Driver
from worker.broker.topology import EVENTS, REQUESTS, Topology, check_delay, delay_bucket

log = logging.getLogger(__name__)

JSON = "application/json"


class Unroutable(Exception):
    """RabbitMQ had no queue for a message that must land in one (deleted meanwhile?): nothing was stored."""


#: How long a publish waits for the broker's confirm before the connection is treated as broken (default).
CONFIRM_TIMEOUT = 15.0


class KombuDriver(Driver):
    """AMQP / memory operations; one channel consumes, another publishes (in confirm mode on AMQP)."""

    def __init__(self, connection: Connection, topology: Topology, *, prefetch: int,
                 visibility_timeout: float, confirm_timeout: float = CONFIRM_TIMEOUT) -> None:
        super().__init__(connection, topology, prefetch=prefetch, visibility_timeout=visibility_timeout)
        self.confirm_timeout = confirm_timeout
        self.kind = "memory" if connection.transport.driver_type == "memory" else "amqp"
        self.always_drain = self.kind == "amqp"
        self._publish_channel = connection.channel()
        #: Requests and dead letters are published "mandatory": if no queue takes one, RabbitMQ returns it
        #: (before its confirm) instead of confirming a message it dropped. Events may have no listener.
        self._returned: str | None = None
        self._producer = Producer(self._publish_channel, auto_declare=False,
                                  on_return=self._on_return if self.kind == "amqp" else None)
        self._consumer: Consumer | None = None
        self.events = Exchange(topology.events_exchange, type="topic", durable=True)
        self.dead_letter_exchange = Exchange(topology.dead_letter_queue, type="fanout", durable=True)
        quorum = {"x-queue-type": "quorum"} if self.kind == "amqp" else {}
        self.dead_letters = Queue(topology.dead_letter_queue, exchange=self.dead_letter_exchange, routing_key="",
                                  durable=True, queue_arguments=quorum or None)
        requests_args = {
            **quorum,
            "x-delivery-limit": topology.max_receive_count,
            "x-dead-letter-exchange": topology.dead_letter_queue,
        } if self.kind == "amqp" else None
        self.requests = Queue(topology.requests_queue, exchange=Exchange(""), routing_key=topology.requests_queue,
                              durable=True, queue_arguments=requests_args)
        #: memory:// only: (due, seq, body, headers) of delayed requests, earliest first.
        self._delayed: list[tuple[float, int, bytes, dict[str, Any]]] = []
        self._seq = itertools.count()

    def declare(self) -> None:
        """Declare exchanges and queues with the same arguments every time (RabbitMQ refuses changes)."""
        channel = self._publish_channel
        self.events.declare(channel=channel)
        if self.kind == "amqp":
            self.dead_letters.declare(channel=channel)  # also declares the DLX exchange and binds the DLQ
        else:
            Queue(self.topology.dead_letter_queue, exchange=Exchange(""), durable=True).declare(channel=channel)
        self.requests.declare(channel=channel)

    def consume(self, on_message: Callable[[Any], None]) -> None:
        """Consume with ``on_message`` (not callbacks), so kombu never tries to decode the body."""
        if self._consumer is None:
            channel = self.connection.channel()
            # py-amqp decodes bodies by their content_encoding by default; we want the bytes as sent.
            if hasattr(channel, "auto_decode"):
                channel.auto_decode = False
            self._consumer = Consumer(channel, queues=[self.requests], no_ack=False, on_message=on_message,
                                      auto_declare=False)
            self._consumer.qos(prefetch_count=self.prefetch)
        self._consumer.consume()

    def cancel(self) -> None:
        """Cancel the consumer: RabbitMQ stops pushing; anything already in flight is requeued by py-amqp."""
        if self._consumer is not None:
            self._consumer.cancel()

    def describe(self, message: Any) -> Described:
        """Raw body and headers; the receive count comes from the quorum queue's ``x-delivery-count``."""
        body = message.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        headers = dict(message.headers or {})
        if self.kind == "amqp":
            redelivered = bool(message.delivery_info.get("redelivered", False))
        else:  # kombu's virtual transport marks restored messages at the top level of its payload
            redelivered = bool(getattr(message, "_raw", {}).get("redelivered", False))
        try:
            count = int(headers.get("x-delivery-count", 0)) + 1
        except (TypeError, ValueError):
            count = 1
        if count == 1 and redelivered:
            count = 2  # best effort: we know it came back at least once
        return bytes(body), headers, count, redelivered

    def ack(self, message: Any) -> bool:
        """Ack on the channel that received it (the bridge made sure that channel is still ours)."""
        message.ack()
        return True

    def requeue(self, message: Any) -> bool:
        """Reject with requeue; on a quorum queue this counts toward ``x-delivery-limit``."""
        message.reject(requeue=True)
        return True

    def publish(self, to: str, body: bytes, *, routing_key: str | None = None,
                headers: dict[str, Any] | None = None, delay_seconds: float = 0) -> None:
        """Publish a persistent plain-JSON message; on AMQP this returns once the broker confirmed it."""
        delay = check_delay(delay_seconds)
        if delay and to != REQUESTS:
            raise ValueError(f"only requests can be delayed, not {to!r}")
        if to == EVENTS:
            exchange: Exchange | str = self.events
            key = routing_key or ""
        elif to == REQUESTS and delay and self.kind == "memory":
            heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._seq), bytes(body), dict(headers or {})))
            return
        elif to == REQUESTS and delay:
            exchange, key = "", self._declare_delay_queue(delay)
        elif to == REQUESTS:
            exchange, key = "", self.topology.requests_queue
        elif to == "dlq":
            # Straight into the DLQ through the default exchange: it also works on memory://, which
            # has no dead-letter exchange semantics.
            exchange, key = "", self.topology.dead_letter_queue
        else:
            raise ValueError(f"unknown destination {to!r}")
        mandatory = self.kind == "amqp" and to != EVENTS
        self._returned = None
        self._producer.publish(bytes(body), exchange=exchange, routing_key=key, headers=dict(headers or {}),
                               content_type=JSON, content_encoding="utf-8", delivery_mode=2, mandatory=mandatory,
                               retry=False, confirm_timeout=self.confirm_timeout if self.kind == "amqp" else None)
        if self._returned is not None:
            raise Unroutable(f"RabbitMQ stored no copy of a message for queue {key!r} ({self._returned}): the "
                             f"queue is missing; restart the worker to declare it again")

    def _on_return(self, exc: Exception, exchange: str, routing_key: str, message: Any) -> None:
        """basic.return: remembered for the publish that is waiting for its confirm (same thread)."""
        self._returned = str(exc) or type(exc).__name__

    def _declare_delay_queue(self, seconds: float) -> str:
        """Declare the delay queue for ``seconds`` (idempotent) and return its name.

        Declared before every delayed publish rather than once per connection: a publish to a queue
        that someone deleted meanwhile would be confirmed and silently dropped by the default exchange,
        and a redeclaration costs one round trip on a path that is rare (retries, busy leases).
        """
        name = self.topology.delay_queue(seconds)
        arguments = {
            "x-queue-type": "quorum",
            "x-message-ttl": delay_bucket(seconds) * 1000,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.topology.requests_queue,
            # Move an expired message only once the requests queue has it (needs reject-publish).
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
        self._publish_channel.queue_declare(queue=name, durable=True, auto_delete=False, arguments=arguments)
        return name

    def tick(self) -> None:
        """memory://: move delayed requests that are due onto the requests queue."""
        now = time.monotonic()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, body, headers = heapq.heappop(self._delayed)
            self.publish(REQUESTS, body, headers=headers)

    def close(self, *, broken: bool = False) -> None:
        """memory://: delayed requests still waiting are published now: early is better than never."""
        while self._delayed:
            _, _, body, headers = heapq.heappop(self._delayed)
            try:
                self.publish(REQUESTS, body, headers=headers)
            except Exception as exc:  # memory:// cannot really fail; but never lose them quietly
                log.error("%d delayed request(s) lost on close: %s", len(self._delayed) + 1, exc)
                self._delayed.clear()
        super().close(broken=broken)

    def release_held(self, messages: list[Any]) -> None:
        """memory:// drops unacked messages when a channel closes; put them back like RabbitMQ would."""
        channel: Any = self._consumer.channel if self._consumer is not None else None
        if self.kind == "memory" and channel is not None:
            channel.qos.restore_unacked()

    def heartbeat(self) -> None:
        """Let py-amqp send ours and notice missing ones from the broker (raises if the peer is gone)."""
        if self.kind == "amqp":
            self.connection.heartbeat_check()
