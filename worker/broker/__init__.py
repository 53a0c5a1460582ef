"""Broker layer: moves raw message bytes between the worker and RabbitMQ, SQS or kombu's memory transport.

It knows nothing of events or exports. The service talks to :class:`BrokerBridge` from asyncio; the CLI
uses :func:`publish_once`.
"""

from worker.broker.bridge import BrokerBridge
from worker.broker.delivery import Delivery
from worker.broker.options import broker_kind, transport_options_for
from worker.broker.publish import publish_once
from worker.broker.topology import ERROR_CLASS_HEADER, ERROR_HEADER, Topology

__all__ = [
    "ERROR_CLASS_HEADER",
    "ERROR_HEADER",
    "BrokerBridge",
    "Delivery",
    "Topology",
    "broker_kind",
    "publish_once",
    "transport_options_for",
]
