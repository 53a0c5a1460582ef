"""RabbitMQ (and kombu's in-process ``memory://``) through plain kombu producers and consumers.

RabbitMQ does the heavy lifting itself: the requests queue is a quorum queue whose
``x-delivery-limit`` dead-letters a message that keeps coming back (a poison message that crashes
workers never reaches our code's error handling), and publisher confirms make a publish count only once
the broker has it. ``memory://`` shares the code path so the demo exercises the same bridge, but has
no delivery limit and no confirms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from worker.broker.driver import Described, Driver
from worker.broker.topology import EVENTS, REQUESTS, Topology

JSON = "application/json"
#: How long a publish waits for the broker's confirm before the connection is treated as broken.
CONFIRM_TIMEOUT = 15.0


class KombuDriver(Driver):
    """AMQP / memory operations; one channel consumes, another publishes (in confirm mode on AMQP)."""

    def __init__(self, connection: Connection, topology: Topology, *, prefetch: int,
                 visibility_timeout: float) -> None:
        super().__init__(connection, topology, prefetch=prefetch, visibility_timeout=visibility_timeout)
        self.kind = "memory" if connection.transport.driver_type == "memory" else "amqp"
        self.always_drain = self.kind == "amqp"
        self._publish_channel = connection.channel()
        self._producer = Producer(self._publish_channel, auto_declare=False)
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
                headers: dict[str, Any] | None = None) -> None:
        """Publish a persistent plain-JSON message; on AMQP this returns once the broker confirmed it."""
        if to == EVENTS:
            exchange: Exchange | str = self.events
            key = routing_key or ""
        elif to == REQUESTS:
            exchange, key = "", self.topology.requests_queue
        elif to == "dlq":
            # Straight into the DLQ through the default exchange: it also works on memory://, which
            # has no dead-letter exchange semantics.
            exchange, key = "", self.topology.dead_letter_queue
        else:
            raise ValueError(f"unknown destination {to!r}")
        self._producer.publish(bytes(body), exchange=exchange, routing_key=key, headers=dict(headers or {}),
                               content_type=JSON, content_encoding="utf-8", delivery_mode=2,
                               retry=False, confirm_timeout=CONFIRM_TIMEOUT if self.kind == "amqp" else None)

    def release_held(self, messages: list[Any]) -> None:
        """memory:// drops unacked messages when a channel closes; put them back like RabbitMQ would."""
        channel: Any = self._consumer.channel if self._consumer is not None else None
        if self.kind == "memory" and channel is not None:
            channel.qos.restore_unacked()

    def heartbeat(self) -> None:
        """Let py-amqp send ours and notice missing ones from the broker (raises if the peer is gone)."""
        if self.kind == "amqp":
            self.connection.heartbeat_check()
