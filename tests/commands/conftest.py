"""Fixtures for the command-line tests: the simulator over real HTTP, a config on the shared RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.commands.support import AMQP_URL
from tests.run.conftest import _api_key_env, sim, sim_settings, write_config

__all__ = ["_api_key_env", "rabbit_config", "sim", "sim_settings"]


@pytest.fixture
def rabbit_config(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """(config, requests queue): this test's own queue and exchange on the shared RabbitMQ, deleted afterwards."""
    from kombu import Connection

    tag = uuid.uuid4().hex[:10]
    queue, exchange = f"cli-{tag}-requests", f"cli-{tag}-events"
    path = write_config(tmp_path, "http://127.0.0.1:9",
                        worker=f'broker_url = "{AMQP_URL}"\nrequests_queue = "{queue}"\nevents_exchange = "{exchange}"')
    yield path, queue
    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        for name in (queue, f"{queue}-dlq"):
            channel.queue_delete(queue=name)
        channel.exchange_delete(exchange=exchange)
