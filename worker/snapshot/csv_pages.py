"""Parse a CSV stream (header row first) into pages of profiles, every value a string; strictly.

Read whole or not at all: the parser is strict (``csv.reader(strict=True)``), so an open quote that
reaches the end of the part, text after a closing quote, a value over the field size limit (usually an
open quote that swallowed the lines after it) or a row with another number of fields than the header
fails the part with SnapshotError naming the line and the fix. The lenient reader it replaces turned
such damage into one "invalid" row and silently lost every row after it; the run then unsubscribed them.

Why the bytes are decoded here and not by io.TextIOWrapper: TextIOWrapper decodes ahead of the parser,
so an invalid UTF-8 byte could only be placed "after line N" for some earlier N. Here the part is read in
1 MiB blocks cut after a line break and each is decoded at once (one C call), so a bad byte is located
at its line exactly. The decoded lines go to the C parser through ``itertools.chain``, with no Python
code per row on the way; ``line_num`` then counts physical lines, which is what an operator looks for.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator
from typing import Any

from worker.privacy.masking import mask_text
from worker.snapshot.errors import SnapshotError
from worker.snapshot.page import Page
from worker.snapshot.parts import ReadableStream

_BUFFER = 1 << 20
#: A line (or a run of quoted lines) longer than this without a line break is not a profile.
MAX_LINE_BYTES = 64 << 20
_BREAKS = re.compile(rb"\r\n|\r|\n")
_LINES = re.compile(r"\r\n|\r|\n")
#: What any email address looks like (a superset of what ActiveCampaign accepts): text without spaces,
#: one '@', a '.' after it. A line inside a quoted value that holds one as a whole field is a swallowed row.
_EMAIL_SHAPED = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+").fullmatch


class _BadBytes(Exception):
    """Invalid UTF-8 in a block: ``breaks`` line breaks of the block precede the bad byte."""

    def __init__(self, breaks: int, reason: str) -> None:
        super().__init__(reason)
        self.breaks = breaks
        self.reason = reason


class _LongLine(Exception):
    """More than MAX_LINE_BYTES without a line break."""


def _blocks(stream: ReadableStream) -> Iterator[io.StringIO]:
    """The stream as decoded blocks of whole lines (each iterates its lines, line ends kept as in the data)."""
    pending = b""
    first = True
    while chunk := stream.read(_BUFFER):
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        if not cut:  # no \n: a file with \r line ends, or a long line; never cut between \r and \n
            cut = data.rfind(b"\r", 0, len(data) - 1) + 1
        if not cut:
            if len(data) > MAX_LINE_BYTES:
                raise _LongLine
            pending = data
            continue
        pending = data[cut:]
        yield _decode(data[:cut], first)
        first = False
    if pending:
        yield _decode(pending, first)


def _decode(block: bytes, first: bool) -> io.StringIO:
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadBytes(len(_BREAKS.findall(block, 0, exc.start)), exc.reason) from None
    return io.StringIO(text.removeprefix("\ufeff") if first else text, newline="")


def csv_pages(stream: ReadableStream, source: str, page_size: int, *, header: tuple[str, ...] | None = None,
              delimiter: str = ",") -> Iterator[Page]:
    """Pages of (line, {column: value}); the first line where the part is not well-formed CSV raises.

    Header names are stripped of surrounding spaces (``email, name`` is a common export quirk); values
    are kept as they are, an empty value as ''. Blank lines are skipped. A part without a header row (no
    text at all, or blank lines only) raises: it is a part cut short, not a part with no rows. ``header``:
    the column names of a part without a header row (a CDM partition), whose first line is then data.
    """
    reader = csv.reader(itertools.chain.from_iterable(_blocks(stream)), strict=True, delimiter=delimiter)
    names: list[str] | None = list(header) if header is not None else None
    columns: tuple[str, ...] | None = header
    width = len(header) if header is not None else 0
    rows: list[tuple[int, dict[str, Any]]] = []
    last = 0  # line_num after the previous row: the next row starts on the line after it
    try:
        for fields in reader:
            start, last = last + 1, reader.line_num
            if last > start and names is not None:  # a quoted value spans lines: rare, checked only then
                _no_swallowed_rows(fields, start, source, delimiter)
            if len(fields) == width and names is not None:
                rows.append((start, dict(zip(names, fields, strict=True))))
                if len(rows) >= page_size:
                    yield Page(source, rows, columns)
                    rows = []
            elif not fields:
                continue
            elif names is None:
                names = _header(fields, source)
                columns, width = tuple(names), len(names)
            else:
                has = "the header has" if header is None else "model.json declares"
                raise SnapshotError(
                    f"snapshot {source} is not well-formed CSV: line {start} has {len(fields)} fields where {has} "
                    f"{width} (a stray delimiter or quote; fix the row or re-export the snapshot)")
    except csv.Error as exc:
        raise SnapshotError(_csv_message(source, str(exc), last + 1, reader.line_num)) from None
    except _BadBytes as exc:
        raise SnapshotError(
            f"snapshot {source} is not UTF-8: line {reader.line_num + exc.breaks + 1} holds an invalid byte "
            f"({exc.reason}); re-export it as UTF-8") from None
    except _LongLine:
        raise SnapshotError(
            f"snapshot {source} is not CSV: more than {MAX_LINE_BYTES >> 20} MiB after line {reader.line_num} "
            "without a line break") from None
    if names is None:
        raise SnapshotError(f"snapshot part {source} is empty: no header row; a part cut short? (a part with no "
                            "rows still holds its header row; re-export the snapshot)")
    if rows:
        yield Page(source, rows, columns)


def _no_swallowed_rows(fields: list[str], start: int, source: str, delimiter: str) -> None:
    """Raise if a line inside a quoted value of this row (which starts on line ``start``) reads as a row.

    Why: two stray quotes (``"O'Brien`` typed with a quote on one row, ``Smith"`` on a later one) make
    one well-formed value of every line between them, so a strict parser alone reads the part "whole"
    and the members on the swallowed lines are unsubscribed. Every member's row holds an email, and a
    legitimate multi-line value (an address, a note) seldom holds one as a whole field on a line of its
    own; so a line after a line break inside a value that has an email-shaped field (split at the
    delimiter, spaces and quotes around it stripped) fails the part, naming the line. No limit is put on
    the number of lines a value may span: a swallowed line without an email was no member's row.
    """
    line = start
    for field in fields:
        inner = _LINES.split(field)
        for offset, text in enumerate(inner[1:], 1):
            if any(_EMAIL_SHAPED(piece.strip().strip('"').strip()) for piece in text.split(delimiter)):
                raise SnapshotError(
                    f"snapshot {source} is not well-formed CSV: line {line + offset} is inside a quoted value that "
                    f"starts on line {line} and reads as a row of its own (it holds an email address): two stray "
                    "quotes swallowed the lines between them? Close the quote on its own row, or double a quote "
                    "inside a value (\"\"); a value may not hold an email address after a line break")
        line += len(inner) - 1


def _csv_message(source: str, error: str, start: int, at: int) -> str:
    """The parser's complaint as a sentence an operator can act on."""
    where = f"line {start}" if at <= start else f"the row starting on line {start} (read to line {at})"
    if "unexpected end of data" in error:
        why = (f"{where} opens a quoted value that is never closed, so it would swallow every line after it "
               "(close the quote, or double a quote inside a value: \"\")")
    elif "field larger than field limit" in error:
        why = (f"{where} holds a value over {csv.field_size_limit():,} characters, usually an unclosed quote "
               "that swallowed the lines after it (close the quote)")
    elif "expected after" in error:
        why = f"line {at} has text after a closing quote (quote the whole value, doubling quotes inside it: \"\")"
    else:
        why = f"{where}: {error}"
    return f"snapshot {source} is not well-formed CSV: {why}"


def _header(fields: list[str], source: str) -> list[str]:
    """The column names; a duplicate makes every row ambiguous, so the part cannot be read."""
    names = [name.strip() for name in fields]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SnapshotError(f"snapshot {source} has the column {mask_text(name)[:60]!r} twice in its header "
                                "(line 1; rename one)")
        seen.add(name)
    return names
