"""Bounds on what one Parquet batch may cost and hold: decoded bytes per page, per value, dates in range.

Why: Parquet stores a repeated value once (dictionary encoding) and compresses the rest, so a 12 KB
file can hold 5,000 rows of one 100 KB value: 500 MB once decoded into a page of Python strings. The
text readers cap a value at 128 KiB and a line at 64 MiB; here the sizes are computed from the encoded
batch (a dictionary's value lengths taken by its indices: no value is decoded to measure it), a value
over the field limit fails the part naming the column and row, and a batch whose decoded text passes
``PAGE_BYTES`` is cut into slices that each fit, so memory stays near one slice whatever the file.

Timestamps and dates outside the years 0001-9999 (a damaged file, or one written with another unit)
cannot be shown as ISO 8601; converted anyway they became junk text sent to ActiveCampaign. They fail
the part naming the column and row.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

#: The largest text value a snapshot may hold (the CSV reader's field limit, ``csv.field_size_limit()``).
FIELD_LIMIT = 131_072
#: Decoded text per page: a batch above it is read as several smaller pages.
PAGE_BYTES = 16 << 20

_FIRST_SECOND, _LAST_SECOND = -62_135_596_800, 253_402_300_799  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z
_FIRST_DAY, _LAST_DAY = -719_162, 2_932_896                      # 0001-01-01, 9999-12-31
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


class ValueTooLarge(Exception):
    """A value of ``column`` at batch index ``index`` holds ``size`` bytes, over FIELD_LIMIT."""

    def __init__(self, column: str, index: int, size: int) -> None:
        super().__init__(column)
        self.column, self.index, self.size = column, index, size


class OutOfRange(Exception):
    """A timestamp or date of ``column`` at batch index ``index`` is outside the years 0001-9999."""

    def __init__(self, column: str, index: int, kind: str) -> None:
        super().__init__(column)
        self.column, self.index, self.kind = column, index, kind


def value_sizes(array: Any) -> Any:
    """Decoded bytes of each row's text in ``array`` (numpy int64; 0 for a null or a non-text type)."""
    import pyarrow.compute as pc
    import pyarrow.types as t

    kind = array.type
    if t.is_dictionary(kind):
        if not _is_text(kind.value_type):
            return np.zeros(len(array), np.int64)
        lengths = pc.binary_length(array.dictionary)
        return _numpy(pc.take(lengths, array.indices))
    if _is_text(kind):
        return _numpy(pc.binary_length(array))
    if t.is_list(kind) or t.is_large_list(kind):
        items = value_sizes(array.flatten())
        parents = _numpy(pc.list_parent_indices(array))
        return np.bincount(parents, weights=items, minlength=len(array)).astype(np.int64)
    return np.zeros(len(array), np.int64)


def check_values(array: Any, column: str) -> Any:
    """``value_sizes(array)``; ValueTooLarge for the first row holding a single value over FIELD_LIMIT."""
    import pyarrow.compute as pc
    import pyarrow.types as t

    sizes = value_sizes(array)
    if t.is_list(array.type) or t.is_large_list(array.type):  # the limit is per value, not per list
        items = value_sizes(array.flatten())
        if len(items) and int(items.max()) > FIELD_LIMIT:
            at = int(np.argmax(items > FIELD_LIMIT))
            raise ValueTooLarge(column, int(_numpy(pc.list_parent_indices(array))[at]), int(items[at]))
    elif len(sizes) and int(sizes.max()) > FIELD_LIMIT:
        at = int(np.argmax(sizes > FIELD_LIMIT))
        raise ValueTooLarge(column, at, int(sizes[at]))
    return sizes


def check_range(array: Any, column: str) -> None:
    """OutOfRange for the first timestamp or date of ``array`` outside the years 0001-9999."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as t

    kind = array.type
    if t.is_dictionary(kind):
        if not (t.is_timestamp(kind.value_type) or t.is_date(kind.value_type)):
            return  # never decode text to look at it: that is what a page must not cost
        array, kind = array.dictionary_decode(), kind.value_type  # fixed width: 8 bytes a row at most
    if t.is_timestamp(kind):
        scale, what = _PER_SECOND[kind.unit], "timestamp"
        low, high = _FIRST_SECOND * scale, (_LAST_SECOND + 1) * scale - 1
        values = array.cast(pa.int64())
    elif t.is_date32(kind):
        low, high, what, values = _FIRST_DAY, _LAST_DAY, "date", array.cast(pa.int32())
    elif t.is_date64(kind):
        low, high, what = _FIRST_DAY * 86_400_000, (_LAST_DAY + 1) * 86_400_000 - 1, "date"
        values = array.cast(pa.int64())
    else:
        return
    bounds = pc.min_max(values)
    lowest, highest = bounds["min"].as_py(), bounds["max"].as_py()
    if lowest is None or (lowest >= low and highest <= high):
        return
    outside = pc.or_(pc.less(values, low), pc.greater(values, high))
    raise OutOfRange(column, int(pc.index(outside, True).as_py()), what)


def slices(sizes: Any, total_rows: int) -> Iterator[tuple[int, int]]:
    """(offset, length) of consecutive row ranges whose summed ``sizes`` stay within PAGE_BYTES (>= 1 row)."""
    if total_rows == 0:
        return
    if int(sizes.sum()) <= PAGE_BYTES:
        yield 0, total_rows
        return
    ends = np.cumsum(sizes)
    start, base = 0, 0
    while start < total_rows:
        stop = int(np.searchsorted(ends, base + PAGE_BYTES, side="right"))
        stop = max(stop, start + 1)
        yield start, stop - start
        base = int(ends[stop - 1])
        start = stop


def _is_text(kind: Any) -> bool:
    import pyarrow.types as t

    return bool(t.is_string(kind) or t.is_large_string(kind) or t.is_binary(kind) or t.is_large_binary(kind))


def _numpy(array: Any) -> Any:
    import pyarrow.compute as pc

    return pc.fill_null(array, 0).to_numpy(zero_copy_only=False).astype(np.int64)
