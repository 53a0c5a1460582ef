"""Broker layer: moves raw message bytes between the worker and RabbitMQ, SQS or kombu's memory transport.

It knows nothing of events or exports. The service talks to :class:`BrokerBridge` from asyncio; the CLI
uses :func:`publish_once`.

May import: nothing of ``worker`` (raw bytes in, raw bytes out).
"""

from worker.broker.bridge import BrokerBridge
from worker.broker.delivery import Delivery
from worker.broker.options import broker_kind, transport_options_for
from worker.broker.publish import publish_once
from worker.broker.topology import (
    DELAY_BUCKETS,
    ERROR_CLASS_HEADER,
    ERROR_HEADER,
    MAX_DELAY_SECONDS,
    Topology,
    delay_bucket,
)

__all__ = [
    "DELAY_BUCKETS",
    "ERROR_CLASS_HEADER",
    "ERROR_HEADER",
    "MAX_DELAY_SECONDS",
    "BrokerBridge",
    "Delivery",
    "Topology",
    "broker_kind",
    "delay_bucket",
    "publish_once",
    "transport_options_for",
]
