"""CSV shapes real exports have, read from real files (issue 19 review, defect 4).

Quoted values holding line breaks (also where one straddles the reader's 1 MiB block), a last line
without a line break, empty part files in a folder (refused: a part cut short), and the line an error
names after all of these.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from snapshot_support import read_all, rows_of

from worker.snapshot import SnapshotError, read_pages, with_column
from worker.snapshot.csv_pages import _BUFFER, csv_pages


@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_quoted_line_breaks_across_the_block_boundary_keep_rows_and_line_numbers(
        write: Callable[..., Path], end: str) -> None:
    """The reader cuts its 1 MiB blocks after a line break: here the last one in the first block is inside
    a quoted value, so the value's lines come from two blocks."""
    head = f"email,note{end}"
    line = f"f0000000@x.io,plain{end}"
    count = (_BUFFER - len(head) - 40) // len(line)
    filler = "".join(f"f{i:07d}@x.io,plain{end}" for i in range(count))
    pad = "p@x.io," + "x" * (_BUFFER - 30 - len(head) - len(filler)) + end  # the quoted row starts 23 bytes before
    note = f"first{end}second{end}third"
    body = head + filler + pad + f'm@x.io,"{note}"{end}' + f"z@x.io,after{end}"
    data = body.encode()
    first_break = len((head + filler + pad).encode()) + len('m@x.io,"first')
    assert first_break < _BUFFER < first_break + len(f"{end}second{end}third")  # a break inside, then the cut
    rows = rows_of(read_all(str(write("seg.csv", data))))
    start = 1 + (head + filler + pad).count(end)  # the physical line the quoted row starts on
    assert rows[-2][1:] == (start, {"email": "m@x.io", "note": note})
    assert rows[-1][1:] == (start + 3, {"email": "z@x.io", "note": "after"})
    assert len(rows) == count + 3


@pytest.mark.parametrize("gzip_it", [False, True])
@pytest.mark.parametrize("data", [b"email,name\na@x.io,A\nb@x.io,B", b'email,name\r\na@x.io,A\r\nb@x.io,"B\r\nC"'])
def test_a_last_line_without_a_line_break_is_read(write: Callable[..., Path], data: bytes, gzip_it: bool) -> None:
    path = write("seg.csv.gz" if gzip_it else "seg.csv", data, gzip_it=gzip_it)
    assert [(line, row["email"]) for _, line, row in rows_of(read_all(str(path)))] == [(2, "a@x.io"), (3, "b@x.io")]


def test_parts_without_rows_but_whole_are_read_as_no_rows(write: Callable[..., Path], tmp_path: Path) -> None:
    write("seg/part-0001.csv", b"email\na@x.io\n")
    write("seg/part-0002.csv", b"email\n")                       # header only
    write("seg/part-0003.csv.gz", b"email\n", gzip_it=True)      # header only, gzip
    write("seg/part-0004.jsonl.gz", b"", gzip_it=True)            # a whole gzip stream of no lines
    write("seg/part-0005.csv", b"email\r\nb@x.io")
    pages = list(with_column(read_pages(str(tmp_path / "seg")), "email", "exports.x.mapping.email"))
    assert [(source.rsplit("/", 1)[1], line, row) for source, line, row in rows_of(pages)] == [
        ("part-0001.csv", 2, {"email": "a@x.io"}), ("part-0005.csv", 2, {"email": "b@x.io"})]


@pytest.mark.parametrize(("name", "data", "gzip_it", "message"), [
    ("part-0001.csv", b"", False, r"part-0001\.csv is empty \(0 bytes\): a part cut short\?"),
    ("part-0001.csv.gz", b"", False, r"part-0001\.csv\.gz is empty \(0 bytes\)"),
    ("part-0001.jsonl", b"", False, r"part-0001\.jsonl is empty \(0 bytes\)"),
    ("part-0001.jsonl.gz", b"", False, r"part-0001\.jsonl\.gz is empty \(0 bytes\)"),
    ("part-0001.csv.gz", b"", True, r"part-0001\.csv\.gz is empty: no header row; a part cut short\?"),
    ("part-0001.csv", b"\n\r\n", False, r"part-0001\.csv is empty: no header row"),
])
def test_an_empty_part_fails_the_snapshot_instead_of_reading_as_no_rows(
        write: Callable[..., Path], tmp_path: Path, name: str, data: bytes, gzip_it: bool, message: str) -> None:
    """A part cut short at 0 bytes read as "no rows" would unsubscribe every member it held (issue 19, 3rd review)."""
    write("seg/part-0000.csv", b"email\na@x.io\n")
    write(f"seg/{name}", data, gzip_it=gzip_it)
    with pytest.raises(SnapshotError, match=message):
        list(read_pages(str(tmp_path / "seg")))


