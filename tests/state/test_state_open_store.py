"""open_store: which backend and where, from a state_url; no I/O until the first call."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.state import FileStore, S3Store, StateError, open_store


def test_relative_file_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("file://./state")
    assert isinstance(store, FileStore)
    assert store.root == str(tmp_path / "state")
    assert not (tmp_path / "state").exists(), "opening must not create the folder"
    store.put("a/b", b"x")
    assert (tmp_path / "state" / "a" / "b").read_bytes() == b"x"


@pytest.mark.parametrize("form", ["file_uri", "localhost", "plain", "relative_plain"])
def test_other_file_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    monkeypatch.chdir(tmp_path)
    url = {
        "file_uri": (tmp_path / "st").as_uri(),
        "localhost": f"file://localhost{tmp_path / 'st'}",
        "plain": str(tmp_path / "st"),
        "relative_plain": "st",
    }[form]
    store = open_store(url)
    assert isinstance(store, FileStore) and store.root == str(tmp_path / "st")
    assert store.uri("k/1") == (tmp_path / "st" / "k" / "1").as_uri()


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("s3://bucket-a", "s3://bucket-a/k/1"),
        ("s3://bucket-a/", "s3://bucket-a/k/1"),
        ("s3://bucket-a/state", "s3://bucket-a/state/k/1"),
        ("s3://bucket-a/state/v1/", "s3://bucket-a/state/v1/k/1"),
    ],
)
def test_s3_urls(url: str, uri: str) -> None:
    store = open_store(url)  # no network: the bucket need not exist
    assert isinstance(store, S3Store)
    assert store.uri("k/1") == uri


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("", "state_url is empty"),
        ("http://example.com/state", "unsupported scheme 'http'"),
        ("s3://", "not a valid S3 bucket name"),
        ("s3://Not_A_Bucket/x", "not a valid S3 bucket name"),
        ("s3://bucket-a/../x", r"may not contain '\.' or '\.\.'"),
        ("file://otherhost/state", "names a remote host"),
        ("file://", "names no folder"),
    ],
)
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(StateError, match=match):
        open_store(url)


def test_s3_store_at_the_bucket_root(s3_bucket: str) -> None:
    store = open_store(f"s3://{s3_bucket}")
    store.put("exports/vip/synced", b"x")
    assert store.list("") == ["exports/vip/synced"]
    assert open_store(f"s3://{s3_bucket}/exports").list("") == ["vip/synced"]
