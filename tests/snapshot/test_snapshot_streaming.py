"""Streaming: reading a large gzip snapshot page by page keeps memory far below its size.

A memory bound, not a timing assertion: tracemalloc's peak while the whole file is read must stay
at about one read chunk plus one page, whatever the file's size.
"""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import pytest

from worker.snapshot import read_pages

ROWS = 200_000


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A 200k-row .jsonl.gz and its decompressed size."""
    path = tmp_path_factory.mktemp("big") / "seg.jsonl.gz"
    size = 0
    with gzip.open(path, "wb", compresslevel=1) as out:
        for start in range(0, ROWS, 20_000):
            block = b"".join(
                b'{"email":"user%d@example.com","first_name":"Ada","last_name":"Lovelace","tier":"gold",'
                b'"note":"%s"}\n' % (i, b"n" * 60)
                for i in range(start, start + 20_000)
            )
            size += len(block)
            out.write(block)
    return path, size


@pytest.mark.slow  # about 3 s: tracemalloc slows every allocation of the 200k rows
def test_peak_memory_stays_far_below_the_decompressed_size(big_snapshot: tuple[Path, int]) -> None:
    path, decompressed = big_snapshot
    tracemalloc.start()
    try:
        rows = 0
        last = 0
        for page in read_pages(str(path), page_size=1000):
            rows += len(page.rows)
            last = page.rows[-1][0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == ROWS and last == ROWS
    assert decompressed > 30_000_000
    # About 3 MB (a 256 KiB chunk parsed, plus one page) against 32 MB of JSON.
    assert peak < decompressed / 5, f"peak {peak:,} B for {decompressed:,} B of data"
