"""StateStore: the few storage primitives every run step is built from, on a folder or on S3.

Why so few: each step of a run (plan, send, confirm, commit) must leave a record that any worker can
resume from, and these primitives mean the same on a local folder and on S3, so the engine is written
once. Values are opaque bytes; the engine chooses the encoding.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod


class StateStore(ABC):
    """Keys are relative '/'-separated paths (see ``worker.state.keys``); values are bytes.

    Stores are safe to share between threads. Every call blocks: from async code run them in a
    thread (``asyncio.to_thread``). Storage failures raise StateError; bad keys raise ValueError.
    """

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The value, or None if there is no such key."""

    @abstractmethod
    def get_versioned(self, key: str) -> tuple[bytes, str] | None:
        """The value and its version token (for replace_if_unchanged), or None if missing."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing any value atomically (readers see old or new)."""

    @abstractmethod
    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` only if ``key`` does not exist; True if this call wrote it.

        Of concurrent callers for one key, exactly one gets True. False can also follow a write of
        this very call whose response was lost and retried, so on False read the key back.
        """

    @abstractmethod
    def replace_if_unchanged(self, key: str, data: bytes, version: str | None) -> bool:
        """Compare-and-swap: store ``data`` only if the key is still at ``version``; True if written.

        ``version`` None means "only if the key does not exist yet" (like put_if_absent).
        """

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key that starts with ``prefix`` ('' for all), sorted; full keys, not relative to prefix."""

    @abstractmethod
    def list_modified(self, prefix: str) -> builtins.list[tuple[str, float]]:
        """Like ``list``, with each key's last modification as unix time: ``[(key, mtime), ...]``, sorted.

        For retention (``worker.run.retention``): the age of a run is the newest of its records' times. The
        file store reports the file's mtime, S3 the object's LastModified (whole seconds on AWS).
        """

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is fine."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """Where ``key`` lives, for events and reports: ``file:///abs/...`` or ``s3://bucket/prefix/key``."""
