"""Each overlay rendered once per test process (rendering shells out to kubectl)."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import OVERLAYS, Doc, render

_rendered: dict[str, list[Doc]] = {}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def docs(overlay: str) -> list[Doc]:
    """The overlay's rendered objects; each test gets its own copy to inspect."""
    import copy

    if overlay not in _rendered:
        _rendered[overlay] = render(overlay)
    return copy.deepcopy(_rendered[overlay])
