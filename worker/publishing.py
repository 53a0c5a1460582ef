"""Publish one event from the command line (``publish``, ``request``): validated, then confirmed by the broker.

Why validate first: what we publish must be exactly the documented contract, so a malformed event fails
here, with the schema's reason, instead of in every worker's dead-letter queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import orjson

from worker.config import Config


def publish_event(config: Config, event: Mapping[str, Any], *, broker_url: str | None = None,
                  to: Literal["requests", "events"] = "requests") -> None:
    """Validate ``event`` and publish it to the config's requests queue (or events exchange); blocks until
    the broker confirms. ``broker_url`` overrides ``[worker] broker_url``."""
    from worker.broker import Topology, publish_once, transport_options_for
    from worker.event_schemas import validate_event

    validate_event(event)
    url = broker_url or config.worker.broker_url
    w = config.worker
    topology = Topology(requests_queue=w.requests_queue, events_exchange=w.events_exchange,
                        max_receive_count=w.max_receive_count)
    publish_once(url, topology, orjson.dumps(event), to=to, event_type=event["type"],
                 transport_options=transport_options_for(url, **w.broker_options))
