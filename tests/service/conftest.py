"""The e2e harness's fixtures (RabbitMQ, simulator, worker processes) for the observability tests."""

from tests.e2e.conftest import (  # noqa: F401 - re-exported fixtures
    _api_key_env,
    rabbit,
    sim,
    sim_settings,
    workers,
)
