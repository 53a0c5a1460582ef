"""Local parts are re-admitted when opened: no link anywhere on the path, only the regular file listed.

Issue 19 review, defects 1 and 2: real files, FIFOs and links in a temporary folder. Before the fix a
FIFO named like a part hung the worker at the open, a folder above the part swapped for a link after the
listing was followed, and a part replaced by another file after the listing was read.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from snapshot_support import jsonl_bytes, read_all

from worker.snapshot import SnapshotError, SnapshotRules, read_pages

SECRET = [{"email": "ceo@example.com"}]


def _read_with_deadline(uri: str | Callable[[], object], seconds: float = 30.0) -> BaseException | None:
    """Read the snapshot (or call ``uri``) in a thread; the error raised (None: it read). A FIFO must not hang it."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            uri() if callable(uri) else read_all(uri)
            outcome.append(None)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "reading the snapshot hung (a FIFO was opened for reading)"
    return outcome[0]


def test_a_fifo_as_the_snapshot_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "members.jsonl"
    os.mkfifo(fifo)
    error = _read_with_deadline(str(fifo))
    assert isinstance(error, SnapshotError) and "a FIFO (named pipe), not a regular file" in str(error)


def test_a_fifo_named_like_a_part_fails_the_folder_instead_of_being_skipped(
        write: Callable[..., Path], tmp_path: Path) -> None:
    write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    os.mkfifo(tmp_path / "seg" / "part-0001.jsonl")
    error = _read_with_deadline(str(tmp_path / "seg"))
    assert isinstance(error, SnapshotError) and "part-0001.jsonl is a FIFO" in str(error)


def test_a_device_is_not_a_snapshot() -> None:
    with pytest.raises(SnapshotError, match="is a character device, not a regular file"):
        read_all("/dev/zero")


def test_a_folder_named_like_a_part_fails_the_folder(write: Callable[..., Path], tmp_path: Path) -> None:
    write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    (tmp_path / "seg" / "part-0001.jsonl").mkdir()
    with pytest.raises(SnapshotError, match=r"part-0001\.jsonl is a folder, not a regular file"):
        read_all(str(tmp_path / "seg"))


def test_a_part_swapped_for_a_fifo_after_the_listing_is_refused_without_blocking(
        write: Callable[..., Path], tmp_path: Path) -> None:
    part = write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    pages = read_pages(str(tmp_path / "seg"))  # listed now, opened later
    part.unlink()
    os.mkfifo(part)
    error = _read_with_deadline(lambda: list(pages))
    assert isinstance(error, SnapshotError) and "FIFO (named pipe) now, not a regular file" in str(error)


def test_a_folder_above_the_part_swapped_for_a_link_after_the_listing_is_not_followed(
        write: Callable[..., Path], tmp_path: Path) -> None:
    write("data/seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    write("elsewhere/seg/part-0000.jsonl", jsonl_bytes(SECRET))
    pages = read_pages(str(tmp_path / "data" / "seg"))
    (tmp_path / "data").rename(tmp_path / "data.old")
    (tmp_path / "data").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(SnapshotError, match="became a symbolic link after it was listed") as caught:
        list(pages)
    assert "ceo" not in str(caught.value)


def test_a_part_replaced_by_another_file_after_the_listing_is_not_read(
        write: Callable[..., Path], tmp_path: Path) -> None:
    part = write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    pages = read_pages(str(tmp_path / "seg"))
    other = write("staging/other.jsonl", jsonl_bytes(SECRET))
    other.rename(part)  # another inode at the listed name: the check-then-open gap
    with pytest.raises(SnapshotError, match="was replaced by another file after it was listed"):
        list(pages)


def test_a_part_replaced_by_a_link_inside_the_folder_after_the_listing_is_refused(
        write: Callable[..., Path], tmp_path: Path) -> None:
    """A link inside the folder is admitted at the listing; one that appears after it is not."""
    part = write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}]))
    inside = write("seg/_staged.jsonl", jsonl_bytes(SECRET))
    pages = read_pages(str(tmp_path / "seg"))
    part.unlink()
    part.symlink_to(inside)
    with pytest.raises(SnapshotError, match="became a symbolic link after it was listed"):
        list(pages)


def test_a_regular_part_in_place_still_reads(write: Callable[..., Path], tmp_path: Path) -> None:
    write("seg/part-0000.jsonl", jsonl_bytes([{"n": 1}, {"n": 2}]))
    assert [row for page in read_all(str(tmp_path / "seg")) for _, row in page.rows] == [{"n": 1}, {"n": 2}]


def test_an_admitted_location_is_read_exactly_or_not_at_all(write: Callable[..., Path], tmp_path: Path) -> None:
    """The service admits an event's location (canonical, inside the prefix), the run reads it later: a
    folder on its path swapped for a link in between must not move the read elsewhere."""
    from worker.locations import Prefixes

    write("allowed/vip/seg.jsonl", jsonl_bytes([{"n": 1}]))
    write("outside/vip/seg.jsonl", jsonl_bytes(SECRET))
    admitted = Prefixes.parse([str(tmp_path / "allowed")]).admit(str(tmp_path / "allowed" / "vip" / "seg.jsonl"))
    assert [r for p in read_pages(admitted.uri, rules=SnapshotRules(exact=True)) for _, r in p.rows] == [{"n": 1}]
    (tmp_path / "allowed" / "vip").rename(tmp_path / "allowed" / "vip.old")
    (tmp_path / "allowed" / "vip").symlink_to(tmp_path / "outside" / "vip", target_is_directory=True)
    with pytest.raises(SnapshotError, match="now leads elsewhere") as caught:
        read_pages(admitted.uri, rules=SnapshotRules(exact=True))
    assert "ceo" not in str(caught.value)
    # an operator's own path (``segment-export sync``) is still resolved: the snapshot is where the bytes are
    assert [r for p in read_pages(admitted.uri) for _, r in p.rows] == SECRET
