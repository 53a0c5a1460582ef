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
from snapshot_support import errors_of, read_all, rows_of

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


def test_rows_with_the_wrong_width_are_reported_and_reading_goes_on(write: Callable[..., Path]) -> None:
    data = b"a,b\n1,2\n1,2,3\n\n1\n3,4\r\n"
    pages = read_all(str(write("seg.csv", data)))
    assert lines_and_rows(pages) == [(2, {"a": "1", "b": "2"}), (6, {"a": "3", "b": "4"})]
    assert [(line, reason) for _, line, reason in errors_of(pages)] == [
        (3, "expected 2 fields as in the header, got 3"),
        (5, "expected 2 fields as in the header, got 1"),
    ]


def test_bom_crlf_and_spaces_around_header_names(write: Callable[..., Path]) -> None:
    data = "\ufeffemail, name \r\nzoë@x.io, Zoë \r\n".encode()
    pages = read_all(str(write("seg.csv", data)))
    assert lines_and_rows(pages) == [(2, {"email": "zoë@x.io", "name": " Zoë "})]


def test_a_header_only_file_has_no_rows(write: Callable[..., Path]) -> None:
    assert read_all(str(write("seg.csv", b"email,name\n"))) == []
    assert read_all(str(write("empty.csv", b""))) == []


def test_duplicate_column_is_an_error(write: Callable[..., Path]) -> None:
    with pytest.raises(SnapshotError, match="column 'email' twice"):
        read_all(str(write("seg.csv", b"email,name,email\n1,2,3\n")))


def test_not_utf8_is_an_error(write: Callable[..., Path]) -> None:
    with pytest.raises(SnapshotError, match=r"is not UTF-8 \(invalid continuation byte, .*as UTF-8"):
        read_all(str(write("seg.csv", "email,name\na@x.io,Zoë\n".encode("latin-1"))))


def test_csv_errors_from_the_parser_are_row_errors(write: Callable[..., Path]) -> None:
    huge = b"x" * (csv.field_size_limit() + 1)
    pages = read_all(str(write("seg.csv", b"a,b\n1,2\n3," + huge + b"\n5,6\n")))
    assert [line for _, line, _ in errors_of(pages)] == [3]
    assert "malformed CSV" in errors_of(pages)[0][2]
    assert lines_and_rows(pages) == [(2, {"a": "1", "b": "2"}), (4, {"a": "5", "b": "6"})]


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
    assert errors_of(pages) == []
