"""open_store: the state store a ``state_url`` names."""

from __future__ import annotations

import os
import re

from worker.privacy.masking import mask_credentials
from worker.state.errors import StateError
from worker.state.file_store import FileStore
from worker.state.s3_store import S3Store
from worker.state.store import StateStore

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def open_store(url: str) -> StateStore:
    """``file://./state``, ``file:///abs/dir``, a plain path, or ``s3://bucket[/prefix]``.

    No I/O happens here (a missing folder is created on the first write; a missing bucket is
    reported by the first call), so opening is cheap and never needs the network.
    """
    if not isinstance(url, str) or not url.strip():
        raise StateError("state_url is empty (use file://./state, file:///abs/dir or s3://bucket/prefix)")
    match = _SCHEME.match(url)
    if match is None:
        return FileStore(url)
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme == "file":
        # file://./state is relative to the working directory; file:///abs and file://localhost/abs are not.
        if rest.startswith("localhost/"):
            rest = rest.removeprefix("localhost")
        if not rest:
            raise StateError(f"state_url {mask_credentials(url)!r} names no folder (use file://./state or file:///abs/dir)")
        if not rest.startswith(("/", "./", "../")) and rest not in (".", ".."):
            raise StateError(
                f"state_url {mask_credentials(url)!r} names a remote host (use file:///abs/dir or file://./relative/dir)"
            )
        return FileStore(os.path.abspath(rest))
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET.match(bucket):
            raise StateError(f"state_url {mask_credentials(url)!r}: {bucket!r} is not a valid S3 bucket name (s3://bucket/prefix)")
        try:
            return S3Store(bucket, prefix)
        except ValueError as exc:
            raise StateError(f"state_url {mask_credentials(url)!r}: {exc}") from exc
    raise StateError(f"state_url {mask_credentials(url)!r} has unsupported scheme {scheme!r} (use file:// or s3://)")
