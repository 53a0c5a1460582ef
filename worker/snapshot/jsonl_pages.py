"""Parse a JSON Lines stream into pages of profiles; strictly.

Read whole or not at all: every line that is not blank must be one JSON object. A line that is not JSON
(a truncated last line, invalid UTF-8, a stray character) or is JSON but not an object fails the part
with SnapshotError naming the line; the lenient reader it replaces skipped such lines, and a run that
"succeeded" without them unsubscribed the people on them. Blank lines (spaces, tabs, CR only) are skipped.

Why chunks split in bytes rather than ``for line in file``: the engine's whole pipeline targets
100,000 profiles/s on one core, so the reader gets a small slice of that. Splitting 256 KiB chunks with
``bytes.split`` and parsing each chunk's lines in one comprehension of ``orjson.loads`` leaves one C
call per row and almost no Python work; memory stays at one parsed chunk plus one page whatever the
file's size.

Two things orjson does quietly that a snapshot must not: a key twice in one object keeps the last value
(which email is meant?), and an integer past 64 bits becomes a float, rounding an id like
``123456789012345678901234`` to ``1.2345678901234569e+23``. Both are caught without a second parse of
every line: colons outside strings are exactly the keys written, so a line whose colon count (less the
colons inside its parsed strings) differs from its parsed key count had a key twice; an integer of 19
digits or more shows as a run of 19 digits in the bytes. Only such lines are parsed again, by the
standard library (exact integers, every key seen); a key twice fails the part naming the line and the key.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson

from worker.privacy.masking import mask_text
from worker.snapshot.errors import SnapshotError
from worker.snapshot.page import Page
from worker.snapshot.parts import ReadableStream

CHUNK_SIZE = 1 << 18
_BOM = b"\xef\xbb\xbf"
_loads = orjson.loads
_DecodeError = orjson.JSONDecodeError
_DICT_ONLY = frozenset({dict})
_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}
_BLANK = b" \t\r"  # JSON whitespace without the line feed that ended the line
#: bytes.translate table: digits stay '0', anything else becomes ' ', so a run of digits is a run of '0'.
_DIGITS = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
#: orjson reads integers in [-2**63, 2**64) exactly; one of 19 digits or more may not fit and becomes a float.
_LONG_NUMBER = b"0" * 19


#: A line longer than this is not a profile (the CSV reader's bound): the reader fails rather than gather it.
MAX_LINE_BYTES = 64 << 20


class _LongLine(Exception):
    """More than MAX_LINE_BYTES without a line break."""


class _TwiceInOneObject(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def line_batches(stream: ReadableStream, chunk_size: int = CHUNK_SIZE,
                 max_line: int = MAX_LINE_BYTES) -> Iterator[list[bytes]]:
    """Complete lines (without the newline) in batches of one chunk's worth; a UTF-8 BOM is dropped.

    A line longer than a chunk is gathered piecewise, so it costs its own length, not a quadratic copy;
    past ``max_line`` bytes without a line break it raises _LongLine, so one endless line (a few hundred
    KiB of gzip can hold gigabytes of it) cannot take the worker's memory.
    """
    pending: list[bytes] = []
    gathered = 0
    first = True
    while chunk := stream.read(chunk_size):
        if first:
            while len(chunk) < len(_BOM) and _BOM.startswith(chunk) and (more := stream.read(chunk_size)):
                chunk += more  # a short first read may have split the BOM
            first = False
            chunk = chunk.removeprefix(_BOM)
            if not chunk:
                continue
        if b"\n" not in chunk:
            gathered += len(chunk)
            if gathered > max_line:
                raise _LongLine
            pending.append(chunk)
            continue
        if pending:
            if gathered + chunk.index(b"\n") > max_line:
                raise _LongLine
            pending.append(chunk)
            chunk = b"".join(pending)
            pending = []
        lines = chunk.split(b"\n")
        tail = lines.pop()
        gathered = len(tail)
        if tail:
            pending.append(tail)
        yield lines
    if pending:
        yield [b"".join(pending)]


def jsonl_pages(stream: ReadableStream, source: str, page_size: int, *,
                max_line: int = MAX_LINE_BYTES) -> Iterator[Page]:
    """Pages of (line, object); blank lines are skipped, any other line that is not an object raises.

    Each batch of lines is first parsed in one list comprehension (the common, all-valid case); only a
    batch with a blank or bad line is gone through line by line, to skip the blanks or name the bad one.
    A line over ``max_line`` bytes raises naming it.
    """
    rows: list[tuple[int, dict[str, Any]]] = []
    number = 0  # lines before this batch
    batches = line_batches(stream, max_line=max_line)
    while True:
        try:
            lines = next(batches, None)
        except _LongLine:
            raise SnapshotError(f"snapshot {source} is not JSON Lines: line {number + 1} runs past "
                                f"{max_line >> 20} MiB without a line break (no profile is that long; a "
                                "damaged or hostile file? fix or re-export the snapshot)") from None
        if lines is None:
            break
        try:
            values = [_loads(line) for line in lines]
        except _DecodeError:
            values = None
        if values is not None and set(map(type, values)) <= _DICT_ONLY:
            _exact(lines, values, number, source)
            rows.extend(zip(range(number + 1, number + 1 + len(lines)), values, strict=True))
        else:
            _parse_one_by_one(lines, number, rows, source)
        number += len(lines)
        if len(rows) >= page_size:
            start = 0
            while len(rows) - start >= page_size:
                yield Page(source, rows[start : start + page_size])
                start += page_size
            rows = rows[start:]
    if rows:
        yield Page(source, rows)


def _parse_one_by_one(lines: list[bytes], number: int, rows: list[tuple[int, dict[str, Any]]], source: str) -> None:
    """The slow path for a batch with a blank or bad line: every line on its own; the first bad one raises."""
    for number, line in enumerate(lines, number + 1):  # noqa: B020 - line numbers go on from the batch
        if not line.strip(_BLANK):
            continue
        try:
            value = _loads(line)
        except _DecodeError as exc:
            raise SnapshotError(f"snapshot {source} is not JSON Lines: line {number} is not JSON ({exc}); "
                                "fix or re-export the snapshot (one JSON object per line, UTF-8)") from None
        if type(value) is not dict:
            raise SnapshotError(f"snapshot {source} is not JSON Lines of profiles: line {number} is "
                                f"{_JSON_TYPES.get(type(value), 'null')}, not an object; fix or re-export the "
                                "snapshot (one JSON object per line)")
        rows.append((number, _checked(line, value, number, source, _LONG_NUMBER in line.translate(_DIGITS))))


def _exact(lines: list[bytes], values: list[Any], number: int, source: str) -> None:
    """Replace in ``values`` what orjson may have read loosely (module docstring); raise for a key twice."""
    long_numbers = _LONG_NUMBER in b"\n".join(lines).translate(_DIGITS)
    for i, (line, value) in enumerate(zip(lines, values, strict=True)):
        if line.count(b":") != len(value) or long_numbers:
            values[i] = _checked(line, value, number + i + 1, source,
                                 long_numbers and _LONG_NUMBER in line.translate(_DIGITS))


def _checked(line: bytes, value: dict[str, Any], number: int, source: str, long_number: bool) -> dict[str, Any]:
    """``value`` if orjson read ``line`` exactly; else the standard library's exact reading of it."""
    if not long_number and b"\\u" not in line:
        separators = line.count(b":")
        for key, item in value.items():  # the common case inline: a flat object, colons in text values
            if ":" in key:
                separators -= key.count(":")
            if item.__class__ is str:
                if ":" in item:
                    separators -= item.count(":")
            elif item.__class__ is dict or item.__class__ is list:
                separators = line.count(b":") - _colons(value) - _keys(value) + len(value)
                break
        if separators == len(value):
            return value
    try:
        exact: dict[str, Any] = json.loads(line, object_pairs_hook=_once)
    except _TwiceInOneObject as exc:
        raise SnapshotError(
            f"snapshot {source} is not JSON Lines of profiles: line {number} has the key "
            f"{mask_text(exc.key)[:60]!r} twice in one object, so which value is meant is unclear; fix or re-export "
            "the snapshot (each key once per object)") from None
    except RecursionError:  # orjson stops at 1024 levels; the standard library may run out of stack before
        raise SnapshotError(f"snapshot {source} is not JSON Lines of profiles: line {number} nests objects or "
                            "arrays too deep to read; fix or re-export the snapshot") from None
    return exact


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _TwiceInOneObject(key)
        found[key] = value
    return found


def _keys(value: Any) -> int:
    """Keys in ``value``, nested objects included."""
    if value.__class__ is dict:
        return len(value) + sum(_keys(v) for v in value.values() if v.__class__ in (dict, list))
    if value.__class__ is list:
        return sum(_keys(v) for v in value if v.__class__ in (dict, list))
    return 0


def _colons(value: Any) -> int:
    """Colons inside the strings (keys and values) of ``value``: the ones that are not key separators."""
    if value.__class__ is str:
        return value.count(":")
    if value.__class__ is dict:
        return sum(k.count(":") for k in value) + sum(_colons(v) for v in value.values())
    if value.__class__ is list:
        return sum(_colons(v) for v in value)
    return 0
