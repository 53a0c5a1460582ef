"""snapshot_identity: equal for the same content listing, different when a part changes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from worker.snapshot import SnapshotError, snapshot_identity


def test_file_identity_follows_name_size_and_mtime(write: Callable[..., Path]) -> None:
    path = write("seg.jsonl", b'{"a":1}\n')
    first = snapshot_identity(str(path))
    assert snapshot_identity(path.as_uri()) == first
    path.write_bytes(b'{"a":12}\n')
    assert snapshot_identity(str(path)) != first
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert snapshot_identity(str(path)) not in (first, snapshot_identity.__name__)


def test_folder_identity_covers_every_part(write: Callable[..., Path], tmp_path: Path) -> None:
    write("seg/part-0.jsonl", b"{}\n")
    first = snapshot_identity(str(tmp_path / "seg"))
    write("seg/_SUCCESS", b"")
    assert snapshot_identity(str(tmp_path / "seg")) == first  # markers are not content
    write("seg/part-1.jsonl", b"{}\n")
    assert snapshot_identity(str(tmp_path / "seg")) != first


def test_missing_snapshot_has_no_identity(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="snapshot not found"):
        snapshot_identity(str(tmp_path / "gone.jsonl"))
