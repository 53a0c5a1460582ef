"""A part: one file or object of a snapshot, with what is needed to identify and open it."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class ReadableStream(Protocol):
    """What the parsers need from a part: sequential ``read(n)`` (short reads allowed) and ``close``."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Part:
    """One file or object, listed but not yet opened.

    Why opening is deferred: a folder may hold hundreds of parts; only the one being read holds a
    file descriptor or an HTTP connection.
    """

    name: str
    """File name or last key segment; its suffix decides format and compression."""
    source: str
    """URI reported in each Page (``file:///...`` or ``s3://bucket/key``)."""
    size: int
    stamp: str
    """mtime in ns for files, the ETag for S3: with name and size, the part's identity."""
    opener: Callable[[], ReadableStream]
    """Opens a fresh binary stream of the stored bytes; raises SnapshotError."""
    read_errors: tuple[type[BaseException], ...]
    """Transport exceptions that reading the stream may raise; turned into SnapshotError."""
    open_seekable: Callable[[], io.RawIOBase]
    """Opens the stored bytes as a seekable file (Parquet: footer first, then only the mapped columns);
    on S3 each read is a ranged GET of the listed version, so nothing is buffered whole."""
    format: str | None = None
    """The format the snapshot's own description gives (a CDM model.json: csv), over suffix and argument."""
    header: tuple[str, ...] | None = None
    """CSV without a header row: the column names (a CDM entity's attributes); None: the first row."""
    delimiter: str = ","
    """CSV: the field delimiter (a CDM partition's ``fileFormatSettings.delimiter``)."""
    records: int | None = None
    """How many rows the part holds according to a manifest (checked once it is read); None: not said."""
