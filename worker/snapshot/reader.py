"""read_pages and snapshot_identity: the snapshot API the engine uses."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator

import orjson

from worker.locations import LocationError, locate
from worker.privacy.masking import mask_text
from worker.snapshot.csv_pages import csv_pages
from worker.snapshot.errors import INCOMPLETE, SnapshotError
from worker.snapshot.formats import Compression, Format, check_arguments, compression_of, format_of
from worker.snapshot.jsonl_pages import jsonl_pages
from worker.snapshot.layouts import Listing, SnapshotRules, list_snapshot
from worker.snapshot.page import Page
from worker.snapshot.parquet_pages import parquet_pages, require_pyarrow
from worker.snapshot.parts import Part
from worker.snapshot.stream import open_part

_NO_RULES = SnapshotRules()


def list_parts(uri: str, rules: SnapshotRules = _NO_RULES) -> Listing:
    """The parts ``uri`` names, in reading order; SnapshotError if there are none (``worker.snapshot.layouts``).

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
    if rules.exact and location.uri != uri:
        raise SnapshotError(f"snapshot {uri} now leads elsewhere (a symbolic link appeared on its path after the "
                            "event was admitted); it is not read (write snapshots in place, not behind links)")
    return list_snapshot(location, rules)


def read_pages(
    uri: str, *, format: str | None = None, compression: str | None = None, page_size: int = 5000,
    columns: Collection[str] | None = None, rules: SnapshotRules = _NO_RULES,
) -> Iterator[Page]:
    """Stream the snapshot at ``uri`` as pages of at most ``page_size`` profiles, part by part.

    The snapshot is located and listed now, so a missing, unlistable or unfinished snapshot raises
    SnapshotError from this call; a part that cannot be opened, decompressed or read raises SnapshotError
    from the iterator, possibly after earlier pages were yielded (the run must then fail, not commit), and
    so does a part (or snapshot) holding another number of rows than its manifest says.
    ``format`` ('jsonl' | 'csv' | 'parquet') and ``compression`` ('gzip' | 'none') override the parts'
    suffixes (a CDM model.json's own format stands). ``columns``: the profile fields the caller uses; a
    columnar part (Parquet) reads only those (None: all). ``rules``: the export's demands (a marker, a
    CDM entity) and where listed files may be. A page never spans two parts.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    check_arguments(format, compression)
    listing = list_parts(uri, rules)
    plan = [
        (part, format_of(part.name, part.source, part.format or format), compression_of(part.name, compression))
        for part in listing.parts
    ]
    parquet = next((part for part, part_format, _ in plan if part_format == "parquet"), None)
    if parquet is not None:
        require_pyarrow(parquet.source)
    return _counted(listing, _pages(plan, page_size, columns))


def _pages(plan: list[tuple[Part, Format, Compression]], page_size: int,
           columns: Collection[str] | None) -> Iterator[Page]:
    for part, part_format, part_compression in plan:
        rows = 0
        for page in _part_pages(part, part_format, part_compression, page_size, columns):
            rows += len(page.rows)
            yield page
        if part.records is not None and rows != part.records:
            raise SnapshotError(_count_message(part.source, rows, part.records, "its manifest's entry"),
                                code=INCOMPLETE)


#: What a parser may raise on input it cannot take (besides SnapshotError): a hostile file (a Parquet
#: column named twice, JSON nested thousands deep, a date past year 9999) must fail the run once with
#: ``snapshot_unreadable``; any other exception is taken for a fault of the worker, retried and dead-lettered.
_BAD_INPUT: tuple[type[BaseException], ...] = (ValueError, KeyError, RecursionError, OverflowError)


def _part_pages(part: Part, part_format: Format, part_compression: Compression, page_size: int,
                columns: Collection[str] | None) -> Iterator[Page]:
    """The part's pages; whatever its parser raises on bad input arrives as SnapshotError naming the part."""
    bad_input = _BAD_INPUT
    if part_format == "parquet":
        import pyarrow as pa

        bad_input = (*bad_input, pa.ArrowException)
    try:
        yield from _parsed_pages(part, part_format, part_compression, page_size, columns)
    except SnapshotError:
        raise
    except bad_input as exc:
        reason = mask_text(f"{type(exc).__name__}: {exc}")[:300]
        raise SnapshotError(f"snapshot {part.source} cannot be read as {part_format}: its parser failed ({reason}); "
                            "a damaged or hostile file? Fix or re-export the snapshot") from None


def _parsed_pages(part: Part, part_format: Format, part_compression: Compression, page_size: int,
                  columns: Collection[str] | None) -> Iterator[Page]:
    if part_format == "parquet":
        file = part.open_seekable()
        try:
            yield from parquet_pages(file, part.source, page_size, columns)
        finally:
            file.close()
        return
    stream = open_part(part, part_compression)
    try:
        if part_format == "jsonl":
            yield from jsonl_pages(stream, part.source, page_size)
        else:
            yield from csv_pages(stream, part.source, page_size, header=part.header, delimiter=part.delimiter)
    finally:
        stream.close()


def _counted(listing: Listing, pages: Iterator[Page]) -> Iterator[Page]:
    """``pages``, then a check of the total the manifest states (when it states one)."""
    if listing.records is None:
        yield from pages
        return
    rows = 0
    for page in pages:
        rows += len(page.rows)
        yield page
    if rows != listing.records:
        raise SnapshotError(_count_message(listing.source, rows, listing.records, "the manifest"), code=INCOMPLETE)


def _count_message(source: str, rows: int, records: int, says: str) -> str:
    if rows < records:
        return (f"snapshot {source} holds {rows:,} rows where {says} says {records:,}: it is not whole (a file cut "
                "short or still being written); nothing was sent. Re-run the export, then publish again")
    return (f"snapshot {source} holds {rows:,} rows where {says} says {records:,}: the files are not the ones the "
            "job wrote; nothing was sent. Re-run the export, then publish again")


def snapshot_identity(uri: str, rules: SnapshotRules = _NO_RULES) -> str:
    """A cheap, stable identity of the snapshot's content, from listings only (no data is read).

    Per part: name, size and mtime (files) or ETag (S3). Equal identities mean "same snapshot" for
    skipping a re-run and resuming a plan; a re-upload of identical bytes to S3 keeps its ETag and so its
    identity. A manifest or model.json also says how the parts are read (a CDM entity's columns, delimiter,
    header row; a manifest's record counts): its bytes' digest and each part's reading are part of the
    identity, so a model.json corrected in place over the same partitions is another snapshot and a fresh
    plan, never a resume of the plan made under the old columns. A folder's or file's identity is unchanged.
    """
    listing = list_parts(uri, rules)
    digest = hashlib.sha256()
    for part in listing.parts:
        digest.update(f"{part.name}\0{part.size}\0{part.stamp}\n".encode())
        if listing.document:
            reading = [part.format, part.header and list(part.header), part.delimiter, part.records]
            digest.update(orjson.dumps(reading) + b"\n")
    if listing.document:
        digest.update(f"document\0{listing.document}\n".encode())
    return digest.hexdigest()
