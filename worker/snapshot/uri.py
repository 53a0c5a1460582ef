"""Parse a snapshot URI into where the snapshot lives: a local path or an S3 bucket and key."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from worker.snapshot.errors import SnapshotError

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class LocalLocation:
    """A file or folder on this machine; ``path`` is absolute so part URIs are unambiguous."""

    path: str


@dataclass(frozen=True, slots=True)
class S3Location:
    """An S3 object, or a prefix of part objects; ``key`` may be empty (the bucket's top level)."""

    bucket: str
    key: str


def parse_snapshot_uri(uri: str) -> LocalLocation | S3Location:
    """``file:///abs``, ``file://./rel``, a plain path or ``s3://bucket/key`` -> a location.

    Why plain paths are accepted: operators type them on the command line (``sync --snapshot``); the
    events from upstream use full URIs.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise SnapshotError("snapshot URI is empty (pass file:///abs/path, a path or s3://bucket/key)")
    if not _SCHEME.match(uri):
        return LocalLocation(os.path.abspath(uri))
    scheme, rest = uri.split("://", 1)
    if scheme.lower() == "s3":
        # Split by hand: S3 keys may hold '?' and '#', which urlsplit would take for query/fragment.
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise SnapshotError(f"snapshot URI {uri!r} has no bucket (use s3://bucket/key)")
        return S3Location(bucket, key)
    parts = urlsplit(uri)
    if scheme.lower() == "file":
        if not parts.path:
            raise SnapshotError(f"snapshot URI {uri!r} names no file (use file:///absolute/path)")
        if parts.netloc in ("", "localhost"):
            return LocalLocation(os.path.abspath(unquote(parts.path)))
        if parts.netloc in (".", ".."):
            return LocalLocation(os.path.abspath(parts.netloc + unquote(parts.path)))
        raise SnapshotError(
            f"snapshot URI {uri!r} names a remote host (use file:///absolute/path or a plain path)"
        )
    raise SnapshotError(
        f"snapshot URI {uri!r} has unsupported scheme {parts.scheme!r} (use file://, s3:// or a plain path)"
    )
