"""What a message on the requests queue is: one of our events, or a notification of written objects.

Why one function: the worker and the HTTP ingress must accept and refuse exactly the same bodies with the
same reasons (the ingress answers 400 naming the field where the worker would dead-letter). The body is
decoded once (size first), then read as a CloudEvent (``specversion``), an S3 / SNS / EventBridge
notification, or our own event, which is validated against its schema.
"""

from __future__ import annotations

from typing import Any

from worker.events.cloudevents import is_cloudevent, read_cloudevent
from worker.events.notifications import Notification, read_notification
from worker.events.schemas import decode_body, validate_event


def read_message(body: bytes | bytearray | memoryview | str) -> dict[str, Any] | Notification:
    """Our validated event, or a Notification; raises ``InvalidEvent`` with the reason for anything else."""
    return read_data(decode_body(body))


def read_data(data: Any) -> dict[str, Any] | Notification:
    """``read_message`` for a body already decoded from JSON."""
    got = read_cloudevent(data) if is_cloudevent(data) else (read_notification(data) or data)
    if isinstance(got, Notification):
        return got
    validate_event(got, allow_extra_fields=True)
    event: dict[str, Any] = got  # validate_event proved it is an object
    return event
