"""A folder of parts: part files in name order, markers and hidden files skipped, lines counted per part."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from snapshot_support import jsonl_bytes, read_all, rows_of

from worker.snapshot import SnapshotError


def test_parts_are_read_in_name_order_with_line_numbers_per_part(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    part2 = write("seg/part-0002.jsonl.gz", jsonl_bytes([{"n": 5}, {"n": 6}]), gzip_it=True)
    part0 = write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}, {"n": 2}]))
    part1 = write("seg/part-0001.csv", b"n\n3\n\n4\n")
    write("seg/_SUCCESS", b"")
    write("seg/.part-0003.jsonl.crc", b"junk")
    write("seg/.part-0003.jsonl", b"junk")
    write("seg/README.txt", b"not a part")
    write("seg/nested/part-0009.jsonl", jsonl_bytes([{"n": 99}]))
    pages = read_all(str(tmp_path / "seg"), page_size=100)
    assert [page.source for page in pages] == [part0.as_uri(), part1.as_uri(), part2.as_uri()]
    assert rows_of(pages) == [
        (part0.as_uri(), 1, {"n": 1}),
        (part0.as_uri(), 2, {"n": 2}),
        (part1.as_uri(), 2, {"n": "3"}),
        (part1.as_uri(), 4, {"n": "4"}),
        (part2.as_uri(), 1, {"n": 5}),
        (part2.as_uri(), 2, {"n": 6}),
    ]


def test_a_page_never_spans_two_parts(write: Callable[..., Path], tmp_path: Path) -> None:
    for i in range(3):
        write(f"seg/part-{i}.ndjson", jsonl_bytes([{"i": i, "j": j} for j in range(5)]))
    pages = read_all((tmp_path / "seg").as_uri(), page_size=4)
    assert [(Path(p.source).name, len(p.rows)) for p in pages] == [
        ("part-0.ndjson", 4), ("part-0.ndjson", 1), ("part-1.ndjson", 4), ("part-1.ndjson", 1),
        ("part-2.ndjson", 4), ("part-2.ndjson", 1),
    ]


def test_format_argument_applies_to_every_part(write: Callable[..., Path], tmp_path: Path) -> None:
    write("seg/a.csv", b'{"x":1}\n')
    write("seg/b.jsonl", b'{"x":2}\n')
    pages = read_all(str(tmp_path / "seg"), format="jsonl")
    assert [row for _, _, row in rows_of(pages)] == [{"x": 1}, {"x": 2}]


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "seg").mkdir()
    with pytest.raises(SnapshotError, match=r"snapshot not found: file://.*/seg has no part files"):
        read_all(str(tmp_path / "seg"))


def test_a_folder_of_markers_and_other_files_is_an_error_naming_them(
    write: Callable[..., Path], tmp_path: Path
) -> None:
    write("seg/_SUCCESS", b"")
    write("seg/part-00000", b'{"a":1}\n')
    with pytest.raises(SnapshotError, match=r"it holds part-00000 \(parts must end in .jsonl"):
        read_all(str(tmp_path / "seg"))


def test_a_part_that_links_outside_the_folder_is_refused(write: Callable[..., Path], tmp_path: Path) -> None:
    """Issue 19 (defect 5): a link inside the snapshot folder made the worker read any file it could."""
    secret = write("elsewhere/secret.jsonl", jsonl_bytes([{"email": "ceo@example.com"}]))
    write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    (tmp_path / "seg" / "part-0001.jsonl").symlink_to(secret)
    with pytest.raises(SnapshotError, match=r"part part-0001.jsonl is a symbolic link to file://.*/elsewhere/secret"
                                            r"\.jsonl, outside the snapshot's folder"):
        read_all(str(tmp_path / "seg"))


def test_a_link_to_a_folder_outside_is_refused_too(write: Callable[..., Path], tmp_path: Path) -> None:
    write("elsewhere/part-0.jsonl", jsonl_bytes([{"n": 1}]))
    write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    (tmp_path / "seg" / "x.jsonl").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(SnapshotError, match="outside the snapshot's folder"):
        read_all(str(tmp_path / "seg"))


def test_a_link_inside_the_folder_is_read_from_where_it_points(write: Callable[..., Path], tmp_path: Path) -> None:
    real = write("seg/data/real.jsonl", jsonl_bytes([{"n": 2}]))
    write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    (tmp_path / "seg" / "part-0001.jsonl").symlink_to(real)
    assert rows_of(read_all(str(tmp_path / "seg"))) == [
        ((tmp_path / "seg" / "part-0000.jsonl").as_uri(), 1, {"n": 1}), (real.as_uri(), 1, {"n": 2})]


def test_the_snapshot_location_itself_is_resolved(write: Callable[..., Path], tmp_path: Path) -> None:
    real = write("real/seg.jsonl", jsonl_bytes([{"n": 1}]))
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert [p.source for p in read_all(str(tmp_path / "link" / "seg.jsonl"))] == [real.as_uri()]


def test_a_part_that_becomes_a_link_after_the_listing_is_not_followed(
        write: Callable[..., Path], tmp_path: Path) -> None:
    from worker.snapshot import read_pages

    write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    secret = write("elsewhere/secret.jsonl", jsonl_bytes([{"email": "ceo@example.com"}]))
    pages = read_pages(str(tmp_path / "seg"))  # listed now, read later
    (tmp_path / "seg" / "part-0000.jsonl").unlink()
    (tmp_path / "seg" / "part-0000.jsonl").symlink_to(secret)
    with pytest.raises(SnapshotError, match="became a symbolic link after it was listed"):
        list(pages)
