"""gzip parts: by suffix, by argument or by magic bytes; not-gzip, truncated and corrupt data fail clearly."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import pytest
from snapshot_support import jsonl_bytes, read_all, rows_of

from worker.snapshot import SnapshotError, read_pages

PROFILES = [{"email": f"u{i}@x.io"} for i in range(3)]


def emails(pages: list) -> list[str]:
    return [row["email"] for _, _, row in rows_of(pages)]


def test_gzip_by_suffix(write: Callable[..., Path]) -> None:
    assert emails(read_all(str(write("seg.jsonl.gz", jsonl_bytes(PROFILES), gzip_it=True)))) == [
        "u0@x.io", "u1@x.io", "u2@x.io"]
    csv_gz = write("seg.csv.gz", b"email\nu0@x.io\n", gzip_it=True)
    assert rows_of(read_all(str(csv_gz))) == [(csv_gz.as_uri(), 2, {"email": "u0@x.io"})]


def test_gzip_by_argument(write: Callable[..., Path]) -> None:
    path = write("export.data", jsonl_bytes(PROFILES), gzip_it=True)
    assert len(emails(read_all(str(path), format="jsonl", compression="gzip"))) == 3


def test_gzip_data_without_the_suffix_is_recognised(write: Callable[..., Path]) -> None:
    path = write("seg.jsonl", jsonl_bytes(PROFILES), gzip_it=True)
    assert len(emails(read_all(str(path)))) == 3
    with pytest.raises(SnapshotError, match="is gzip-compressed but compression='none'"):
        read_all(str(path), compression="none")


def test_concatenated_gzip_members_are_one_stream(write: Callable[..., Path]) -> None:
    data = gzip.compress(jsonl_bytes(PROFILES[:2])) + gzip.compress(jsonl_bytes(PROFILES[2:]))
    pages = read_all(str(write("seg.jsonl.gz", data)))
    assert [line for _, line, _ in rows_of(pages)] == [1, 2, 3]


@pytest.mark.parametrize(("name", "kwargs"), [("seg.jsonl.gz", {}), ("seg.jsonl", {"compression": "gzip"})])
def test_not_gzip(write: Callable[..., Path], name: str, kwargs: dict) -> None:
    path = write(name, jsonl_bytes(PROFILES))
    with pytest.raises(SnapshotError, match=r"is not gzip .*compression='none'") as caught:
        read_all(str(path), **kwargs)
    assert path.as_uri() in str(caught.value)


def test_an_empty_gz_file_is_a_part_cut_short(write: Callable[..., Path]) -> None:
    """0 bytes is not gzip (no header, no end marker): an upload cut short, never "no rows"."""
    with pytest.raises(SnapshotError, match=r"seg\.jsonl\.gz is empty \(0 bytes\)"):
        read_all(str(write("seg.jsonl.gz", b"")))


def test_a_whole_gzip_stream_of_nothing_has_no_rows(write: Callable[..., Path]) -> None:
    assert read_all(str(write("seg.jsonl.gz", b"", gzip_it=True))) == []


def big_gzip(rows: int) -> bytes:
    return gzip.compress(b"".join(b'{"email":"user%d@example.com","pad":"%s"}\n' % (i, b"x" * 40)
                                  for i in range(rows)), compresslevel=1)


def test_truncated_gzip_fails_from_the_iterator_after_earlier_pages(write: Callable[..., Path]) -> None:
    data = big_gzip(60_000)
    path = write("seg.jsonl.gz", data[: len(data) // 2])
    pages = read_pages(str(path), page_size=1000)
    got = []
    with pytest.raises(SnapshotError, match=r"is truncated.*re-export"):
        for page in pages:
            got.append(page)
    assert got, "pages before the cut are delivered (streaming), then the error"


def test_corrupt_gzip_fails(write: Callable[..., Path]) -> None:
    data = bytearray(big_gzip(5_000))
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    with pytest.raises(SnapshotError, match=r"seg\.jsonl\.gz (is corrupt gzip|is truncated|is not JSON Lines)"):
        read_all(str(write("seg.jsonl.gz", bytes(data))))


def test_crc_mismatch_fails(write: Callable[..., Path]) -> None:
    data = bytearray(gzip.compress(jsonl_bytes(PROFILES)))
    data[-8] ^= 0xFF  # the CRC32 of the trailer
    with pytest.raises(SnapshotError, match="corrupt gzip"):
        read_all(str(write("seg.jsonl.gz", bytes(data))))
