"""Striped advisory locks for a file store, shared by threads and processes on one host.

Why flock on a fixed set of lock files: compare-and-swap on files needs "compare, then replace" to be
atomic against other writers of the same key. ``flock`` excludes other open file descriptions, so it
works between threads of one process as well as between processes (POSIX ``lockf`` does not). A fixed
number of stripes, picked by hashing the key, keeps the lock files few and out of the keys' folders;
two keys sharing a stripe only wait for each other briefly.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator

STRIPES = 256


class StripedLocks:
    """Exclusive locks by key, backed by ``<folder>/NN.lock`` files created on first use."""

    def __init__(self, folder: str) -> None:
        self._folder = folder

    def _path(self, key: str) -> str:
        stripe = hashlib.blake2b(key.encode(), digest_size=2).digest()[0] % STRIPES
        return os.path.join(self._folder, f"{stripe:02x}.lock")

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold the lock for ``key`` for the duration of the ``with`` block."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except FileNotFoundError:
            os.makedirs(self._folder, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the lock
