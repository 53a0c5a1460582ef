"""The README's config examples are configs the worker accepts, their commented-out keys included.

Why: people copy these blocks; a key that the README shows and the loader refuses (or a renamed key
left behind) costs them an exit code 2 on their first try.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from worker.settings import parse_config

README = Path(__file__).resolve().parents[2] / "README.md"
_COMMENTED_KEY = re.compile(r"^# ([a-z_]+ = .*?)(\s+#.*)?$", flags=re.MULTILINE)


def _block_after(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    match = re.compile(r"```toml\n(.*?)```", flags=re.DOTALL).search(text, start)
    assert match is not None, f"no toml block after {heading!r} in README.md"
    return match.group(1)


@pytest.mark.parametrize("heading", ["### 1. Config file", "### 4. Run the worker"])
def test_a_readme_block_loads_as_written_and_with_every_key_uncommented(heading: str) -> None:
    block = _block_after(heading)
    parse_config(tomllib.loads(block))
    uncommented = _COMMENTED_KEY.sub(r"\1", block)
    assert uncommented != block, "the block shows optional keys commented out"
    parse_config(tomllib.loads(uncommented))


def test_the_new_keys_are_shown() -> None:
    first, worker = _block_after("### 1. Config file"), _block_after("### 4. Run the worker")
    for name in ("max_removal_fraction = 0.2", "# max_removals = 50000", "readmit = true"):
        assert name in first
    for name in ("redis_url", "expected_replicas", "run_retry_base_seconds", "max_run_attempts", "retention_days",
                 "lease_seconds", "request_timeout_seconds"):
        assert f"# {name} = " in worker
