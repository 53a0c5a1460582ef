"""Snapshots in S3 (moto's server over HTTP): one object, a folder prefix, a key prefix, and failures."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from snapshot_support import jsonl_bytes, read_all, rows_of

from worker.snapshot import SnapshotError, read_pages, snapshot_identity


def test_single_object(s3: Any, s3_bucket: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key="vip/2024-06-01.jsonl", Body=b'{"email":"a@x.io"}\n\n\n{"n":2}\n')
    pages = read_all(f"s3://{s3_bucket}/vip/2024-06-01.jsonl")
    source = f"s3://{s3_bucket}/vip/2024-06-01.jsonl"
    assert rows_of(pages) == [(source, 1, {"email": "a@x.io"}), (source, 4, {"n": 2})]


def test_single_gzip_csv_object(s3: Any, s3_bucket: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key="seg.csv.gz", Body=gzip.compress(b"email,name\na@x.io,Ada\n"))
    assert rows_of(read_all(f"s3://{s3_bucket}/seg.csv.gz")) == [
        (f"s3://{s3_bucket}/seg.csv.gz", 2, {"email": "a@x.io", "name": "Ada"})]


def _upload_parts(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="seg1/", Body=b"")  # a console "folder" placeholder
    s3.put_object(Bucket=bucket, Key="seg1/part-0001.jsonl.gz", Body=gzip.compress(jsonl_bytes([{"p": 1}])))
    s3.put_object(Bucket=bucket, Key="seg1/part-0000.csv", Body=b"p\n0\n0b\n")
    s3.put_object(Bucket=bucket, Key="seg1/_SUCCESS", Body=b"")
    s3.put_object(Bucket=bucket, Key="seg1/.tmp.jsonl", Body=b"junk")
    s3.put_object(Bucket=bucket, Key="seg1/deeper/part-0000.jsonl", Body=b'{"p":"deep"}\n')
    s3.put_object(Bucket=bucket, Key="seg10/part-0000.jsonl", Body=b'{"p":10}\n')


@pytest.mark.parametrize("suffix", ["seg1/", "seg1"])
def test_folder_prefix_reads_its_parts_in_name_order(s3: Any, s3_bucket: str, suffix: str) -> None:
    _upload_parts(s3, s3_bucket)
    pages = read_all(f"s3://{s3_bucket}/{suffix}")
    assert rows_of(pages) == [
        (f"s3://{s3_bucket}/seg1/part-0000.csv", 2, {"p": "0"}),
        (f"s3://{s3_bucket}/seg1/part-0000.csv", 3, {"p": "0b"}),
        (f"s3://{s3_bucket}/seg1/part-0001.jsonl.gz", 1, {"p": 1}),
    ]


def test_a_name_is_an_object_or_a_folder_never_a_key_prefix_that_takes_in_siblings(s3: Any, s3_bucket: str) -> None:
    """Issue 19: ``seg1`` with no object and no ``seg1/`` folder once read ``seg1.csv`` and ``seg10/...``."""
    s3.put_object(Bucket=s3_bucket, Key="exports/seg1.csv", Body=b"email\na@x.io\n")
    s3.put_object(Bucket=s3_bucket, Key="exports/seg10/part-0000.jsonl", Body=b'{"email":"b@x.io"}\n')
    s3.put_object(Bucket=s3_bucket, Key="exports/seg1-part-0000.jsonl", Body=b'{"email":"c@x.io"}\n')
    with pytest.raises(SnapshotError, match=rf"s3://{s3_bucket}/exports/seg1 is neither an object nor a folder; "
                                            r"beside it are seg1-part-0000.jsonl, seg1.csv, seg10/ \(name the"):
        read_pages(f"s3://{s3_bucket}/exports/seg1")
    assert rows_of(read_all(f"s3://{s3_bucket}/exports/seg1.csv")) == [
        (f"s3://{s3_bucket}/exports/seg1.csv", 2, {"email": "a@x.io"})]


@pytest.mark.parametrize("uri", ["s3://{b}/x/../seg/", "s3://{b}//seg//", "s3://{b}/seg/./", "s3://{b}/%73eg/"])
def test_keys_are_decoded_and_normalised_before_listing(s3: Any, s3_bucket: str, uri: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key="seg/part-0.jsonl", Body=b'{"v":1}\n')
    s3.put_object(Bucket=s3_bucket, Key="x/../seg/part-0.jsonl", Body=b'{"v":"literal dots"}\n')
    pages = read_all(uri.format(b=s3_bucket))
    assert rows_of(pages) == [(f"s3://{s3_bucket}/seg/part-0.jsonl", 1, {"v": 1})]


def test_missing_key(s3: Any, s3_bucket: str) -> None:
    with pytest.raises(SnapshotError, match=rf"snapshot not found: s3://{s3_bucket}/nope.jsonl has no part"):
        read_pages(f"s3://{s3_bucket}/nope.jsonl")
    with pytest.raises(SnapshotError, match="snapshot not found"):
        snapshot_identity(f"s3://{s3_bucket}/nope.jsonl")


def test_missing_bucket(moto_server: str) -> None:
    with pytest.raises(SnapshotError, match=r"snapshot not found: s3://no-such-bucket-x/k.jsonl \(bucket"):
        read_pages("s3://no-such-bucket-x/k.jsonl")


def test_empty_prefix_is_an_error(s3: Any, s3_bucket: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key="seg/_SUCCESS", Body=b"")
    with pytest.raises(SnapshotError, match="has no part files"):
        read_pages(f"s3://{s3_bucket}/seg/")


def test_not_gzip_object(s3: Any, s3_bucket: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key="seg.jsonl.gz", Body=b'{"a":1}\n')
    with pytest.raises(SnapshotError, match=rf"s3://{s3_bucket}/seg.jsonl.gz is not gzip"):
        read_all(f"s3://{s3_bucket}/seg.jsonl.gz")


def test_truncated_gzip_object(s3: Any, s3_bucket: str) -> None:
    data = gzip.compress(jsonl_bytes([{"i": i} for i in range(1000)]))
    s3.put_object(Bucket=s3_bucket, Key="seg.jsonl.gz", Body=data[:-20])
    with pytest.raises(SnapshotError, match="is truncated"):
        read_all(f"s3://{s3_bucket}/seg.jsonl.gz")


def test_object_replaced_between_listing_and_reading(s3: Any, s3_bucket: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key="seg/part-0.jsonl", Body=b'{"v":1}\n')
    pages = read_pages(f"s3://{s3_bucket}/seg/")
    s3.put_object(Bucket=s3_bucket, Key="seg/part-0.jsonl", Body=b'{"v":2}\n')
    with pytest.raises(SnapshotError, match="changed while it was being read"):
        list(pages)


def test_identity_follows_etag_and_size(s3: Any, s3_bucket: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key="seg/part-0.jsonl", Body=b'{"v":1}\n')
    first = snapshot_identity(f"s3://{s3_bucket}/seg/")
    assert snapshot_identity(f"s3://{s3_bucket}/seg") == first
    s3.put_object(Bucket=s3_bucket, Key="seg/part-0.jsonl", Body=b'{"v":1}\n')
    assert snapshot_identity(f"s3://{s3_bucket}/seg/") == first  # same bytes, same ETag
    s3.put_object(Bucket=s3_bucket, Key="seg/part-0.jsonl", Body=b'{"v":2}\n')
    assert snapshot_identity(f"s3://{s3_bucket}/seg/") != first


@pytest.mark.parametrize("tail", [
    "allowed/../secret.jsonl", "allowed/%2e%2e/secret.jsonl", "allowed/.%2E/secret.jsonl",
    "allowed/%2E./secret.jsonl", "allowed/%2F%2E%2E%2Fsecret.jsonl", "allowed/x/%2e%2e/%2e%2e/secret.jsonl",
    "allowed%2F..%2Fsecret.jsonl", "allowed//..//secret.jsonl", "allowed/%2e%2e%2fsecret.jsonl",
])
def test_dot_segments_in_s3_keys_are_resolved_before_the_prefix_check(s3: Any, s3_bucket: str, tail: str) -> None:
    """Issue 19 review, defect 6: an object whose key literally holds '..' is never what a hostile URI reads.

    The bucket holds a real object at the literal key ``allowed/../secret.jsonl`` (S3 keys may hold any
    text) and one at ``secret.jsonl``; every spelling of '..' (raw, percent-encoded, mixed, with '//') is
    resolved before the comparison, so each URI means ``secret.jsonl`` and is refused by the prefix.
    """
    from worker.locations import OutsidePrefixes, Prefixes

    s3.put_object(Bucket=s3_bucket, Key="allowed/../secret.jsonl", Body=jsonl_bytes([{"email": "ceo@x.io"}]))
    s3.put_object(Bucket=s3_bucket, Key="secret.jsonl", Body=jsonl_bytes([{"email": "cfo@x.io"}]))
    prefixes = Prefixes.parse([f"s3://{s3_bucket}/allowed/"])
    with pytest.raises(OutsidePrefixes) as caught:
        prefixes.admit(f"s3://{s3_bucket}/{tail}")
    assert f"it means 's3://{s3_bucket}/secret.jsonl'" in caught.value.detail


@pytest.mark.parametrize(("tail", "key"), [
    ("allowed/./x//y.jsonl", "allowed/x/y.jsonl"), ("allowed/%2E/x%2F%2Fy.jsonl", "allowed/x/y.jsonl"),
    ("allowed/z/%2e%2e/x/y.jsonl", "allowed/x/y.jsonl"),
])
def test_empty_and_dot_segments_inside_the_prefix_read_the_normalised_key_only(
        s3: Any, s3_bucket: str, tail: str, key: str) -> None:
    """What is checked is what is read: the normalised key, never the literal one with the dots."""
    from worker.locations import Prefixes

    s3.put_object(Bucket=s3_bucket, Key=key, Body=jsonl_bytes([{"n": "normalised"}]))
    s3.put_object(Bucket=s3_bucket, Key="allowed/./x//y.jsonl", Body=jsonl_bytes([{"n": "literal"}]))
    s3.put_object(Bucket=s3_bucket, Key="allowed/z/../x/y.jsonl", Body=jsonl_bytes([{"n": "literal"}]))
    location = Prefixes.parse([f"s3://{s3_bucket}/allowed"]).admit(f"s3://{s3_bucket}/{tail}")
    assert location.key == key
    assert rows_of(read_all(location.uri)) == [(f"s3://{s3_bucket}/{key}", 1, {"n": "normalised"})]


def test_a_folder_whose_keys_hold_dot_or_empty_segments_reads_only_its_own_parts(s3: Any, s3_bucket: str) -> None:
    s3.put_object(Bucket=s3_bucket, Key="allowed/part-0000.jsonl", Body=jsonl_bytes([{"n": 1}]))
    s3.put_object(Bucket=s3_bucket, Key="allowed/../part-0001.jsonl", Body=jsonl_bytes([{"n": "dots"}]))
    s3.put_object(Bucket=s3_bucket, Key="allowed//part-0002.jsonl", Body=jsonl_bytes([{"n": "empty"}]))
    s3.put_object(Bucket=s3_bucket, Key="allowed/./part-0003.jsonl", Body=jsonl_bytes([{"n": "dot"}]))
    assert rows_of(read_all(f"s3://{s3_bucket}/allowed/")) == [
        (f"s3://{s3_bucket}/allowed/part-0000.jsonl", 1, {"n": 1})]
