"""read_pages and snapshot_identity: the snapshot API the engine uses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from worker.locations import LocationError, locate
from worker.snapshot.csv_pages import csv_pages
from worker.snapshot.errors import SnapshotError
from worker.snapshot.formats import Compression, Format, check_arguments, compression_of, format_of
from worker.snapshot.jsonl_pages import jsonl_pages
from worker.snapshot.local_parts import list_local_parts
from worker.snapshot.page import Page
from worker.snapshot.parts import Part
from worker.snapshot.s3_parts import list_s3_parts
from worker.snapshot.stream import open_part


def list_parts(uri: str, *, exact: bool = False) -> list[Part]:
    """The parts ``uri`` names, in reading order; SnapshotError if there are none.

    The location is decided by ``worker.locations.locate``, the one function that says what a location
    means (the service checks events' URIs against the allowed prefixes with the same function).
    ``exact``: ``uri`` is a canonical location that was admitted (the service checked it against
    ``snapshot_prefixes``); if it now means another place (a symbolic link appeared on its path since),
    it is refused rather than followed.
    """
    try:
        location = locate(uri)
    except LocationError as exc:
        raise SnapshotError(f"bad snapshot URI: {exc}") from None
    if exact and location.uri != uri:
        raise SnapshotError(f"snapshot {uri} now leads elsewhere (a symbolic link appeared on its path after the "
                            "event was admitted); it is not read (write snapshots in place, not behind links)")
    if location.kind == "file":
        return list_local_parts(location)
    return list_s3_parts(location)


def read_pages(
    uri: str, *, format: str | None = None, compression: str | None = None, page_size: int = 5000,
    exact: bool = False,
) -> Iterator[Page]:
    """Stream the snapshot at ``uri`` as pages of at most ``page_size`` profiles, part by part.

    The snapshot is located and listed now, so a missing or unlistable snapshot raises SnapshotError
    from this call; a part that cannot be opened, decompressed or read raises SnapshotError from the
    iterator, possibly after earlier pages were yielded (the run must then fail, not commit).
    ``format`` ('jsonl' | 'csv') and ``compression`` ('gzip' | 'none') override the parts' suffixes.
    A page never spans two parts. ``exact``: see :func:`list_parts`.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    check_arguments(format, compression)
    plan = [
        (part, format_of(part.name, part.source, format), compression_of(part.name, compression))
        for part in list_parts(uri, exact=exact)
    ]
    return _pages(plan, page_size)


def _pages(plan: list[tuple[Part, Format, Compression]], page_size: int) -> Iterator[Page]:
    for part, part_format, part_compression in plan:
        stream = open_part(part, part_compression)
        try:
            if part_format == "jsonl":
                yield from jsonl_pages(stream, part.source, page_size)
            else:
                yield from csv_pages(stream, part.source, page_size)
        finally:
            stream.close()


def snapshot_identity(uri: str, *, exact: bool = False) -> str:
    """A cheap, stable identity of the snapshot's content, from listings only (no data is read).

    Per part: name, size and mtime (files) or ETag (S3). Equal identities mean "same snapshot" for
    skipping a re-run; a re-upload of identical bytes to S3 keeps its ETag and so its identity.
    """
    digest = hashlib.sha256()
    for part in list_parts(uri, exact=exact):
        digest.update(f"{part.name}\0{part.size}\0{part.stamp}\n".encode())
    return digest.hexdigest()
