"""Helpers shared by the snapshot tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

from typing import Any

import orjson

from tests.privileges import as_nobody as as_nobody  # re-exported for the tests
from worker.snapshot import Page, read_pages


def jsonl_bytes(profiles: list[Any]) -> bytes:
    """One JSON value per line, newline-terminated."""
    return b"".join(orjson.dumps(p) + b"\n" for p in profiles)


def read_all(uri: str, **kwargs: Any) -> list[Page]:
    """Every page of a snapshot, as a list."""
    return list(read_pages(uri, **kwargs))


def rows_of(pages: list[Page]) -> list[tuple[str, int, dict]]:
    """(source, line, profile) of every row in order, to compare across page boundaries."""
    return [(page.source, line, row) for page in pages for line, row in page.rows]
