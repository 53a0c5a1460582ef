"""Dropping root for a single call, so permission denials can be tested when the suite runs as root."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

NOBODY = 65534


@contextlib.contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with effective uid/gid 'nobody', so file permissions apply even under root.

    Why: the suite runs as root in CI containers, where permissions do not stop root. Root may drop
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
