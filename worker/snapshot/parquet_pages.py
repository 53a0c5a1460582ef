"""Read a Parquet part into pages of profiles: only the mapped columns, one bounded batch at a time.

Why pyarrow, and why optional: it is the one complete Parquet reader for Python (every encoding and
codec Spark, Glue, Redshift, Snowflake and BigQuery write), and it reads only the columns asked for.
It is large, so it is the extra ``segment-export[parquet]``; without it a Parquet snapshot fails before
any request with the install command (``require_pyarrow``).

Bounded memory: the file is opened with ``pre_buffer=False`` (pre-buffering fetches a whole row group's
column chunks at once) and a 1 MiB ``buffer_size`` (column chunks are streamed, not read whole), and
rows come out in batches of one page. On S3 the file is a ``RangedObject``: the footer first, then
ranged GETs of the mapped columns' chunks only. Text columns are read dictionary-encoded (a repeated value
held once) and decoded one slice at a time: ``worker.snapshot.parquet_bounds`` measures each batch's
decoded text without decoding it, fails a value over the 128 KiB field limit naming its column and row,
and cuts a batch above 16 MiB of text into smaller pages, so a 12 KB file of 5,000 copies of one 100 KB
value costs one slice, not 500 MB. A timestamp or date outside the years 0001-9999 fails the part naming
its column and row (converted, it was junk text sent to ActiveCampaign).

Types map onto what the mapping already converts, so a Parquet snapshot syncs exactly as the same data
in JSON Lines would: text and integers as they are; dates as ``YYYY-MM-DD``; timestamps as ISO 8601 UTC
to the second (``2024-06-01T12:30:00Z``; a timestamp without a time zone is taken as UTC, as Spark writes
them); decimals as text; lists (for ``tag_field``) as lists; a null is a missing value. A mapped column of
another type (a struct, a map, raw bytes that are not UTF-8) fails the part naming the column, because
a value the mapping cannot read would otherwise make every contact invalid.

Row numbers (1-based, per part) stand where the text formats put line numbers.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator
from typing import Any

from worker.privacy.masking import mask_text
from worker.snapshot.errors import SnapshotError
from worker.snapshot.page import Page
from worker.snapshot.parquet_bounds import (
    FIELD_LIMIT,
    OutOfRange,
    ValueTooLarge,
    check_range,
    check_values,
    slices,
)

INSTALL = "pip install 'segment-export[parquet]'"
BUFFER_SIZE = 1 << 20


def require_pyarrow(source: str) -> None:
    """Fail now, naming the install command, when pyarrow is missing (before anything is read or sent)."""
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise SnapshotError(f"snapshot {source} is Parquet, which needs pyarrow: install the extra with "
                            f"{INSTALL} (or convert the snapshot to JSON Lines or CSV)") from None


def parquet_pages(file: io.RawIOBase, source: str, page_size: int,
                  columns: Collection[str] | None = None) -> Iterator[Page]:
    """Pages of (row number, profile) from the Parquet file ``file``; ``columns``: the mapped ones (None: all).

    A column of ``columns`` that the file lacks is simply absent from the profiles; the page's
    ``columns`` are the file's, so the email-column check names what the file has.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        footer = pq.ParquetFile(file, pre_buffer=False, buffer_size=BUFFER_SIZE, memory_map=False)
        schema = footer.schema_arrow
        names = tuple(schema.names)
        twice = next((name for i, name in enumerate(names) if name in names[:i]), None)
        if twice is not None:  # which column is meant is unclear (and pyarrow's reader raises KeyError on it)
            raise SnapshotError(f"snapshot {source} has the column {mask_text(twice)[:60]!r} twice (rename one)")
        wanted = list(names) if columns is None else [n for n in names if n in set(columns)]
        converters = [(name, _converter(schema.field(name).type, name, source)) for name in wanted]
        # text stays dictionary-encoded as read (one copy of a repeated value), decoded one bounded slice at a time
        texts = [name for name in wanted if _flat_text(schema.field(name).type)]
        reader = pq.ParquetFile(file, metadata=footer.metadata, pre_buffer=False, buffer_size=BUFFER_SIZE,
                                memory_map=False, read_dictionary=texts)
        batches = reader.iter_batches(batch_size=page_size, columns=wanted, use_threads=False)
        number = 0
        for batch in batches:
            sizes = _checked(batch, wanted, source, number)
            for offset, length in slices(sizes, batch.num_rows):
                part = batch.slice(offset, length)
                arrays = [_convert(convert, part.column(name), name, source) for name, convert in converters]
                rows = pa.RecordBatch.from_arrays(arrays, names=wanted).to_pylist() if arrays else [{}] * length
                if any(array.null_count for array in arrays):
                    rows = [{k: v for k, v in row.items() if v is not None} for row in rows]
                yield Page(source, list(enumerate(rows, number + 1)), names)
                number += len(rows)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise SnapshotError(f"snapshot {source} is not a readable Parquet file: {exc} (a truncated or "
                            "unfinished upload? re-export the snapshot)") from None


