"""Version tokens for the file store: a hash of the content.

Why content and not mtime+size: mtimes move in kernel ticks (milliseconds), and inode numbers are
reused, so two quick writes of the same size can look identical and a compare-and-swap would succeed
against data it never saw. A content hash cannot be fooled that way, and it behaves like an S3 ETag
(also a hash of the content for a single-part upload). SHA-256 runs at GB/s with CPU support, so a
tens-of-MB synced state costs milliseconds.
"""

from __future__ import annotations

import hashlib


def content_version(data: bytes) -> str:
    """The version token of a value with these bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
