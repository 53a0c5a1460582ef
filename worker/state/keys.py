"""Validate state keys and list prefixes, identically for every backend.

Why strict: keys become file paths, so '..' or an absolute key could escape the store's folder, and a
key that works on S3 but not on files (or the reverse) would only fail in production. Segments that
start with '.' are reserved for the file store's temporary and lock files.
"""

from __future__ import annotations


def _check_segment(segment: str, what: str, text: str) -> None:
    if not segment:
        raise ValueError(f"state {what} {text!r} has an empty segment ('//' or a leading/trailing '/')")
    if segment in (".", ".."):
        raise ValueError(f"state {what} {text!r} may not contain '.' or '..' segments")
    if segment.startswith("."):
        raise ValueError(f"state {what} {text!r}: segments starting with '.' are reserved")


def _check_text(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"state {what} must be a str, got {type(text).__name__}")
    if text.startswith("/"):
        raise ValueError(f"state {what} {text!r} must be relative (no leading '/')")
    if "\\" in text or "\0" in text:
        raise ValueError(f"state {what} {text!r} may not contain a backslash or NUL")
    return text


def check_key(key: str) -> str:
    """``key`` if it is a relative '/'-separated path like ``exports/vip/runs/abc/batches/0003``."""
    _check_text(key, "key")
    if not key:
        raise ValueError("state key is empty")
    for segment in key.split("/"):
        _check_segment(segment, "key", key)
    return key


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is '' or a key's beginning (ending in '/' for a folder, or part of a name)."""
    _check_text(prefix, "prefix")
    if prefix:
        *folders, last = prefix.split("/")
        for segment in folders:
            _check_segment(segment, "prefix", prefix)
        if last:
            _check_segment(last, "prefix", prefix)
    return prefix