def _checked(batch: Any, wanted: list[str], source: str, number: int) -> Any:
    """The decoded text bytes of each row of ``batch``; SnapshotError for a value no profile can hold."""
    import numpy as np

    sizes = np.zeros(batch.num_rows, np.int64)
    for name in wanted:
        column = batch.column(name)
        try:
            check_range(column, name)
            sizes += check_values(column, name)
        except ValueTooLarge as exc:
            raise SnapshotError(f"snapshot {source}: column {mask_text(name)[:60]!r} of row {number + exc.index + 1} "
                                f"holds a value of {exc.size:,} bytes, over the {FIELD_LIMIT:,}-byte limit of a "
                                "field (no contact field holds that much; fix the column or leave it unmapped)"
                                ) from None
        except OutOfRange as exc:
            raise SnapshotError(f"snapshot {source}: column {mask_text(name)[:60]!r} of row {number + exc.index + 1} "
                                f"holds a {exc.kind} outside the years 0001-9999 (a damaged value, or one written "
                                "in another unit); fix the column or re-export the snapshot") from None
    return sizes


def _flat_text(arrow_type: Any) -> bool:
    import pyarrow.types as t

    return bool(t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_binary(arrow_type)
                or t.is_large_binary(arrow_type))


def _convert(convert: Any, array: Any, name: str, source: str) -> Any:
    import pyarrow as pa

    try:
        return convert(array)
    except pa.ArrowInvalid as exc:
        raise SnapshotError(f"snapshot {source}: column {name!r} cannot be read as text ({exc}); write it as a "
                            "string column") from None


def _converter(arrow_type: Any, name: str, source: str) -> Any:
    """The Arrow compute step that turns one column of ``arrow_type`` into what the mapping reads."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    if t.is_dictionary(arrow_type):
        inner = _converter(arrow_type.value_type, name, source)
        return lambda array: inner(array.dictionary_decode())
    if (t.is_string(arrow_type) or t.is_large_string(arrow_type) or t.is_integer(arrow_type)
            or t.is_floating(arrow_type) or t.is_boolean(arrow_type) or t.is_null(arrow_type)):
        return lambda array: array
    if t.is_date(arrow_type) or t.is_decimal(arrow_type) or t.is_binary(arrow_type) or t.is_large_binary(arrow_type):
        return lambda array: pc.cast(array, pa.string())
    if t.is_timestamp(arrow_type):
        utc = pa.timestamp("s", tz="UTC")
        return lambda array: pc.strftime(pc.cast(array, utc, safe=False), format="%Y-%m-%dT%H:%M:%SZ")
    if t.is_list(arrow_type) or t.is_large_list(arrow_type):
        item = arrow_type.value_type
        if t.is_string(item) or t.is_large_string(item):
            return lambda array: array
        if t.is_integer(item) or t.is_dictionary(item):
            return lambda array: pc.cast(array, pa.list_(pa.string()))
    raise SnapshotError(f"snapshot {source}: column {name!r} is of Parquet type {arrow_type}, which no contact "
                        "field takes (map a text, number, date, timestamp or list-of-text column instead)")
