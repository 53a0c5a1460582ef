"""The readers against strict reference parsers, on any bytes (issue 19): a part is read whole or not at all.

For every input a reader either yields exactly the rows (with their line numbers) that a strict,
independent, character-by-character parser finds, or raises SnapshotError; and it raises exactly when the
reference rejects the input. "Fewer rows and no error", the failure that unsubscribed real members, is
one of the ways to break the equality. Inputs are random bytes, well-formed files, and well-formed files
mutated (a quote inserted, bytes dropped or replaced, an invalid UTF-8 byte), read through streams that
return short reads of random sizes so block boundaries fall anywhere.

The references (``reference_csv``, ``reference_jsonl``) are written from the format's rules, not from the
readers' code: RFC 4180 as Python's ``csv`` module reads it strictly (records end at CR, LF or CRLF
outside quotes; a field that starts with a quote ends at a quote followed by the delimiter, a line end or
the end; a quote inside an unquoted field is a character; at most ``csv.field_size_limit()`` characters
a field), plus our rules (UTF-8 with an optional BOM, blank lines skipped,
a header row (a part without one was cut short) with unique names, no line after a line break inside a value
holding an email address as a whole field (two stray quotes swallowed rows),
every row as wide as the header); and JSON Lines: every line that is not blank (only spaces, tabs, CR)
is one JSON object (RFC 8259; no NaN/Infinity, numbers that fit a double, integers outside 64 bits read
as doubles, no unpaired surrogate escapes, nesting at most 1024 deep).
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from tests.fuzzing import fuzz
from worker.snapshot import SnapshotError
from worker.snapshot.csv_pages import csv_pages
from worker.snapshot.jsonl_pages import jsonl_pages

pytestmark = pytest.mark.fuzz

Rows = list[tuple[int, dict[str, Any]]]


class _Chunks(io.RawIOBase):
    """A stream returning at most ``size`` bytes per read (block boundaries anywhere)."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size = data, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:  # what io.BufferedReader reads through
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, n: int = -1, /) -> bytes:
        take = self._size if n < 0 else min(n, self._size)
        out, self._data = self._data[:take], self._data[take:]
        return out


def _read(parser: Any, data: bytes, short_reads: int, page_size: int) -> Rows | None:
    """The reader's rows, or None when it raised SnapshotError."""
    try:
        return [row for page in parser(_Chunks(data, short_reads), "s3://b/part", page_size) for row in page.rows]
    except SnapshotError:
        return None


# ------------------------------------------------------------------------------------------ CSV

def _swallowed_row(value: str) -> bool:
    """A line after a line break inside ``value`` holds an email address (``x@y.z``, no spaces) as a whole field."""
    for text in value.replace("\r\n", "\n").replace("\r", "\n").split("\n")[1:]:
        for piece in text.split(","):
            piece = piece.strip().strip('"').strip()
            local, at, domain = piece.partition("@")
            if (at and local and "@" not in domain and not any(c.isspace() for c in piece)
                    and "." in domain[1:-1]):  # a dot with text on both sides
                return True
    return False


def reference_csv(data: bytes) -> Rows | None:
    """The rows of a strictly well-formed CSV part with a header, or None (see the module docstring)."""
    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return None
    limit = csv.field_size_limit()
    records: list[tuple[int, list[str]]] = []
    i, n, line = 0, len(text), 1

    def line_end(at: int) -> int:  # length of the line end at ``at`` (0: none)
        if text.startswith("\r\n", at):
            return 2
        return 1 if at < n and text[at] in "\r\n" else 0

    while i < n:
        if (k := line_end(i)):  # a blank line
            i, line = i + k, line + 1
            continue
        start, fields = line, []
        while True:
            chars: list[str] = []
            if i < n and text[i] == '"':
                i += 1
                while True:
                    if i >= n:
                        return None  # the quoted field never closes
                    if text[i] == '"':
                        if text.startswith('""', i):
                            chars.append('"')
                            i += 2
                            continue
                        i += 1
                        break
                    if (k := line_end(i)):
                        chars.append(text[i:i + k])
                        i, line = i + k, line + 1
                        continue
                    chars.append(text[i])
                    i += 1
                if i < n and text[i] != "," and not line_end(i):
                    return None  # text after the closing quote
            else:
                while i < n and text[i] != "," and not line_end(i):
                    chars.append(text[i])
                    i += 1
            field = "".join(chars)
            if len(field) > limit:
                return None
            fields.append(field)
            if i < n and text[i] == ",":
                i += 1
                continue
            if (k := line_end(i)):
                i, line = i + k, line + 1
            break
        records.append((start, fields))
    if not records:
        return None  # no header row: a part cut short, not a part with no rows
    header = [name.strip() for name in records[0][1]]
    if len(set(header)) != len(header):
        return None
    rows: Rows = []
    for start, fields in records[1:]:
        if any(_swallowed_row(field) for field in fields):
            return None
        if len(fields) != len(header):
            return None
        rows.append((start, dict(zip(header, fields, strict=True))))
    return rows


