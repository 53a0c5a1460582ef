"""Fixtures for the safety tests (issue 8): the e2e harness's real parts, re-exported.

RabbitMQ on 127.0.0.1:5672 and moto's SQS/S3 through the e2e ``Broker`` classes, the worker as a real
subprocess (``workers``), and the ActiveCampaign simulator over HTTP (``sim``). Every test gets its own
queues, bucket, ports and tmp_path, so the module is safe under pytest-xdist.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import (  # noqa: F401 - re-exported fixtures and the failure hook
    RabbitBroker,
    _api_key_env,
    make_sqs,
    pytest_runtest_makereport,
    sim,
    sim_settings,
    workers,
)


@pytest.fixture
def rabbit() -> Iterator[RabbitBroker]:
    """The e2e RabbitMQ topology, plus the delay queues a worker declares when it puts a request back
    (``<requests>-delay-<N>s``), which the e2e cleanup does not know about."""
    import uuid

    from kombu import Connection

    b = RabbitBroker(uuid.uuid4().hex[:10])
    try:
        yield b
    finally:
        b.cleanup()
        with Connection(b.url) as conn:
            for name in b.topology().delay_queues():
                with contextlib.suppress(Exception):
                    conn.channel().queue_delete(queue=name)
