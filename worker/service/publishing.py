"""Publish one event from the command line (``publish``, ``request``): validated, then confirmed by the broker.

Why validate first: what we publish must be exactly the documented contract, so a malformed event fails
here, with the schema's reason, instead of in every worker's dead-letter queue. Why PublishError: a
person at a terminal needs "cannot reach the broker at <url>", not a kombu traceback, and the broker
URL's password must not appear in it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson

from worker.settings import Config


class PublishError(Exception):
    """The broker could not be reached or did not confirm; the message names the broker (password masked)."""


def publish_event(config: Config, event: Mapping[str, Any], *, broker_url: str | None = None,
                  to: Literal["requests", "events"] = "requests") -> None:
    """Validate ``event`` and publish it to the config's requests queue (or events exchange); blocks until
    the broker confirms. ``broker_url`` overrides ``[worker] broker_url``. Raises InvalidEvent (a bug in the
    caller) or PublishError."""
    from worker.events.schemas import validate_event

    validate_event(event)
    publish_body(config, orjson.dumps(event), str(event["type"]), broker_url=broker_url, to=to)


def publish_body(config: Config, body: bytes, event_type: str, *, broker_url: str | None = None,
                 to: Literal["requests", "events"] = "requests") -> None:
    """Publish a body the caller validated (an event, a CloudEvent); blocks until confirmed; PublishError."""
    from worker.broker import Topology, publish_once, transport_options_for

    url = broker_url or config.worker.broker_url
    w = config.worker
    topology = Topology(requests_queue=w.requests_queue, events_exchange=w.events_exchange,
                        max_receive_count=w.max_receive_count)
    try:
        publish_once(url, topology, body, to=to, event_type=event_type,
                     transport_options=transport_options_for(url, **w.broker_options))
    except Exception as exc:
        why = _scrub(f"{type(exc).__name__}: {exc}", url)
        raise PublishError(f"cannot publish {event_type} to {masked_url(url)}: {why} (is the broker running and "
                           f"reachable? check [worker] broker_url or --broker)") from None


def masked_url(url: str) -> str:
    """``url`` with the password of its userinfo replaced by ``***``."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^:@/]*):[^@/]*@", r"\1\2:***@", url)


def _scrub(text: str, url: str) -> str:
    """``text`` without the broker URL's password, however the library quoted it."""
    password = urlsplit(url).password if "://" in url else None
    text = text.replace(url, masked_url(url))
    return text.replace(password, "***") if password else text
