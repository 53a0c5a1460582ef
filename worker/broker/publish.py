"""One-shot, synchronous publishing for the command line (``segment-export publish`` / ``request``).

A CLI call is short-lived and has no event loop or consumer, so it skips the bridge: connect, declare
the topology (a fresh deployment may publish before any worker ran), publish with confirms, close.
"""

from __future__ import annotations

from typing import Any, Literal

from worker.broker.connection import make_driver, open_connection
from worker.broker.options import transport_options_for
from worker.broker.topology import EVENTS, REQUESTS, Topology


def publish_once(url: str, topology: Topology, body: bytes, *, to: Literal["requests", "events"],
                 event_type: str | None = None, transport_options: dict[str, Any] | None = None) -> None:
    """Publish ``body`` as-is to the requests queue or the events exchange; returns once confirmed.

    ``event_type`` is the routing key for ``to="events"`` (required there). Raises on any failure.
    """
    if to not in (REQUESTS, EVENTS):
        raise ValueError(f"to must be 'requests' or 'events', not {to!r}")
    if to == EVENTS and not event_type:
        raise ValueError("event_type is required when publishing to the events exchange")
    options = transport_options_for(url, **(transport_options or {}))
    conn = open_connection(url, options)
    driver = make_driver(conn, topology, prefetch=1,
                         visibility_timeout=float(options.get("visibility_timeout", 120)))
    try:
        driver.declare()
        driver.publish(to, body, routing_key=event_type if to == EVENTS else None)
    finally:
        driver.close()
