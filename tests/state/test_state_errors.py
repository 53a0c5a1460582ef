"""Storage failures raise StateError with the URI and the fix, and never the credentials."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from state_support import as_nobody

from worker.state import FileStore, StateError, open_store


def test_missing_bucket(moto_server: str) -> None:
    store = open_store("s3://no-such-state-bucket/prefix")
    for call in (lambda: store.get("a"), lambda: store.put("a", b"x"), lambda: store.put_if_absent("a", b"x"),
                 lambda: store.list(""), lambda: store.delete("a")):
        with pytest.raises(StateError, match=r"bucket 'no-such-state-bucket' does not exist") as caught:
            call()
        message = str(caught.value)
        assert "s3://no-such-state-bucket/prefix" in message
        assert os.environ["AWS_SECRET_ACCESS_KEY"] not in message.replace("no-such-state-bucket", "")


@pytest.fixture
def world_dir() -> Iterator[Path]:
    """A folder that 'nobody' can traverse (pytest's tmp_path is private to its owner)."""
    path = Path(tempfile.mkdtemp(prefix="state-perm-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_unwritable_folder(world_dir: Path) -> None:
    store = FileStore(world_dir / "state")
    store.put("exports/vip/synced", b"x")  # as the owner
    (world_dir / "state").chmod(0o555)
    (world_dir / "state" / "exports" / "vip").chmod(0o555)
    try:
        with as_nobody():
            assert store.get("exports/vip/synced") == b"x"  # reading still works
            with pytest.raises(StateError, match=r"permission denied: cannot write file:///.*/exports/vip/x"):
                store.put("exports/vip/x", b"y")
    finally:
        (world_dir / "state" / "exports" / "vip").chmod(0o755)
        (world_dir / "state").chmod(0o755)


def test_unreadable_value(world_dir: Path) -> None:
    store = FileStore(world_dir / "state")
    store.put("exports/vip/synced", b"x")
    (world_dir / "state" / "exports" / "vip" / "synced").chmod(0o000)
    with as_nobody(), pytest.raises(StateError, match=r"permission denied: cannot read file:///"):
        store.get("exports/vip/synced")


def test_a_key_cannot_also_be_a_folder_on_files(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put("a/b/c", b"1")
    for call in (lambda: store.put("a/b", b"2"), lambda: store.put_if_absent("a/b", b"2"),
                 lambda: store.put("a/b/c/d", b"2")):
        with pytest.raises(StateError, match="clashes with another key"):
            call()
    assert store.get("a/b") is None
    assert store.list("") == ["a/b/c"]


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    store.put("k/v", b"1")
    assert store.put_if_absent("k/v", b"2") is False
    assert store.replace_if_unchanged("k/v", b"3", "sha256:stale") is False
    found = store.get_versioned("k/v")
    assert found is not None
    assert store.replace_if_unchanged("k/v", b"4", found[1]) is True
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["v"]


def test_put_if_absent_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)  # e.g. a filesystem without hard links
    store = FileStore(tmp_path)
    assert store.put_if_absent("k/v", b"1") is True
    assert store.put_if_absent("k/v", b"2") is False
    assert store.get("k/v") == b"1"
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["v"]
