"""Unreadable snapshots fail with SnapshotError naming the snapshot, the problem and the fix."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from snapshot_support import as_nobody, jsonl_bytes, read_all

from worker.snapshot import SnapshotError, read_pages
from worker.snapshot.jsonl_pages import jsonl_pages
from worker.snapshot.parts import Part
from worker.snapshot.stream import open_part


def test_missing_file_fails_when_called(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    for uri in (str(missing), missing.as_uri()):
        with pytest.raises(SnapshotError, match=r"snapshot not found: file:///.*nope.jsonl \(check the path"):
            read_pages(uri)


@pytest.mark.parametrize(
    ("uri", "match"),
    [
        ("", "the location is empty"),
        ("s3://b/../k.jsonl", "climbs above its root"),
        ("file:///x.jsonl?y", "would start a query"),
        ("ftp://host/x.jsonl", "unsupported scheme 'ftp'"),
        ("s3:///key.jsonl", "has no bucket"),
        ("file://otherhost/x.jsonl", "names a remote host"),
        ("file://", "names no file"),
    ],
)
def test_bad_uris(uri: str, match: str) -> None:
    with pytest.raises(SnapshotError, match=match):
        read_pages(uri)


def test_unreadable_file_is_permission_denied(world_dir: Path) -> None:
    path = world_dir / "seg.jsonl"
    path.write_bytes(jsonl_bytes([{"a": 1}]))
    path.chmod(0o000)
    with as_nobody(), pytest.raises(SnapshotError, match=r"permission denied reading snapshot file:///"):
        read_all(str(path))


def test_unlistable_folder_is_permission_denied(world_dir: Path) -> None:
    folder = world_dir / "seg"
    folder.mkdir()
    (folder / "part-0.jsonl").write_bytes(b"{}\n")
    folder.chmod(0o300)  # may enter, may not list
    with as_nobody(), pytest.raises(SnapshotError, match=r"permission denied listing snapshot .*/seg"):
        read_all(str(folder))


class _FailingStream(io.RawIOBase):
    """Good data, then a connection reset: what a dropped S3 or NFS read looks like."""

    def __init__(self, data: bytes, error: BaseException) -> None:
        self._data, self._error = data, error

    def read(self, n: int = -1, /) -> bytes:
        if not self._data:
            raise self._error
        out, self._data = self._data[:n] if n >= 0 else self._data, self._data[n:] if n >= 0 else b""
        return out


@pytest.mark.parametrize("kind", ["os", "botocore"])
def test_a_read_error_mid_stream_surfaces_as_snapshot_error(kind: str) -> None:
    from botocore.exceptions import ReadTimeoutError

    from worker.snapshot.s3_parts import _read_errors

    error = ConnectionResetError(104, "Connection reset by peer") if kind == "os" else ReadTimeoutError(
        endpoint_url="https://s3.example")
    data = jsonl_bytes([{"i": i} for i in range(10)])
    part = Part("p.jsonl", "s3://b/p.jsonl", len(data), "etag", lambda: _FailingStream(data, error),
                _read_errors(), lambda: io.BytesIO(data))
    stream = open_part(part, "sniff")
    pages = jsonl_pages(stream, part.source, page_size=100)
    with pytest.raises(SnapshotError, match=r"error reading snapshot s3://b/p.jsonl: .*retry the run"):
        list(pages)
    stream.close()


def test_stopping_early_closes_the_part(write: Callable[..., Path]) -> None:
    path = write("seg.jsonl.gz", jsonl_bytes([{"i": i} for i in range(10)]), gzip_it=True)
    before = set(os.listdir("/proc/self/fd"))
    pages = read_pages(str(path), page_size=2)
    next(pages)
    assert set(os.listdir("/proc/self/fd")) != before  # the part is open while it is being read
    pages.close()  # the engine stops early (a failed run): the file must not stay open
    assert set(os.listdir("/proc/self/fd")) == before
