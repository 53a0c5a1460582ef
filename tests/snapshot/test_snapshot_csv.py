"""CSV parts: header on line 1, every value a string, rows that start on their first physical line."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snapshot_support import read_all, rows_of

from worker.snapshot import SnapshotError


def lines_and_rows(pages: list) -> list[tuple[int, dict]]:
    return [(line, row) for _, line, row in rows_of(pages)]


def test_header_names_the_values(write: Callable[..., Path]) -> None:
    path = write("seg.csv", b"email,first_name,tier\na@x.io,Ada,\nb@x.io,Bob,gold\n")
    pages = read_all(str(path))
    assert pages[0].source == path.as_uri()
    assert lines_and_rows(pages) == [
        (2, {"email": "a@x.io", "first_name": "Ada", "tier": ""}),
        (3, {"email": "b@x.io", "first_name": "Bob", "tier": "gold"}),
    ]


def test_quoted_newlines_keep_the_row_on_its_first_line(write: Callable[..., Path]) -> None:
    data = b'id,note\n1,"two\nlines"\n2,"three\r\nphysical\nlines"\n3,plain\n'
    pages = read_all(str(write("seg.csv", data)))
    assert lines_and_rows(pages) == [
        (2, {"id": "1", "note": "two\nlines"}),
        (4, {"id": "2", "note": "three\r\nphysical\nlines"}),
        (7, {"id": "3", "note": "plain"}),
    ]


def test_blank_lines_are_skipped(write: Callable[..., Path]) -> None:
    pages = read_all(str(write("seg.csv", b"a,b\n1,2\n\n\r\n3,4\r\n")))
    assert lines_and_rows(pages) == [(2, {"a": "1", "b": "2"}), (5, {"a": "3", "b": "4"})]


@pytest.mark.parametrize(("data", "match"), [
    (b"a,b\n1,2\n1,2,3\n3,4\n", r"line 3 has 3 fields where the header has 2 \(a stray delimiter"),
    (b"a,b\n1,2\n\n1\n3,4\n", r"line 4 has 1 fields where the header has 2"),
    (b'a,b\n1,2\n3,"x\n4,5\n6,7\n', r"the row starting on line 3 \(read to line 5\) opens a quoted value"),
    (b'a,b\n1,"x"y\n3,4\n', r"line 2 has text after a closing quote"),
])
def test_a_row_that_is_not_well_formed_fails_the_part(write: Callable[..., Path], data: bytes, match: str) -> None:
    with pytest.raises(SnapshotError, match=r"seg\.csv is not well-formed CSV: " + match):
        read_all(str(write("seg.csv", data)))


def test_bom_crlf_and_spaces_around_header_names(write: Callable[..., Path]) -> None:
    data = "\ufeffemail, name \r\nzoë@x.io, Zoë \r\n".encode()
    pages = read_all(str(write("seg.csv", data)))
    assert lines_and_rows(pages) == [(2, {"email": "zoë@x.io", "name": " Zoë "})]


def test_a_header_only_file_has_no_rows(write: Callable[..., Path]) -> None:
    assert read_all(str(write("seg.csv", b"email,name\n"))) == []
    with pytest.raises(SnapshotError, match=r"empty\.csv is empty \(0 bytes\): a part cut short\?"):
        read_all(str(write("empty.csv", b"")))


def test_duplicate_column_is_an_error(write: Callable[..., Path]) -> None:
    with pytest.raises(SnapshotError, match="column 'email' twice"):
        read_all(str(write("seg.csv", b"email,name,email\n1,2,3\n")))


@pytest.mark.parametrize("before", [0, 1, 7, 30_000])
def test_not_utf8_names_the_line_of_the_bad_byte(write: Callable[..., Path], before: int) -> None:
    """Wherever the byte is (first block, or far past the decoder's first megabyte): its own line."""
    good = b"".join(b"u%d@x.io,Ann\r\n" % i for i in range(before))
    data = b"email,name\r\n" + good + "zoë@x.io,Zoë\n".encode("latin-1") + b"b@x.io,Bob\n"
    with pytest.raises(SnapshotError, match=rf"is not UTF-8: line {before + 2} holds an invalid byte "
                                            r"\(invalid continuation byte\); re-export it as UTF-8"):
        read_all(str(write("seg.csv", data)))


def test_a_value_over_the_field_limit_fails_the_part(write: Callable[..., Path]) -> None:
    huge = b"x" * (csv.field_size_limit() + 1)
    with pytest.raises(SnapshotError, match=r"line 3 holds a value over 131,072 characters, usually an unclosed"):
        read_all(str(write("seg.csv", b"a,b\n1,2\n3," + huge + b"\n5,6\n")))


def test_lines_ending_in_cr_only(write: Callable[..., Path]) -> None:
    pages = read_all(str(write("seg.csv", b"a,b\r1,2\r\r3,\"x\ry\"\r4,5")))
    assert lines_and_rows(pages) == [(2, {"a": "1", "b": "2"}), (4, {"a": "3", "b": "x\ry"}),
                                     (6, {"a": "4", "b": "5"})]


def test_page_size(write: Callable[..., Path]) -> None:
    data = b"i\n" + b"".join(b"%d\n" % i for i in range(10))
    pages = read_all(str(write("seg.csv", data)), page_size=4)
    assert [len(p.rows) for p in pages] == [4, 4, 2]


_value = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_value, _value, _value), max_size=25))
def test_any_values_round_trip_with_their_start_lines(
    tmp_path_factory: pytest.TempPathFactory, records: list[tuple[str, str, str]]
) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["a", "b", "c"])
    starts = []
    for record in records:
        starts.append(len(re.findall(r"\r\n|\r|\n", out.getvalue())) + 1)
        writer.writerow(record)
    path = tmp_path_factory.mktemp("rt") / "seg.csv"
    path.write_bytes(out.getvalue().encode())
    pages = read_all(str(path), page_size=7)
    assert lines_and_rows(pages) == [
        (start, dict(zip("abc", record, strict=True))) for start, record in zip(starts, records, strict=True)
    ]
