"""Open a kombu connection for a broker URL and wrap it in the matching driver."""

from __future__ import annotations

from typing import Any

from kombu import Connection

from worker.broker.driver import Driver
from worker.broker.kombu_driver import CONFIRM_TIMEOUT, KombuDriver
from worker.broker.options import broker_kind
from worker.broker.sqs_driver import SqsDriver
from worker.broker.sqs_transport import RawBodyTransport
from worker.broker.topology import Topology

#: Seconds for the TCP connect and each step of the AMQP handshake (and, in the bridge, each declare).
CONNECT_TIMEOUT = 5.0


def open_connection(url: str, transport_options: dict[str, Any], *, heartbeat: float = 0.0,
                    connect_timeout: float = CONNECT_TIMEOUT) -> Connection:
    """Connect (raising on failure); SQS gets the raw-body transport so bodies pass through untouched."""
    kind = broker_kind(url)
    kwargs: dict[str, Any] = {"transport_options": dict(transport_options), "connect_timeout": connect_timeout}
    if kind == "sqs":
        kwargs["transport"] = RawBodyTransport
    if kind == "amqp" and heartbeat:
        kwargs["heartbeat"] = heartbeat
    conn = Connection(url, **kwargs)
    try:
        # One attempt, transport errors as-is: the bridge owns retries (with jitter) and classifies errors.
        conn.ensure_connection(max_retries=0, reraise_as_library_errors=False)
    except BaseException:
        conn.collect()
        raise
    return conn


def make_driver(conn: Connection, topology: Topology, *, prefetch: int, visibility_timeout: float,
                confirm_timeout: float = CONFIRM_TIMEOUT) -> Driver:
    """The driver for an open connection's transport (``confirm_timeout``: AMQP publisher confirms)."""
    if conn.transport.driver_type == "sqs":
        return SqsDriver(conn, topology, prefetch=prefetch, visibility_timeout=visibility_timeout)
    return KombuDriver(conn, topology, prefetch=prefetch, visibility_timeout=visibility_timeout,
                       confirm_timeout=confirm_timeout)
