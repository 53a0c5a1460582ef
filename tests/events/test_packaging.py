"""The schemas ship inside the package, from the top-level folder, with no copy to drift.

Why: the worker loads its schemas with importlib.resources from ``worker.schemas``, which pyproject.toml
maps to the top-level ``schemas/`` folder. That mapping forces an explicit package list (setuptools'
discovery cannot follow it), and a sub-package missing from that list works in an editable install (the
tests) but is silently absent from the wheel and the container image. These checks catch both.
"""

from __future__ import annotations

import importlib.resources
import tomllib
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from worker.events.schemas import EVENT_TYPES

ROOT = Path(__file__).resolve().parents[2]


def _setuptools() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        tool: dict[str, Any] = tomllib.load(f)["tool"]["setuptools"]
    return tool


def test_every_worker_package_is_listed_for_the_wheel() -> None:
    listed = set(_setuptools()["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "worker").rglob("*.py")
               if "__pycache__" not in p.parts}
    missing = sorted(on_disk - listed)
    assert not missing, (f"pyproject.toml [tool.setuptools] packages lacks {missing}: the wheel would ship "
                         f"without them; add them to the list")
    assert not sorted(listed - on_disk - {"worker.schemas"}), "pyproject.toml lists packages that do not exist"


def test_schemas_folder_ships_as_worker_schemas_with_its_json() -> None:
    tool = _setuptools()
    assert "worker.schemas" in tool["packages"]
    assert tool["package-dir"]["worker.schemas"] == "schemas"
    patterns = tool["package-data"]["worker.schemas"]
    files = sorted(p.name for p in (ROOT / "schemas").glob("*.json"))
    assert files == sorted([*(f"{t}.json" for t in EVENT_TYPES), "config.json", "runs.json"])
    for name in files:
        assert any(fnmatch(name, pattern) for pattern in patterns), f"{name} is not package data"
    # setuptools' editable finder maps only sub-packages with an __init__.py
    assert (ROOT / "schemas" / "__init__.py").is_file()


def test_installed_package_serves_the_top_level_files() -> None:
    """In an editable install this is the same folder; from a wheel, the same bytes."""
    package = importlib.resources.files("worker.schemas")
    for source in (ROOT / "schemas").glob("*.json"):
        assert package.joinpath(source.name).read_bytes() == source.read_bytes(), source.name


def test_the_worker_never_reads_a_schemas_path_of_its_own() -> None:
    """Loading goes through the package, never through a path next to the source (or /work/shared)."""
    text = (ROOT / "worker" / "events" / "schemas.py").read_text()
    assert 'resources.files("worker.schemas")' in text
    assert "__file__" not in text and "shared" not in text