_CSV_VALUE = st.text(st.sampled_from('ab,"\r\n é\t;x@.') | st.characters(codec="utf-8", exclude_categories=["Cs"]),
                     max_size=8)


@st.composite
def _csv_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, a well-formed file, or a well-formed file with a few mutations."""
    kind = draw(st.sampled_from(["random", "good", "mutated", "mutated", "raw-joined"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    width = draw(st.integers(1, 4))
    records = draw(st.lists(st.lists(_CSV_VALUE, min_size=width, max_size=width), max_size=12))
    out = io.StringIO(newline="")
    terminator = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    if kind == "raw-joined":  # no quoting at all: whatever the values hold breaks the file or not
        out.write(terminator.join(",".join(r) for r in [[f"c{j}" for j in range(width)], *records]))
    else:
        writer = csv.writer(out, lineterminator=terminator)
        writer.writerow([f"c{j}" for j in range(width)])
        writer.writerows(records)
        if draw(st.booleans()):
            out.write(terminator)  # a trailing blank line
    data = bytearray(out.getvalue().encode())
    if draw(st.booleans()):
        data[:0] = b"\xef\xbb\xbf"
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data)))
            what = draw(st.sampled_from([b'"', b",", b"\n", b"\r", b"\xff", b"\xc3", b"", b"x"]))
            drop = draw(st.integers(0, 2))
            data[at:at + drop] = what
    return bytes(data)


@fuzz(400)
@given(data=_csv_bytes(), short_reads=st.integers(1, 64), page_size=st.integers(1, 5))
@example(data=b'email,name\nu1@example.com,Ann\nu2@example.com,"Bob\nu3@example.com,Cy\n', short_reads=64,
         page_size=5)  # the open quote: the lenient reader returned 1 row and an "invalid" one
@example(data=b"a,b\n1,2\n" + b'3,"' + b"x" * 131_073 + b"\n5,6\n", short_reads=4096, page_size=5)
@example(data=b'e,n\nu1@x.io,"O\nu2@x.io,L"\nu3@x.io,M\n', short_reads=3, page_size=5)  # two stray quotes
def test_csv_reader_yields_exactly_the_strict_rows_or_raises(data: bytes, short_reads: int, page_size: int) -> None:
    expected = reference_csv(data)
    got = _read(csv_pages, data, short_reads, page_size)
    event("rejected" if expected is None else "read")
    assert got == expected


@fuzz(200)
@given(records=st.lists(st.lists(_CSV_VALUE, min_size=2, max_size=2), min_size=1, max_size=20), data=st.data())
def test_csv_invalid_utf8_is_reported_on_its_own_line(records: list[list[str]], data: st.DataObject) -> None:
    out = io.StringIO(newline="")
    # QUOTE_ALL: Python's writer quotes a CR or LF only when it is part of its own line terminator
    csv.writer(out, lineterminator=data.draw(st.sampled_from(["\n", "\r\n", "\r"])),
               quoting=csv.QUOTE_ALL).writerows([["a", "b"], *records])
    good = out.getvalue().encode()
    at = data.draw(st.integers(0, len(good)))
    bad = good[:at] + b"\xff" + good[at:]
    line = good[:at].replace(b"\r\n", b"\n").replace(b"\r", b"\n").count(b"\n") + 1
    try:
        list(csv_pages(_Chunks(bad, data.draw(st.integers(1, 64))), "s3://b/part", 3))
    except SnapshotError as exc:
        assert f"is not UTF-8: line {line} holds an invalid byte" in str(exc)
    else:
        raise AssertionError("an invalid byte was read without an error")


# ------------------------------------------------------------------------------------------ JSON Lines

def _number(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("a number beyond a double")
    return value


def _integer(text: str) -> int:
    """Exact, however long (issue 19 review: orjson turns integers past 64 bits into floats; the reader may not)."""
    return int(text)


class _Twice(ValueError):
    """A key twice in one object: the reader refuses the part (which value is meant?)."""


def _once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Twice(key)
        found[key] = value
    return found


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _plain(value: Any, depth: int = 1) -> bool:
    """No unpaired surrogate anywhere, nesting at most 1024."""
    if depth > 1024:
        return False
    if isinstance(value, str):
        return not any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    return True


def reference_jsonl(data: bytes) -> Rows | None:
    """The objects of a strictly well-formed JSON Lines part, or None (see the module docstring)."""
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    rows: Rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip(b" \t\r"):
            continue
        try:
            value = json.loads(line.decode("utf-8"), parse_constant=_refuse, parse_float=_number,
                               parse_int=_integer, object_pairs_hook=_once)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
        if type(value) is not dict or not _plain(value):
            return None
        rows.append((number, value))
    return rows


_JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
                     | st.text(max_size=6), lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)


#: Lines orjson reads without a word but loosely: a key twice (the last wins) and integers past 64 bits.
_LOOSE_FOR_ORJSON = [b'{"a":1,"a":2}', b'{"a" :1, "a":2}', b'{"a":"1:2","b":"3:4","a":3}', b'{"a":"\\u003a","a":1}',
                     b'{"x":{"k":1,"k":2}}', b'{"x":[{"k":1},{"k":2,"k":3}]}', b'{"e\\u0061":1,"ea":2}',
                     b'{"id":123456789012345678901234}', b'{"id":-9223372036854775809}',
                     b'{"id":[18446744073709551616]}',
                     b'{"t":"10:00:00","u":"http://x","k:y":{"a:b":"c"}}', b'{"id":9223372036854775807}']


@st.composite
def _jsonl_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "good", "good", "mutated", "mutated"]))
    if kind == "random":
        return draw(st.binary(max_size=200))
    lines = []
    objects = st.dictionaries(st.text(max_size=4), _JSON, max_size=3)
    for value in draw(st.lists(objects | objects | objects | objects | _JSON
                               | st.sampled_from([b"", b"  ", b"\t\r", b"\x0c", b"{", b'{"a":1', b"NaN",
                                                  b'"\\ud800"', b'{"a":"\\udc00"}', b"\xef\xbb\xbf{}"])
                               | st.sampled_from(_LOOSE_FOR_ORJSON),
                               max_size=draw(st.sampled_from([3, 10])))):
        lines.append(value if isinstance(value, bytes) else json.dumps(value, ensure_ascii=draw(st.booleans()))
                     .encode())
    data = bytearray(draw(st.sampled_from([b"\n", b"\r\n"])).join(lines))
    if draw(st.booleans()):
        data += b"\n"
    if draw(st.booleans()):
        data[:0] = b"\xef\xbb\xbf"
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data)))
            what = draw(st.sampled_from([b'"', b"{", b"}", b"\n", b",", b"\xff", b"\xc3", b"", b"1", b" "]))
            data[at:at + draw(st.integers(0, 2))] = what
    return bytes(data)


@fuzz(400)
@given(data=_jsonl_bytes(), short_reads=st.integers(1, 64), page_size=st.integers(1, 5))
@example(data=b'{"a":1}\n{"a":\n{"a":2}\n', short_reads=64, page_size=5)  # the lenient reader skipped line 2
@example(data=b'{"a":1}\n[1]\n', short_reads=64, page_size=5)
def test_jsonl_reader_yields_exactly_the_strict_rows_or_raises(data: bytes, short_reads: int,
                                                              page_size: int) -> None:
    expected = reference_jsonl(data)
    got = _read(jsonl_pages, data, short_reads, page_size)
    event("rejected" if expected is None else "read")
    assert got == expected
