"""``list_modified``: the keys of ``list`` with their modification times, on a folder and on S3 alike.

Why a contract of its own: retention (``worker.run.retention``) decides what to delete from these times, so
both backends must report the same keys as ``list`` and times that move when a value is written.
"""

from __future__ import annotations

import os
import time

import pytest

from worker.state import FileStore, StateError, StateStore, open_store

RUN = "exports/vip/runs/abc"
KEYS = [f"{RUN}/plan/part-00000", f"{RUN}/batches/00001.final", f"{RUN}/completed", "exports/vip/synced",
        "exports/vip/runs/abd/completed", "segments/vip/latest"]
SLACK = 2.0  # S3 reports LastModified in whole seconds


def test_same_keys_and_order_as_list(store: StateStore) -> None:
    for key in KEYS:
        store.put(key, b"x")
    for prefix in ("", "exports/", f"{RUN}/", "exports/vip/runs/ab", "exports/vip/synced", "nothing/"):
        assert [k for k, _ in store.list_modified(prefix)] == store.list(prefix), prefix


def test_times_are_when_the_value_was_written(store: StateStore) -> None:
    before = time.time()
    store.put(f"{RUN}/completed", b"done")
    store.put_if_absent(f"{RUN}/published", b"1")
    assert store.replace_if_unchanged("exports/vip/last_refresh", b"r", None)
    after = time.time()
    found = dict(store.list_modified("exports/"))
    assert set(found) == {f"{RUN}/completed", f"{RUN}/published", "exports/vip/last_refresh"}
    for key, mtime in found.items():
        assert isinstance(mtime, float)
        assert before - SLACK <= mtime <= after + SLACK, key


def test_a_deleted_key_is_gone(store: StateStore) -> None:
    store.put(f"{RUN}/completed", b"x")
    store.delete(f"{RUN}/completed")
    assert store.list_modified("") == []


@pytest.mark.parametrize("prefix", ["/abs", "../", "a//", "a/../b"])
def test_bad_prefixes_are_rejected(store: StateStore, prefix: str) -> None:
    with pytest.raises(ValueError, match="state prefix"):
        store.list_modified(prefix)


def test_file_store_reports_the_files_mtime(tmp_path: os.PathLike[str]) -> None:
    """The file store's time is the file's (what ``touch -d`` or a restore would set), to the sub-second."""
    store = FileStore(os.path.join(tmp_path, "state"))
    store.put(f"{RUN}/completed", b"x")
    path = os.path.join(store.root, *RUN.split("/"), "completed")
    os.utime(path, (1_700_000_000.25, 1_700_000_000.25))
    assert store.list_modified(RUN) == [(f"{RUN}/completed", 1_700_000_000.25)]


def test_s3_listing_of_a_missing_bucket_names_it(moto_server: str) -> None:
    store = open_store("s3://no-such-state-bucket/prefix")
    with pytest.raises(StateError, match=r"bucket 'no-such-state-bucket' does not exist"):
        store.list_modified("exports/")
