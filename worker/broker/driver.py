"""What the bridge needs from one live broker connection, whatever the transport.

A driver wraps one kombu connection and is used only from the bridge's thread. It is thrown away when
the connection fails; the bridge then opens a new one. Keeping the transport differences behind this
small surface lets the bridge own threading, reconnects and bookkeeping exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from kombu import Connection

from worker.broker.options import Kind
from worker.broker.topology import Topology

log = logging.getLogger(__name__)

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
                headers: dict[str, Any] | None = None, delay_seconds: float = 0) -> None:
        """Publish a plain JSON body to ``"requests"``, ``"events"`` or ``"dlq"``; confirmed where possible.

        ``delay_seconds`` > 0 (requests only): the message reaches the requests queue that much later
        (see :mod:`worker.broker.topology` for how each transport does it, and its rounding and cap).
        """

    def abandon(self, message: Any) -> None:
        """Best effort after a settle failed: let the broker have the message back (default: requeue now).

        Must not raise. The bridge then forgets the delivery, whatever happened here.
        """
        try:
            self.requeue(message)
        except Exception as exc:  # the broker still gets it back: on close, or when the connection dies
            log.warning("could not hand a delivery back: %s: %s", type(exc).__name__, exc)

    def tick(self) -> None:  # noqa: B027 - only memory:// keeps time itself
        """Called on every turn of the bridge's loop: do time-driven work (memory://'s delayed messages)."""

    def hold(self, message: Any) -> bool:
        """Keep a held message invisible to other consumers (only SQS needs this); False: no longer ours."""
        return True

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

    def close(self, *, broken: bool = False) -> None:
        """Close the connection, ignoring errors: it may already be dead.

        ``broken``: the connection failed (a timeout, a reset), so the socket is just dropped: the polite
        close waits for the broker's answer without a bound, and a broker that stopped answering would
        hold the one broker thread until it answers again.
        """
        if broken:
            with contextlib.suppress(Exception):
                self.connection.collect()
            return
        try:
            self.connection.release()
        except Exception:  # closing a broken connection may fail in any way
            with contextlib.suppress(Exception):
                self.connection.collect()
