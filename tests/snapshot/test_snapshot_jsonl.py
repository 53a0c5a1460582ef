"""JSON Lines parts: rows with their physical line numbers, bad lines reported without stopping."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from snapshot_support import jsonl_bytes, read_all, rows_of

from worker.snapshot import Page, SnapshotError, read_pages
from worker.snapshot.jsonl_pages import MAX_LINE_BYTES, jsonl_pages, line_batches


def test_rows_carry_line_numbers_and_the_part_uri(write: Callable[..., Path]) -> None:
    path = write("seg.jsonl", jsonl_bytes([{"email": "a@x.io"}, {"email": "b@x.io", "n": 2}]))
    pages = read_all(str(path))
    assert pages == [Page(path.as_uri(), [(1, {"email": "a@x.io"}), (2, {"email": "b@x.io", "n": 2})])]


@pytest.mark.parametrize("form", ["plain", "file_uri", "relative"])
def test_uri_forms(write: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    path = write("seg.ndjson", b'{"a":1}\n')
    monkeypatch.chdir(path.parent)
    uri = {"plain": str(path), "file_uri": path.as_uri(), "relative": "seg.ndjson"}[form]
    [page] = read_all(uri)
    assert page.source == path.as_uri()
    assert page.rows == [(1, {"a": 1})]


def test_blank_lines_are_skipped_and_crlf_is_fine(write: Callable[..., Path]) -> None:
    pages = read_all(str(write("seg.jsonl", b'{"a":1}\n\n   \n\t\r\n{"a":2}\r\n{"a":3}')))
    assert [(line, row) for _, line, row in rows_of(pages)] == [(1, {"a": 1}), (5, {"a": 2}), (6, {"a": 3})]


@pytest.mark.parametrize(("data", "match"), [
    (b'{"a":1}\n{"a":\n{"a":2}\n', r"line 2 is not JSON \(unexpected end of data"),
    (b'{"a":1}\n{"a":2}\n{"a":3', r"line 3 is not JSON"),  # a truncated last line
    (b'{"a":1}\n[1,2]\n', r"line 2 is an array, not an object"),
    (b'{"a":1}\n\n"text"\n', r"line 3 is a string, not an object"),
    (b'{"a":1}\nnull\n', r"line 2 is null, not an object"),
    (b'{"a":"\xff"}\n{"a":1}\n', r"line 1 is not JSON \(str is not valid UTF-8"),
    (b'{"a":1}\n\x0c\n', r"line 2 is not JSON"),
])
def test_a_line_that_is_not_an_object_fails_the_part(write: Callable[..., Path], data: bytes, match: str) -> None:
    with pytest.raises(SnapshotError, match=r"seg\.jsonl is not JSON Lines.*: " + match):
        read_all(str(write("seg.jsonl", data)))


def test_utf8_bom_is_ignored(write: Callable[..., Path]) -> None:
    pages = read_all(str(write("seg.jsonl", b'\xef\xbb\xbf{"name":"Zo\xc3\xab"}\n')))
    assert rows_of(pages)[0][1:] == (1, {"name": "Zoë"})


def test_pages_hold_page_size_rows_and_blank_lines_do_not_count(write: Callable[..., Path]) -> None:
    lines = [b'{"i":%d}' % i for i in range(7)]
    lines[2:2] = [b""]
    lines[5:5] = [b"  "]
    pages = read_all(str(write("seg.jsonl", b"\n".join(lines) + b"\n")), page_size=3)
    assert [len(p.rows) for p in pages] == [3, 3, 1]
    assert [row["i"] for _, _, row in rows_of(pages)] == list(range(7))


def test_an_empty_file_is_refused_and_blank_lines_have_no_pages(write: Callable[..., Path]) -> None:
    with pytest.raises(SnapshotError, match=r"seg\.jsonl is empty \(0 bytes\): a part cut short\?"):
        read_all(str(write("seg.jsonl", b"")))
    assert read_all(str(write("blank.jsonl", b"\n\n"))) == []


def test_format_argument_overrides_the_name(write: Callable[..., Path]) -> None:
    path = write("export.txt", b'{"a":1}\n')
    with pytest.raises(SnapshotError, match=r"cannot tell the format .*format='jsonl'"):
        read_pages(str(path))  # at the call, before any reading
    assert rows_of(read_all(str(path), format="jsonl"))[0][1:] == (1, {"a": 1})


def test_bad_arguments(write: Callable[..., Path]) -> None:
    path = str(write("seg.jsonl", b"{}\n"))
    with pytest.raises(SnapshotError, match="unknown snapshot format 'xml'"):
        read_pages(path, format="xml")
    with pytest.raises(SnapshotError, match="unknown snapshot compression 'zstd'"):
        read_pages(path, compression="zstd")
    with pytest.raises(ValueError, match="page_size"):
        read_pages(path, page_size=0)


class _Chunks(io.RawIOBase):
    """A stream that returns at most ``size`` bytes per read, to exercise chunk boundaries."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size = data, size

    def read(self, n: int = -1, /) -> bytes:
        out, self._data = self._data[: self._size], self._data[self._size :]
        return out


