"""Helpers shared by the state-store tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

from tests.privileges import as_nobody as as_nobody  # re-exported for the tests
