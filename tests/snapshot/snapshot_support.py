"""Helpers shared by the snapshot tests (plain functions; the fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from worker.snapshot import Page, read_pages

NOBODY = 65534


def jsonl_bytes(profiles: list[Any]) -> bytes:
    """One JSON value per line, newline-terminated."""
    return b"".join(orjson.dumps(p) + b"\n" for p in profiles)


def read_all(uri: str, **kwargs: Any) -> list[Page]:
    """Every page of a snapshot, as a list."""
    return list(read_pages(uri, **kwargs))


def rows_of(pages: list[Page]) -> list[tuple[str, int, dict]]:
    """(source, line, profile) of every row in order, to compare across page boundaries."""
    return [(page.source, line, row) for page in pages for line, row in page.rows]


def errors_of(pages: list[Page]) -> list[tuple[str, int, str]]:
    """(source, line, reason) of every reported line in order."""
    return [(page.source, line, reason) for page in pages for line, reason in page.errors]


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with effective uid/gid 'nobody', so file permissions apply even under root.

    Why: the suite runs as root in CI containers, where chmod 000 does not stop reads. Root may drop
    its effective ids and take them back (the real and saved ids stay 0). It applies to every thread
    of the process, so keep the block to the single call under test.
    """
    if os.geteuid() != 0:
        yield
        return
    try:
        os.setegid(NOBODY)
        os.seteuid(NOBODY)
    except PermissionError:  # pragma: no cover - a root without CAP_SETUID
        os.setegid(0)
        pytest.skip("running as root without CAP_SETUID: cannot test a permission denial")
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
