"""Which files are snapshot parts, and how to parse one: format and compression by name or argument.

Parquet carries its own compression (per column chunk, inside the file), so a Parquet part is never
opened through the gzip sniffing stream; its ``compression`` is whatever was asked and is not used.
"""

from __future__ import annotations

from typing import Literal

from worker.snapshot.errors import SnapshotError

Format = Literal["jsonl", "csv", "parquet"]
Compression = Literal["gzip", "none", "sniff"]
"""'gzip' and 'none' are demanded (and checked against the data); 'sniff' decides from the data."""

PART_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".csv", ".csv.gz", ".parquet")
FORMATS = ("jsonl", "csv", "parquet")
COMPRESSIONS = ("none", "gzip")


def check_arguments(format: str | None, compression: str | None) -> None:
    """Reject an unknown format or compression before any I/O, naming the allowed values."""
    if format is not None and format not in FORMATS:
        raise SnapshotError(f"unknown snapshot format {format!r} (use 'jsonl', 'csv' or 'parquet', or omit it)")
    if compression is not None and compression not in COMPRESSIONS:
        raise SnapshotError(
            f"unknown snapshot compression {compression!r} (use 'gzip' or 'none', or omit it)"
        )


def is_part_name(name: str) -> bool:
    """A folder entry to read: a snapshot suffix and not hidden.

    Why '_' counts as hidden: Spark/Hadoop writers leave ``_SUCCESS``, ``_committed_*`` and
    ``_temporary`` next to the parts; ``.`` files are editors' and uploaders' temporaries.
    """
    return not name.startswith((".", "_")) and name.lower().endswith(PART_SUFFIXES)


def format_of(name: str, source: str, explicit: str | None) -> Format:
    """The explicit format, else the one the name's suffix implies."""
    if explicit is not None:
        return explicit  # type: ignore[return-value]  # checked by check_arguments
    lowered = name.lower()
    if lowered.endswith(".parquet"):  # Spark names them part-00000-<uuid>-c000.snappy.parquet (or .gz.parquet)
        return "parquet"
    lowered = lowered.removesuffix(".gz")
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lowered.endswith(".csv"):
        return "csv"
    raise SnapshotError(
        f"cannot tell the format of snapshot {source} from its name "
        "(name it .jsonl/.ndjson/.csv, optionally .gz, or .parquet, or pass format='jsonl', 'csv' or 'parquet')"
    )


def compression_of(name: str, explicit: str | None) -> Compression:
    """The explicit compression, else gzip for a ``.gz`` name, else decided by the data's magic bytes."""
    if explicit is not None:
        return explicit  # type: ignore[return-value]  # checked by check_arguments
    return "gzip" if name.lower().endswith(".gz") else "sniff"
