"""Streaming snapshot readers: JSON Lines, CSV (plain or gzip) or Parquet; a file, a folder of parts, a
job's ``_SUCCESS`` marker, a Redshift UNLOAD manifest or a CDM model.json (``layouts``).

Usage::

    for page in read_pages("s3://cdp-exports/vip/2024-06-01/"):
        for line, profile in page.rows: ...

A snapshot is read whole or not at all: a part that is not well-formed (an open quote, a field over
the limit, invalid UTF-8, a truncated part or gzip stream, a JSON Lines line that is not an object)
raises SnapshotError naming the part, the line and the reason; rows are never dropped quietly. Only a
row that parsed but holds a bad value (an invalid email) is its consumer's to count invalid.

Memory stays at about one parsed 256 KiB chunk plus one page, whatever the snapshot's size.

Locations are decided by ``worker.locations.locate`` (the one function that says what a location
means); every reader lists and opens only what it returned.

May import: ``worker.locations``, ``worker.clients``, ``worker.privacy`` (no email, no credential in an error).
"""

from worker.snapshot.columns import with_column
from worker.snapshot.errors import SnapshotError
from worker.snapshot.layouts import SnapshotRules
from worker.snapshot.page import Page
from worker.snapshot.reader import read_pages, snapshot_identity

__all__ = ["Page", "SnapshotError", "SnapshotRules", "read_pages", "snapshot_identity", "with_column"]
