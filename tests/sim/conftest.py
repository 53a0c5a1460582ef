"""Fixtures for the simulator's tests: real SimulatorServers on loopback, driven over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sim_support import Sim

from worker.sim import SimClient, SimSettings, SimulatorServer


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    """Factory: make_sim(**SimSettings knobs) -> a started Sim; all are stopped at teardown."""
    started: list[SimulatorServer] = []

    def factory(**knobs: Any) -> Sim:
        server = SimulatorServer(SimSettings(**knobs))
        url = server.start()
        started.append(server)
        return Sim(server=server, url=url, client=SimClient(url))

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def sim(make_sim: Callable[..., Sim]) -> Sim:
    """A fast simulator for functional tests: a budget too big to interfere, batches done in 50 ms."""
    return make_sim(requests_per_second=1000, processing_delay=0.05)