@given(st.binary(max_size=300), st.integers(1, 40), st.integers(1, 64))
@example(b"\xef\xbb\xbf{}\n", 1, 64)  # a BOM split over short reads
@example(b"\xef\xbb", 1, 64)  # a file that is only part of a BOM
def test_line_batches_yields_exactly_the_lines(data: bytes, short_reads: int, chunk: int) -> None:
    lines = [line for batch in line_batches(_Chunks(data, short_reads), chunk) for line in batch]
    expected = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if expected[-1] == b"":
        expected.pop()
    assert lines == expected


_profiles = st.lists(
    st.dictionaries(st.text(max_size=5), st.one_of(st.text(max_size=20), st.integers(-(2**62), 2**62),
                                                   st.booleans(), st.none()), max_size=4),
    min_size=1, max_size=40,  # a 0-byte file is a part cut short (test_an_empty_file_is_refused...)
)


@settings(max_examples=60, deadline=None)
@given(_profiles, st.integers(1, 7))
def test_any_profiles_round_trip_in_order(tmp_path_factory: pytest.TempPathFactory,
                                          profiles: list[dict], page_size: int) -> None:
    path = tmp_path_factory.mktemp("rt") / "seg.jsonl"
    path.write_bytes(jsonl_bytes(profiles))
    pages = read_all(str(path), page_size=page_size)
    assert [(line, row) for _, line, row in rows_of(pages)] == list(enumerate(profiles, 1))
    assert all(0 < len(p.rows) <= page_size for p in pages)


@pytest.mark.parametrize(("line", "key"), [
    (b'{"email":"a@x.io","email":"b@x.io"}', "email"),
    (b'{"email" :"a@x.io", "email": "b@x.io"}', "email"),                     # a space before the colon
    (b'{"email":"a@x.io","at":"10:00:00","email":"b@x.io"}', "email"),       # colons in values
    (b'{"email":"a@x.io","em\\u0061il":"b@x.io"}', "email"),                 # the same key, escaped
    (b'{"email":"a@x.io","email":"b@x.io","t":"\\u003a"}', "email"),        # an escaped colon hides one
    (b'{"email":"a@x.io","address":{"city":"A","city":"B"}}', "city"),       # in a nested object
])
@pytest.mark.parametrize("lead", [b'{"email":"ok@x.io"}\n{"n":1}\n', b'{"email":"ok@x.io"}\n\n'])  # fast, slow path
def test_a_key_twice_in_one_object_fails_the_part_naming_line_and_key(
        write: Callable[..., Path], line: bytes, key: str, lead: bytes) -> None:
    """Issue 19 review, defect 10: orjson keeps the last value quietly; which email was meant?"""
    path = write("seg.jsonl", lead + line + b"\n")
    with pytest.raises(SnapshotError, match=f"line 3 has the key '{key}' twice in one object"):
        read_all(str(path))


@pytest.mark.parametrize("number", ["123456789012345678901234", "-9223372036854775809", "18446744073709551616",
                                    "18446744073709551615", "9007199254740993"])
def test_integers_past_64_bits_are_read_exactly(write: Callable[..., Path], number: str) -> None:
    """Issue 19 review, defect 10: orjson made ``123456789012345678901234`` a float (an id rounded)."""
    path = write("seg.jsonl", f'{{"id": {number}, "ids": [{number}], "n": {{"id": {number}}}}}\n'.encode())
    [page] = read_all(str(path))
    [(_, row)] = page.rows
    assert row == {"id": int(number), "ids": [int(number)], "n": {"id": int(number)}}
    assert type(row["id"]) is int and str(row["id"]) == number


def test_colons_escapes_and_nesting_without_a_duplicate_read_as_they_are(write: Callable[..., Path]) -> None:
    rows = [{"t": "10:00:00", "url": "https://x.io/a:b", "k:y": {"a:b": ["c:d", {"e": ":"}]}},
            {"email": "a@x.io", "note": "\\u003a is a colon", "id": 1234567890123456789}]
    path = write("seg.jsonl", b"\n".join(json.dumps(r).encode() for r in rows) + b'\n{"q":"\\u003a"}\n')
    assert [row for page in read_all(str(path)) for _, row in page.rows] == [*rows, {"q": ":"}]


class _Endless(io.RawIOBase):
    """``head``, then ``size`` bytes of 'x' produced as read, never held whole (a gzip bomb's output)."""

    def __init__(self, head: bytes, size: int) -> None:
        super().__init__()
        self._head, self._left = head, size

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            out, self._head = self._head, b""
            return out
        n = min(self._left, 1 << 18 if size < 0 else size)
        self._left -= n
        return b"x" * n


def test_a_line_past_the_bound_fails_naming_it_instead_of_taking_the_memory() -> None:
    """Third review: one endless line (600 KB of gzip, 600 MiB of text) was gathered whole in memory."""
    stream = _Endless(b'{"email":"a@x.io"}\n\n{"email":"b@x.io","name":"', MAX_LINE_BYTES + (1 << 20))
    with pytest.raises(SnapshotError, match=r"s3://b/p\.jsonl is not JSON Lines: line 3 runs past 64 MiB without a "
                                            r"line break"):
        list(jsonl_pages(stream, "s3://b/p.jsonl", 10))
    assert stream._left > 0  # it stopped reading at the bound

