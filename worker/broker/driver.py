"""What the bridge needs from one live broker connection, whatever the transport.

A driver wraps one kombu connection and is used only from the bridge's thread. It is thrown away when
the connection fails; the bridge then opens a new one. Keeping the transport differences behind this
small surface lets the bridge own threading, reconnects and bookkeeping exactly once.
"""

from __future__ import annotations

import contextlib
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from kombu import Connection

from worker.broker.options import Kind
from worker.broker.topology import Topology

#: The body, headers, receive count and redelivered flag of one transport message.
Described = tuple[bytes, dict[str, Any], int, bool]


class Driver(ABC):
    """Transport-specific broker operations over one open kombu connection (single-threaded use)."""

    kind: Kind
    #: True when a message received on an earlier connection can still be settled on this one (SQS
    #: receipt handles are not tied to a connection; AMQP delivery tags are).
    survives_reconnect: bool = False
    #: True when the transport must be read even while not consuming (AMQP heartbeats, confirms).
    always_drain: bool = False

    def __init__(self, connection: Connection, topology: Topology, *, prefetch: int,
                 visibility_timeout: float) -> None:
        self.connection = connection
        self.topology = topology
        self.prefetch = prefetch
        self.visibility_timeout = visibility_timeout

    @abstractmethod
    def declare(self) -> None:
        """Create the queues/exchanges if absent; leave existing ones as they are (idempotent)."""

    @abstractmethod
    def consume(self, on_message: Callable[[Any], None]) -> None:
        """Start (or resume) consuming the requests queue; ``on_message`` gets transport messages."""

    @abstractmethod
    def cancel(self) -> None:
        """Stop taking new messages; held ones stay held."""

    @abstractmethod
    def describe(self, message: Any) -> Described:
        """Raw body bytes, headers, receive count and redelivered flag of a received message."""

    @abstractmethod
    def ack(self, message: Any) -> bool:
        """Remove the message for good; False if the broker no longer knows this delivery."""

    @abstractmethod
    def requeue(self, message: Any) -> bool:
        """Make the message available again now; False if the broker no longer knows this delivery."""

    @abstractmethod
    def publish(self, to: str, body: bytes, *, routing_key: str | None = None,
                headers: dict[str, Any] | None = None) -> None:
        """Publish a plain JSON body to ``"requests"``, ``"events"`` or ``"dlq"``; confirmed where possible."""

    def dead_letter(self, message: Any, headers: dict[str, Any]) -> bool:
        """Copy the message to the dead-letter queue with extra ``headers``, then ack the original.

        Copy first, ack second: a crash in between leaves a duplicate in the DLQ rather than a lost
        message.
        """
        body, original, _, _ = self.describe(message)
        self.publish("dlq", body, headers={**original, **headers})
        return self.ack(message)

    def hold(self, message: Any) -> None:  # noqa: B027 - a no-op is the right default
        """Keep a held message invisible to other consumers (only SQS needs this)."""

    def release_held(self, messages: list[Any]) -> None:  # noqa: B027
        """Give held messages back before closing, where closing alone would not (SQS, memory)."""

    def poll(self, timeout: float, capacity: int) -> None:
        """Wait up to ``timeout`` for broker traffic, dispatching at most ``capacity`` new messages."""
        with contextlib.suppress(TimeoutError):
            self.connection.drain_events(timeout=timeout)

    def heartbeat(self) -> None:  # noqa: B027 - most transports have no heartbeats
        """Send/check heartbeats where the transport has them, so a dead peer is noticed."""

    @property
    def recoverable_errors(self) -> tuple[type[BaseException], ...]:
        """Errors after which this connection is unusable and the bridge must reconnect."""
        conn = self.connection
        return (*conn.connection_errors, *conn.channel_errors, socket.error)

    def close(self) -> None:
        """Close the connection, ignoring errors: it may already be dead."""
        try:
            self.connection.release()
        except Exception:  # closing a broken connection may fail in any way
            with contextlib.suppress(Exception):
                self.connection.collect()
