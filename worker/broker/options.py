"""Which transport a broker URL names, and the kombu transport options that suit it.

Defaults live here rather than in each caller so the worker, ``publish_once`` and the tests agree on
the details that matter for interoperability (plain bodies on SQS, publisher confirms on RabbitMQ).
"""

from __future__ import annotations

import os
from typing import Any, Literal
from urllib.parse import urlsplit

Kind = Literal["amqp", "sqs", "memory"]

_AMQP_SCHEMES = {"amqp", "amqps", "pyamqp"}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def broker_kind(url: str) -> Kind:
    """Map a broker URL to the transport family; anything else is a configuration error."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in _AMQP_SCHEMES:
        return "amqp"
    if scheme == "sqs":
        return "sqs"
    if scheme == "memory":
        return "memory"
    raise ValueError(f"unsupported broker URL scheme {scheme!r}: use amqp://, amqps://, sqs:// or memory://")


def transport_options_for(url: str, **overrides: Any) -> dict[str, Any]:
    """Sensible kombu transport options for ``url``; keyword arguments replace single keys.

    SQS: plain (not base64) bodies so that boto3 producers and consumers interoperate; a short long-poll
    (the consuming thread also runs acks and publishes, so it must not block long); the receive count
    and all message attributes fetched so deliveries carry them. AMQP: publisher confirms on (every
    key here is passed to ``amqp.Connection``, so nothing else may go in).
    """
    kind = broker_kind(url)
    options: dict[str, Any]
    if kind == "sqs":
        host = urlsplit(url).hostname
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        options = {
            "region": region,
            # Only consulted when the URL names a host (kombu builds the endpoint from it); a local
            # emulator speaks plain HTTP, AWS itself HTTPS.
            "is_secure": bool(host) and host not in _LOOPBACK,
            "polling_interval": 0.1,
            "wait_time_seconds": 1,
            "sqs_base64_encoding": False,
            "visibility_timeout": 120,
            "fetch_message_attributes": {
                "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
                "MessageAttributeNames": [".*"],  # not "All": kombu upper-cases that to "ALL"
            },
        }
    elif kind == "amqp":
        options = {
            "confirm_publish": True,
            "client_properties": {"connection_name": "segment-export"},
        }
    else:
        options = {"polling_interval": 0.05}
    options.update(overrides)
    if kind == "sqs" and "client-config" not in overrides:
        # botocore's defaults (60 s read timeout, retried) could hold the one broker thread for minutes on a
        # black-holed connection: acks, publishes and polls would all wait. A long poll needs its wait plus
        # a margin; anything else answers in well under that.
        options["client-config"] = {"connect_timeout": 5, "read_timeout": float(options["wait_time_seconds"]) + 10,
                                    "retries": {"mode": "standard", "max_attempts": 3}}
    return options
