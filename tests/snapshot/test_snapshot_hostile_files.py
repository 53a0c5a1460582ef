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
from worker.snapshot.parquet_bounds import FIELD_LIMIT, PAGE_BYTES

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



@pytest.mark.parametrize("store_schema", [True, False], ids=["arrow-schema", "spark-like"])
def test_a_tiny_dictionary_encoded_file_is_read_in_pages_of_bounded_decoded_size(
        tmp_path: Path, store_schema: bool) -> None:
    """12 KB on disk, 500 MB decoded (5,000 rows of one 100 KB value): pages now hold at most PAGE_BYTES of text."""
    path = tmp_path / "bomb.parquet"
    rows = 5000
    value = "x" * 100_000
    name = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([value]))
    pq.write_table(pa.table({"email": [f"u{i}@x.io" for i in range(rows)], "name": name}), path,
                   compression="zstd", store_schema=store_schema)
    assert path.stat().st_size < 64_000
    pages = list(read_pages(path.as_uri(), columns=["email", "name"]))
    assert [line for page in pages for line, _ in page.rows] == list(range(1, rows + 1))
    assert all(row["name"] == value for page in pages for _, row in page.rows)
    assert max(sum(len(row["name"]) + len(row["email"]) for _, row in page.rows) for page in pages) <= PAGE_BYTES
    assert len(pages) > 1


@pytest.mark.parametrize(("column", "message"), [
    (pa.array(["short", "y" * (FIELD_LIMIT + 1)]), r"column 'name' of row 2 holds a value of 131,073 bytes, over"),
    (pa.array(["short", "y" * (FIELD_LIMIT + 1)]).dictionary_encode(), r"column 'name' of row 2 holds a value"),
    (pa.array([["a"], ["b", "y" * (FIELD_LIMIT + 1)]]), r"column 'name' of row 2 holds a value of 131,073 bytes"),
])
def test_a_single_value_over_the_field_limit_fails_naming_column_and_row(
        tmp_path: Path, column: object, message: str) -> None:
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"email": ["a@x.io", "b@x.io"], "name": column}), path)
    with pytest.raises(SnapshotError, match=r"big\.parquet: " + message):
        _rows(path, columns=["email", "name"])


@pytest.mark.parametrize(("column", "kind"), [
    (pa.array([0, 2**62], pa.timestamp("ms")), "timestamp"),
    (pa.array([0, -(2**62)], pa.timestamp("us", tz="UTC")), "timestamp"),
    (pa.array([0, 2**60], pa.date64()), "date"),
    (pa.array([0, 2**31 - 1], pa.date32()), "date"),
    (pa.array([0, 2**52], pa.timestamp("ms")).dictionary_encode(), "timestamp"),
])
def test_a_timestamp_or_date_outside_years_1_to_9999_fails_naming_column_and_row(
        tmp_path: Path, column: object, kind: str) -> None:
    """Third review: 2**62 ms was sent to ActiveCampaign as '-16443-08-29T1236950581263:36:27Z'."""
    path = tmp_path / "ts.parquet"
    pq.write_table(pa.table({"email": ["a@x.io", "b@x.io"], "seen": column}), path)
    with pytest.raises(SnapshotError, match=rf"ts\.parquet: column 'seen' of row 2 holds a {kind} outside the "
                                            r"years 0001-9999"):
        _rows(path, columns=["email", "seen"])


def test_the_first_and_last_second_of_the_years_1_to_9999_are_read(tmp_path: Path) -> None:
    import datetime as dt

    path = tmp_path / "edge.parquet"
    pq.write_table(pa.table({
        "seen": pa.array([dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59)], pa.timestamp("ms")),
        "day": pa.array([dt.date(1, 1, 1), dt.date(9999, 12, 31)], pa.date32()),
    }), path)
    assert [row for _, row in _rows(path)] == [{"seen": "0001-01-01T00:00:00Z", "day": "0001-01-01"},
                                               {"seen": "9999-12-31T23:59:59Z", "day": "9999-12-31"}]
