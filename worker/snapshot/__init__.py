"""Streaming snapshot readers: JSON Lines or CSV, plain or gzip, one file or a folder of parts.

Usage::

    for page in read_pages("s3://cdp-exports/vip/2024-06-01/"):
        for line, profile in page.rows: ...
        for line, reason in page.errors: ...

Memory stays at about one parsed 256 KiB chunk plus one page, whatever the snapshot's size.

May import: ``worker.clients``.
"""

from worker.snapshot.errors import SnapshotError
from worker.snapshot.page import Page
from worker.snapshot.reader import read_pages, snapshot_identity

__all__ = ["Page", "SnapshotError", "read_pages", "snapshot_identity"]
