"""Parquet snapshots written by pyarrow, on disk and on moto's S3: types, mapped columns only, ranged reads."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from snapshot_support import read_all, rows_of

from worker.snapshot import SnapshotError, read_pages

pa = pytest.importorskip("pyarrow")  # in the test extra: skipped only where it is absent
pq = pytest.importorskip("pyarrow.parquet")



def typed_table() -> Any:
    return pa.table({
        "email": ["a@x.io", "b@x.io", None],
        "visits": pa.array([1, None, 3], pa.int64()),
        "birthday": pa.array([dt.date(2024, 6, 1), None, dt.date(1999, 12, 31)], pa.date32()),
        "seen": pa.array([dt.datetime(2024, 6, 1, 12, 30, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                          None, None], pa.timestamp("us", tz="+02:00")),
        "spark_ts": pa.array([dt.datetime(2024, 6, 1, 12, 30), None, None], pa.timestamp("ns")),
        "balance": pa.array([decimal.Decimal("1.50"), None, None], pa.decimal128(5, 2)),
        "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
        "tier": pa.array(["gold", "silver", "gold"]).dictionary_encode(),
        "address": pa.array([{"city": "Oslo"}, None, None]),
    })


MAPPED = {"email", "visits", "birthday", "seen", "spark_ts", "balance", "tags", "tier"}


def test_types_map_onto_what_the_mapping_converts_and_nulls_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "seg.parquet"
    pq.write_table(typed_table(), path)
    pages = read_all(str(path), columns=MAPPED)
    assert [p.columns for p in pages] == [tuple(typed_table().column_names)]
    assert [(line, row) for _, line, row in rows_of(pages)] == [
        (1, {"email": "a@x.io", "visits": 1, "birthday": "2024-06-01", "seen": "2024-06-01T10:30:05Z",
             "spark_ts": "2024-06-01T12:30:00Z", "balance": "1.50", "tags": ["a", "b"], "tier": "gold"}),
        (2, {"email": "b@x.io", "tags": [], "tier": "silver"}),
        (3, {"visits": 3, "birthday": "1999-12-31", "tier": "gold"}),
    ]


def test_only_the_mapped_columns_are_read(tmp_path: Path) -> None:
    path = tmp_path / "seg.parquet"
    pq.write_table(typed_table(), path)
    rows = [row for _, _, row in rows_of(read_all(str(path), columns={"email", "tags", "not_in_file"}))]
    assert rows == [{"email": "a@x.io", "tags": ["a", "b"]}, {"email": "b@x.io", "tags": []}, {}]


def test_a_mapped_column_no_field_takes_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "seg.parquet"
    pq.write_table(typed_table(), path)
    with pytest.raises(SnapshotError, match=r"column 'address' is of Parquet type struct<city: string>, which no "
                                            r"contact field takes \(map a text"):
        read_all(str(path), columns={"email", "address"})


def test_bytes_that_are_not_utf8_fail_naming_the_column(tmp_path: Path) -> None:
    path = tmp_path / "seg.parquet"
    pq.write_table(pa.table({"email": pa.array([b"a@x.io", b"\xff\xfe"], pa.binary())}), path)
    with pytest.raises(SnapshotError, match=r"column 'email' cannot be read as text .*write it as a string column"):
        read_all(str(path), columns={"email"})


def test_pages_are_bounded_and_rows_numbered_across_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "seg.parquet"
    pq.write_table(pa.table({"email": [f"p{i}@x.io" for i in range(2500)]}), path, row_group_size=700)
    pages = read_all(str(path), columns={"email"}, page_size=1000)
    assert all(len(p.rows) <= 1000 for p in pages)
    assert [(line, row["email"]) for _, line, row in rows_of(pages)] == [
        (i + 1, f"p{i}@x.io") for i in range(2500)]


def test_a_truncated_parquet_file_fails_before_anything_is_read(tmp_path: Path) -> None:
    path = tmp_path / "seg.parquet"
    pq.write_table(pa.table({"email": [f"p{i}@x.io" for i in range(100)]}), path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(SnapshotError, match=r"seg.parquet is not a readable Parquet file: .* re-export the snapshot"):
        read_all(str(path), columns={"email"})


def test_format_parquet_reads_a_file_without_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "0000_part_00"
    pq.write_table(pa.table({"email": ["a@x.io"]}), path)
    assert [row for _, _, row in rows_of(read_all(str(path), format="parquet"))] == [{"email": "a@x.io"}]


@pytest.fixture
def get_ranges(s3: Any) -> Iterator[list[str | None]]:
    """The Range header of every GetObject the worker's S3 client sends (botocore's own event hooks)."""
    from worker.clients.s3 import s3_client

    seen: list[str | None] = []

    def record(request: Any, **_: Any) -> None:
        value = request.headers.get("Range")
        seen.append(value.decode() if isinstance(value, bytes) else value)

    client = s3_client()
    client.meta.events.register("before-send.s3.GetObject", record)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-send.s3.GetObject", record)


def test_from_s3_only_the_mapped_columns_are_fetched_by_ranged_reads(
        s3: Any, s3_bucket: str, tmp_path: Path, get_ranges: list[str | None]) -> None:
    """A wide file (a 4 MiB incompressible column beside the email): the reads are ranged and skip it."""
    n = 20_000
    table = pa.table({"email": [f"p{i}@x.io" for i in range(n)],
                      "blob": [os.urandom(200).hex() for _ in range(n)]})
    path = tmp_path / "seg.parquet"
    pq.write_table(table, path, row_group_size=5000, compression="snappy")
    size = path.stat().st_size
    s3.put_object(Bucket=s3_bucket, Key="vip/part-00000.snappy.parquet", Body=path.read_bytes())
    pages = read_all(f"s3://{s3_bucket}/vip/", columns={"email"}, page_size=1000)
    assert [row["email"] for _, _, row in rows_of(pages)] == [f"p{i}@x.io" for i in range(n)]
    assert get_ranges and all(r is not None and r.startswith("bytes=") for r in get_ranges), get_ranges
    fetched = sum(int(b) - int(a) + 1 for a, b in (str(r).removeprefix("bytes=").split("-") for r in get_ranges))
    assert fetched < size / 3, (fetched, size)


def test_an_object_replaced_while_read_fails_instead_of_mixing_two_files(
        s3: Any, s3_bucket: str, tmp_path: Path) -> None:
    path = tmp_path / "seg.parquet"
    pq.write_table(pa.table({"email": [f"p{i}@x.io" for i in range(100)]}), path)
    s3.put_object(Bucket=s3_bucket, Key="seg.parquet", Body=path.read_bytes())
    pages = read_pages(f"s3://{s3_bucket}/seg.parquet", columns={"email"})  # listed: its ETag is fixed now
    pq.write_table(pa.table({"email": ["other@x.io"]}), path)
    s3.put_object(Bucket=s3_bucket, Key="seg.parquet", Body=path.read_bytes())
    with pytest.raises(SnapshotError, match=r"changed while it was being read"):
        list(pages)


BLOCK_PYARROW = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named " + repr(name))
sys.meta_path.insert(0, Block())
from worker.snapshot import SnapshotError, read_pages
try:
    read_pages(sys.argv[1])
except SnapshotError as exc:
    print(exc)
"""


def test_without_pyarrow_a_parquet_snapshot_fails_naming_the_install_command(tmp_path: Path) -> None:
    path = tmp_path / "seg.parquet"
    pq.write_table(pa.table({"email": ["a@x.io"]}), path)
    out = subprocess.run([sys.executable, "-c", BLOCK_PYARROW, str(path)], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    assert f"snapshot {path.as_uri()} is Parquet, which needs pyarrow: install the extra with " \
           "pip install 'segment-export[parquet]'" in out
