"""Stores on both backends (a folder, and S3 through moto's server) and a simulator for engine runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.run.conftest import API_KEY
from worker.sim import SimClient, SimSettings, SimulatorServer
from worker.state import StateStore, open_store


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    if request.param == "file":
        return open_store((tmp_path / "state").as_uri())
    return open_store(f"s3://{request.getfixturevalue('s3_bucket')}/state")


@pytest.fixture
def sim_settings() -> SimSettings:
    return SimSettings(api_keys=(API_KEY,), processing_delay=0.2, rate_scale=20)


@pytest.fixture
def sim(sim_settings: SimSettings) -> Iterator[tuple[str, SimClient]]:
    with SimulatorServer(sim_settings) as server:
        yield server.url, SimClient(server.url)


@pytest.fixture(autouse=True)
def _api_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENT_EXPORT_TEST_KEY", API_KEY)
