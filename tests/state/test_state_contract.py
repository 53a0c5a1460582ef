"""The StateStore contract, identical for FileStore and S3Store."""

from __future__ import annotations

import os

import pytest

from worker.state import FileStore, StateStore

RUN = "exports/vip/runs/abc"


def test_missing_keys(store: StateStore) -> None:
    assert store.get("exports/vip/synced") is None
    assert store.get_versioned("exports/vip/synced") is None
    assert store.list("") == []


def test_put_get_and_replace(store: StateStore) -> None:
    store.put("exports/vip/synced", b"v1")
    assert store.get("exports/vip/synced") == b"v1"
    store.put("exports/vip/synced", b"\x00\xffv2")
    assert store.get("exports/vip/synced") == b"\x00\xffv2"


def test_an_empty_value_is_not_a_missing_one(store: StateStore) -> None:
    store.put("exports/vip/last_snapshot", b"")
    assert store.get("exports/vip/last_snapshot") == b""
    assert store.put_if_absent("exports/vip/last_snapshot", b"x") is False


def test_put_if_absent(store: StateStore) -> None:
    assert store.put_if_absent(f"{RUN}/completed", b"first") is True
    assert store.put_if_absent(f"{RUN}/completed", b"second") is False
    assert store.get(f"{RUN}/completed") == b"first"


def test_versions_change_with_the_content(store: StateStore) -> None:
    store.put("exports/vip/synced", b"one")
    found = store.get_versioned("exports/vip/synced")
    assert found is not None
    data, version = found
    assert data == b"one" and isinstance(version, str) and version
    store.put("exports/vip/synced", b"two")
    again = store.get_versioned("exports/vip/synced")
    assert again is not None and again[1] != version


def test_replace_if_unchanged(store: StateStore) -> None:
    key = "exports/vip/synced"
    assert store.replace_if_unchanged(key, b"v1", None) is True  # None: must not exist yet
    assert store.replace_if_unchanged(key, b"other", None) is False
    found = store.get_versioned(key)
    assert found is not None
    _, v1 = found
    assert store.replace_if_unchanged(key, b"v2", v1) is True
    assert store.replace_if_unchanged(key, b"v3", v1) is False  # stale version
    assert store.get(key) == b"v2"
    found = store.get_versioned(key)
    assert found is not None
    store.delete(key)
    assert store.replace_if_unchanged(key, b"v4", found[1]) is False  # deleted since read
    assert store.get(key) is None


def test_list_is_sorted_full_keys_by_string_prefix(store: StateStore) -> None:
    keys = [
        f"{RUN}/batches/0010",
        f"{RUN}/batches/0002",
        f"{RUN}/plan/part-0000",
        f"{RUN}/completed",
        "exports/vip/synced",
        "exports/vim/synced",
        "segments/vip-customers/latest",
    ]
    for key in keys:
        store.put(key, key.encode())
    assert store.list("") == sorted(keys)
    assert store.list(f"{RUN}/batches/") == [f"{RUN}/batches/0002", f"{RUN}/batches/0010"]
    assert store.list(f"{RUN}/batches/001") == [f"{RUN}/batches/0010"]
    assert store.list("exports/vi") == sorted(k for k in keys if k.startswith("exports/vi"))
    assert store.list(f"{RUN}/comp") == [f"{RUN}/completed"]
    assert store.list("exports/vip/synced") == ["exports/vip/synced"]
    assert store.list("nothing/") == []
    assert store.list("exports/x") == []


def test_delete(store: StateStore) -> None:
    store.put(f"{RUN}/batches/0001", b"x")
    store.delete(f"{RUN}/batches/0001")
    store.delete(f"{RUN}/batches/0001")  # missing is fine
    store.delete("never/written")
    assert store.get(f"{RUN}/batches/0001") is None
    assert store.list("") == []


def test_uri(store: StateStore) -> None:
    uri = store.uri(f"{RUN}/failures.csv")
    if isinstance(store, FileStore):
        assert uri == f"file://{store.root}/{RUN}/failures.csv"
    else:
        assert uri.startswith(("s3://test-", "az://test-")) and uri.endswith(f"/state/v1/{RUN}/failures.csv")


def test_unicode_keys(store: StateStore) -> None:
    store.put("exports/café/synced", b"x")
    assert store.list("exports/") == ["exports/café/synced"]
    assert store.get("exports/café/synced") == b"x"


@pytest.mark.parametrize("key", ["", "/abs/key", "a//b", "a/", "../x", "a/../b", "a/./b", ".hidden", "a/.tmp",
                                 "a\\b", "a\0b"])
def test_bad_keys_are_rejected(store: StateStore, key: str) -> None:
    for call in (store.get, store.get_versioned, store.delete, store.uri):
        with pytest.raises(ValueError, match="state key"):
            call(key)
    with pytest.raises(ValueError, match="state key"):
        store.put(key, b"x")
    with pytest.raises(ValueError, match="state key"):
        store.put_if_absent(key, b"x")
    with pytest.raises(ValueError, match="state key"):
        store.replace_if_unchanged(key, b"x", None)


@pytest.mark.parametrize("prefix", ["/abs", "../", "a//", "a/../b"])
def test_bad_prefixes_are_rejected(store: StateStore, prefix: str) -> None:
    with pytest.raises(ValueError, match="state prefix"):
        store.list(prefix)


def test_a_value_of_tens_of_megabytes(store: StateStore) -> None:
    big = os.urandom(1 << 20) * 24  # 24 MiB, like a large synced state
    assert store.put_if_absent("exports/vip/synced", big) is True
    found = store.get_versioned("exports/vip/synced")
    assert found is not None and found[0] == big
    assert store.replace_if_unchanged("exports/vip/synced", big[:-1], found[1]) is True
    assert store.get("exports/vip/synced") == big[:-1]
