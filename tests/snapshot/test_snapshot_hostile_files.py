"""Hostile files a parser chokes on (issue 19, third review): each fails the part once with SnapshotError.

Before, a Parquet file with the mapped column twice raised KeyError and a JSON Lines line nested 1,000
deep (with a long number, so the exact second parse ran) raised RecursionError: not SnapshotError, so the
worker took them for its own fault, retried the delivery with backoff and dead-lettered it, and no
``export.failed`` was ever published. A tiny dictionary-encoded Parquet file could take the worker's
memory (page_size rows of one 100 KB value), and an out-of-range timestamp was sent as junk text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.snapshot import SnapshotError, read_pages

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _rows(path: Path, **kwargs: object) -> list[tuple[int, dict]]:
    return [row for page in read_pages(path.as_uri(), **kwargs) for row in page.rows]  # type: ignore[arg-type]


def test_a_parquet_column_named_twice_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a@x.io"]), pa.array(["b@x.io"])], names=["email", "email"]), path)
    with pytest.raises(SnapshotError, match=r"dup\.parquet has the column 'email' twice \(rename one\)"):
        _rows(path, columns=["email"])


def test_json_nested_too_deep_for_the_exact_parse_fails_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    deep = b'{"email":"b@x.io","n":1234567890123456789012,"x":' + b"[" * 1000 + b"]" * 1000 + b"}\n"
    path.write_bytes(b'{"email":"a@x.io"}\n' + deep)
    with pytest.raises(SnapshotError, match=r"deep\.jsonl is not JSON Lines of profiles: line 2 nests objects or "
                                            r"arrays too deep"):
        _rows(path)

