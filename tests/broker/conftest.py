"""Fixtures for the broker layer: real RabbitMQ on loopback, moto's SQS server, kombu's memory transport.

Every test gets its own queue names and deletes what it created, so tests can run against a shared
RabbitMQ without seeing each other's messages.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from worker.broker import Topology, transport_options_for

from .support import AMQP_URL, BrokerEnv, amqp_reachable, cleanup_topology, sqs_env, unique_topology


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not amqp_reachable():
        pytest.fail("RabbitMQ is not accepting connections on 127.0.0.1:5672: run the tests through "
                    "scripts/with-services (make test does)")
    return AMQP_URL


@pytest.fixture
def sqs_url(moto_server: str) -> str:
    port = moto_server.rsplit(":", 1)[1]
    return f"sqs://testing:testing@127.0.0.1:{port}"


@pytest.fixture(params=["amqp", "sqs", "memory"])
def env(request: pytest.FixtureRequest) -> BrokerEnv:
    """Each transport in turn; tests needing broker-specific checks branch on ``env.kind``."""
    if request.param == "amqp":
        url = request.getfixturevalue("amqp_url")
        return BrokerEnv("amqp", url, transport_options_for(url))
    if request.param == "sqs":
        return sqs_env(request.getfixturevalue("sqs_url"))
    return BrokerEnv("memory", "memory://", transport_options_for("memory://"))


@pytest.fixture
def topology(env: BrokerEnv) -> Iterator[Topology]:
    topo = unique_topology()
    yield topo
    cleanup_topology(env.kind, topo, (f"{topo.events_exchange}-tap",))
