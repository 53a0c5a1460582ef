"""StateStore: the few storage primitives every run step is built from, on a folder or on S3.

Why so few: each step of a run (plan, send, confirm, commit) must leave a record that any worker can
resume from, and these primitives mean the same on a local folder and on S3, so the engine is written
once. Values are opaque bytes; the engine chooses the encoding.

A conditional write whose answer is lost is resolved here, once, for every backend. On S3 the client
retries a PUT whose reply never came; if the first attempt landed, the retry of a conditional PUT meets
its own write and answers 412 ("somebody else won"), which is false, and a commit that believed it would
throw away the state it had just made current. So a backend reports such an answer as what it is,
``WriteUnanswered`` (the write may have landed), and ``put_if_absent`` / ``replace_if_unchanged`` resolve
it by reading the key back: bytes equal to what this call wrote mean it was written; the key unchanged
means nothing happened (StateError, the caller may try again); anything else means somebody else wrote.
A backend only says what its request got (``_put_if_absent``, ``_replace_if_unchanged``); a new backend
(Azure, ...) inherits the rest.

Why equality of bytes suffices: it is asked only when our own write may have landed, and two writers that
store identical bytes under one key leave the same record; every record whose owner matters (the manifest
with its fresh generation, a lease with its holder and expiry, a completion event with its id) is unique.
(A bare counter would not be: it would need a unique token in its value.)
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable

from worker.state.errors import WriteUnanswered


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

    def put_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` only if ``key`` does not exist; True if this call wrote it. Of concurrent callers,
        exactly one gets True.

        An answer lost on the way back is resolved by reading the key (see the module docstring); when
        even that cannot tell (the key is still absent after a write that got no answer), StateError.
        """
        return self._resolve(key, data, None, lambda: self._put_if_absent(key, data))

    def replace_if_unchanged(self, key: str, data: bytes, version: str | None) -> bool:
        """Compare-and-swap: store ``data`` only if the key is still at ``version``; True if written.

        ``version`` None means "only if the key does not exist yet" (like put_if_absent). Lost answers
        are resolved as for ``put_if_absent``.
        """
        if version is None:
            return self.put_if_absent(key, data)
        return self._resolve(key, data, version, lambda: self._replace_if_unchanged(key, data, version))

    def _resolve(self, key: str, data: bytes, version: str | None, write: Callable[[], bool]) -> bool:
        """Run a conditional ``write``; when its answer was lost, read the key back to learn what happened."""
        try:
            return write()
        except WriteUnanswered:
            found = self.get_versioned(key)
            if found is not None and found[0] == data:
                return True  # our write landed; its answer (or a retry's) was lost
            if (found[1] if found is not None else None) == version:
                raise  # nothing changed: the write did not happen; the caller may try again
            return False

    @abstractmethod
    def _put_if_absent(self, key: str, data: bytes) -> bool:
        """The backend's create-only write: True, False (the key exists) or WriteUnanswered (no answer, or a
        refusal that may answer an earlier attempt of this very write)."""

    @abstractmethod
    def _replace_if_unchanged(self, key: str, data: bytes, version: str) -> bool:
        """The backend's replace-only-that-version write: True, False (not at ``version``) or WriteUnanswered."""

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
