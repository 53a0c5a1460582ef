"""Fixtures for the command-line tests: the simulator over real HTTP and a config pointing at it."""

from __future__ import annotations

from tests.integration.conftest import _api_key_env, sim, sim_settings

__all__ = ["_api_key_env", "sim", "sim_settings"]
