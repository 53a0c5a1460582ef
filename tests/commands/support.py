"""Helpers for the command-line tests (plain functions; fixtures are in conftest.py)."""

from __future__ import annotations

from typing import Any

import orjson

from worker.events.schemas import parse_event

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"  # the shared RabbitMQ; each test declares its own queues


def take_all(queue: str, *, raw: bool = False) -> list[dict[str, Any]]:
    """Every message now on ``queue`` of the shared RabbitMQ, parsed and validated as an event (``raw``: only
    parsed as JSON, e.g. a CloudEvent)."""
    from kombu import Connection

    got = []
    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        while (msg := channel.basic_get(queue=queue, no_ack=True)) is not None:
            body = msg.body.encode() if isinstance(msg.body, str) else msg.body
            got.append(orjson.loads(body) if raw else parse_event(body))
    return got
