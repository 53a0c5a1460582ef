"""Fixtures for end-to-end runs: our ActiveCampaign simulator over real HTTP, a config pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import wait_for as wait_for  # re-exported: the suites take it from here
from worker.sim import SimClient, SimSettings, SimulatorServer

API_KEY = "test-key-8b1f0c2d9e7a6b5c4d3e2f1a"  # a distinctive value: tests search all output for it


@pytest.fixture
def sim_settings() -> SimSettings:
    """Override in a test module to change the simulated account."""
    return SimSettings(api_keys=(API_KEY,), processing_delay=0.5)


@pytest.fixture
def sim(sim_settings: SimSettings) -> Iterator[tuple[str, SimClient]]:
    with SimulatorServer(sim_settings) as server:
        yield server.url, SimClient(server.url)


def write_config(tmp_path: Path, url: str, *, rate_scale: float = 1.0, export: str = "", worker: str = "") -> Path:
    """A config with one connection to the simulator and one export `vip` of segment `vip-customers`."""
    path = tmp_path / "export.toml"
    path.write_text(f"""
[worker]
state_url = "file://{tmp_path / 'state'}"
{worker}

[connections.sim]
hostname = "sim.api-us1.com"
base_url = "{url}"
api_key_env = "SEGMENT_EXPORT_TEST_KEY"
data_privacy_consent = true
requests_per_second = {5 * rate_scale}
bulk_requests_per_minute = {100 * rate_scale}

[exports.vip]
segment = "vip-customers"
connection = "sim"
list_id = 3
mapping = {{ email = "EmailAddress", first_name = "FirstName", last_name = "LastName", phone = "Phone" }}
{export}
""")
    return path


@pytest.fixture(autouse=True)
def _api_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGMENT_EXPORT_TEST_KEY", API_KEY)


def bulk_posts(simc: SimClient, status: int | None = 200) -> list[dict]:
    return [r for r in simc.requests() if r["method"] == "POST" and r["path"].endswith("/import/bulk_import")
            and (status is None or r["status"] == status)]


def subscribed(simc: SimClient, list_id: int = 3) -> dict[str, dict]:
    return {e: m for e, m in simc.members(list_id).items() if m["status"] == "subscribed"}


def in_flight(simc: SimClient) -> list[dict]:
    """API requests the simulator has received but not answered yet."""
    return [r for r in simc.requests() if r["status"] == 0]


