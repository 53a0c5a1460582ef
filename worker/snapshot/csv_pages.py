"""Parse a CSV stream (header row first) into pages of profiles, every value a string.

Why csv.reader and not DictReader: DictReader builds each dict in Python with extra checks; zipping
the header with each row is the same result for a fraction of the cost. Why ``line_num``: a quoted
value may span lines, and an operator needs the line where the row starts.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from worker.snapshot.errors import SnapshotError
from worker.snapshot.page import Page
from worker.snapshot.stream import GuardedStream

_BUFFER = 1 << 20


def csv_pages(stream: GuardedStream, source: str, page_size: int) -> Iterator[Page]:
    """Pages of (line, {column: value}); rows with the wrong number of fields become (line, reason).

    Header names are stripped of surrounding spaces (``email, name`` is a common export quirk); values
    are kept as they are, an empty value as ''. Blank lines are skipped.
    """
    text = io.TextIOWrapper(io.BufferedReader(stream, _BUFFER), encoding="utf-8-sig", newline="")
    reader = csv.reader(text)
    header: list[str] | None = None
    width = 0
    rows: list[tuple[int, dict[str, Any]]] = []
    errors: list[tuple[int, str]] = []
    last = 0  # line_num after the previous row: the next row starts on the line after it
    while True:
        try:
            for fields in reader:
                start, last = last + 1, reader.line_num
                if len(fields) == width and header is not None:
                    rows.append((start, dict(zip(header, fields, strict=True))))
                    if len(rows) >= page_size:
                        yield Page(source, rows, errors)
                        rows, errors = [], []
                elif not fields:
                    continue
                elif header is None:
                    header = _header(fields, source)
                    width = len(header)
                else:
                    errors.append((start, f"expected {width} fields as in the header, got {len(fields)}"))
            break
        except csv.Error as exc:  # the reader can go on after a bad row (e.g. a field over the size limit)
            errors.append((last + 1, f"malformed CSV: {exc}"))
            last = reader.line_num
        except UnicodeDecodeError as exc:
            # Text is decoded in blocks ahead of the parser, so only a lower bound of the line is known.
            raise SnapshotError(
                f"snapshot {source} is not UTF-8 ({exc.reason}, after line {reader.line_num}; "
                "re-export it as UTF-8)"
            ) from exc
    if rows or errors:
        yield Page(source, rows, errors)


def _header(fields: list[str], source: str) -> list[str]:
    """The column names; a duplicate makes every row ambiguous, so the part cannot be read."""
    names = [name.strip() for name in fields]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SnapshotError(f"snapshot {source} has the column {name!r} twice in its header (rename one)")
        seen.add(name)
    return names
