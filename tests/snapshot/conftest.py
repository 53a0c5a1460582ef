"""Fixtures for the snapshot reader tests: files on disk, moto's S3, a folder 'nobody' can reach."""

from __future__ import annotations

import contextlib
import gzip
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from snapshot_support import Store


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write(name, data, gzip_it=False) -> the path of a new file under tmp_path."""

    def _write(name: str, data: bytes, gzip_it: bool = False) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(data) if gzip_it else data)
        return path

    return _write


@pytest.fixture
def s3(moto_server: str) -> Any:
    """A boto3 S3 client on the moto server, for uploading parts."""
    import boto3

    return boto3.client("s3")


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder that 'nobody' can traverse (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="snapshot-perm-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for child in path.rglob("*"):
            with contextlib.suppress(OSError):
                child.chmod(0o755)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A Store on disk, then on moto's S3 (the same test runs on both)."""
    if request.param == "file":
        return Store("file", base=tmp_path / "store")
    bucket = request.getfixturevalue("s3_bucket")
    return Store("s3", s3=request.getfixturevalue("s3"), bucket=bucket)