def test_an_empty_parquet_part_fails_the_snapshot(write: Callable[..., Path], tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    write("seg/part-0000.parquet", b"")
    with pytest.raises(SnapshotError, match=r"part-0000\.parquet is empty \(0 bytes\)|not a readable Parquet file"):
        list(read_pages(str(tmp_path / "seg")))


@pytest.mark.parametrize(("data", "message"), [
    (b'email,note\na@x.io,"x\ny\nz"\nb@x.io,ok\nc@x.io,bad,extra\n', "line 6 has 3 fields"),
    (b'email,note\r\na@x.io,"x\r\ny"\r\n\r\nb@x.io,ok\r\nc@x.io,\xff\r\n', "line 6 holds an invalid byte"),
    (b'email,note\na@x.io,"x\ny"\nb@x.io,"open\nc@x.io,z\n',
     "the row starting on line 4 \\(read to line 5\\) opens a quoted value"),
    (b'email,note\na@x.io,"x\ny"\nb@x.io,"q"x\n', "line 4 has text after a closing quote"),
    (b'email,note\na@x.io,"x\ny"\nb@x.io,ok\nc@x.io,bad,extra', "line 5 has 3 fields"),  # no final newline
])
def test_errors_name_the_physical_line_after_multi_line_values(
        write: Callable[..., Path], data: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        read_all(str(write("seg.csv", data)))
    with pytest.raises(SnapshotError, match=message):  # the same line through gzip
        read_all(str(write("seg.csv.gz", gzip.decompress(gzip.compress(data)), gzip_it=True)))


_LAST = {80: '"O', 95: 'Smith"'}


@pytest.mark.parametrize(("data", "message"), [
    # the third review's rows: u80's "O'Brien opens a quote, u95's Smith" closes it; 14 rows in between
    ("e,f,l,p\n" + "".join(f"u{i}@x.io,F{i},{_LAST.get(i, 'L')},{i}\n" for i in range(100)),
     "line 83 is inside a quoted value that starts on line 82 and reads as a row of its own"),
    ('e,f,l,p\nu1@x.io,F,"O,1\nu2@x.io,F,L",2\nu3@x.io,F,L,3\n',
     "line 3 is inside a quoted value that starts on line 2"),
    ('f,l,e\nF,"O\nG,L,u2@x.io",u1@x.io\n', "line 3 is inside"),           # the email in the last column
    ('e,note\na@x.io,"x\ny"\nb@x.io,"call\n ""c@x.io"" ,later"\n',
     "line 5 is inside a quoted value that starts on line 4"),
    ('e;note\na@x.io;"x\nb@x.io;y"\n', "line 3 is inside"),             # another delimiter
])
def test_a_line_inside_a_quoted_value_that_reads_as_a_row_fails_the_part(
        write: Callable[..., Path], data: str, message: str) -> None:
    """Two stray quotes make the lines between them one well-formed value: without this rule the strict parser
    reads the part "whole" and the swallowed members are unsubscribed (issue 19, third review)."""
    delimiter = ";" if data.startswith("e;") else ","
    with pytest.raises(SnapshotError, match=r"seg\.csv is not well-formed CSV: " + message + ".*two stray quotes"):
        list(csv_pages(io.BytesIO(data.encode()), "file:///s/seg.csv", 10, delimiter=delimiter))
    assert "x.io" not in message  # the message names lines, never an email


@pytest.mark.parametrize("note", ["12 Main St\nApt 4\nSpringfield, IL 62704\nUSA", "line one\r\nline two",
                                  "mail a@x.io\nor call", "Call me: a @ x.io\n\n\nthanks,\nA"])
def test_multi_line_values_without_an_email_on_a_later_line_are_read(note: str) -> None:
    data = f'email,note\na@x.io,"{note}"\nb@x.io,ok\n'.encode()
    rows = [row for page in csv_pages(io.BytesIO(data), "s", 10) for row in page.rows]
    breaks = len(re.findall(r"\r\n|\r|\n", note))
    assert rows == [(2, {"email": "a@x.io", "note": note}), (3 + breaks, {"email": "b@x.io", "note": "ok"})]
