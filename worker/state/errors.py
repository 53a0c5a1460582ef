"""The exception the state stores raise when storage fails (not for "missing": that is None/False).

Why one type with a plain message: the engine reports it in ``export.failed`` and logs, so it must
name the key's URI, the operation and the fix, and it must never carry credentials (the messages are
built from error codes and paths only).
"""

from __future__ import annotations


class StateError(Exception):
    """The state store could not read or write; the message names the URI, the operation and the fix."""


class WriteUnanswered(StateError):
    """A write was sent but no answer came back (a timeout, a connection cut, a 5xx): it may have landed.

    Raised by a backend's conditional writes only; ``StateStore`` resolves it by reading the key back.
    """
