"""Print how many profiles per second the snapshot reader parses: jsonl, jsonl.gz and csv.

Usage: python bench/snapshot_read_bench.py [--profiles N] [--page-size N]

Why: the engine's read-map-validate-diff pipeline targets 100,000 profiles/s on one core, so the
reader alone must stay well above that. A figure, not a test: no assertion on timing.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import tempfile
import time
from pathlib import Path

import orjson

from worker.snapshot import read_pages

FIELDS = ("EmailAddress", "FirstName", "LastName", "Phone", "LoyaltyTier", "CustomerId")


def profile(i: int) -> dict[str, str]:
    """A small profile, like those in a segment export."""
    return dict(zip(FIELDS, (f"user{i}@example.com", "Ada", f"Lovelace{i % 97}", f"+4420794{i:06d}",
                             ("gold", "silver", "bronze")[i % 3], f"c-{i:08d}"), strict=True))


def write_files(folder: Path, count: int) -> list[Path]:
    """The same profiles as .jsonl, .jsonl.gz and .csv."""
    jsonl, jsonl_gz, csv_path = folder / "p.jsonl", folder / "p.jsonl.gz", folder / "p.csv"
    with open(jsonl, "wb") as plain, gzip.open(jsonl_gz, "wb", compresslevel=6) as packed:
        for start in range(0, count, 10_000):
            stop = min(start + 10_000, count)
            block = b"".join(orjson.dumps(profile(i)) + b"\n" for i in range(start, stop))
            plain.write(block)
            packed.write(block)
    with open(csv_path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        writer.writerows(profile(i).values() for i in range(count))
    return [jsonl, jsonl_gz, csv_path]


def rows_per_second(path: Path, page_size: int, repeat: int = 3) -> tuple[int, float]:
    """Rows read and the best rate of ``repeat`` full reads (the machine may be busy)."""
    best = 0.0
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = sum(len(page.rows) for page in read_pages(str(path), page_size=page_size))
        best = max(best, rows / (time.perf_counter() - started))
    return rows, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--page-size", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for path in write_files(Path(tmp), args.profiles):
            rows, rate = rows_per_second(path, args.page_size)
            size = path.stat().st_size / 1e6
            print(f"{path.name:12} {rows:>9,} rows  {size:7.1f} MB  {rate:>11,.0f} rows/s")


if __name__ == "__main__":
    main()
