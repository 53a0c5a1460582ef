"""Redshift UNLOAD manifests, on disk and on moto's S3: exactly the listed files, their record counts checked."""

from __future__ import annotations

import orjson
import pytest
from snapshot_support import Store, read_all, rows_of

from worker.snapshot import SnapshotError, SnapshotRules, read_pages, snapshot_identity

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def parquet_bytes(emails: list[str]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"email": emails}), sink)
    return sink.getvalue().to_pybytes()


def unload(store: Store, prefix: str = "unload/vip_", *, claim: dict[int, int] | None = None,
           total: int | None = None) -> tuple[str, list[str]]:
    """Three slices' files and a VERBOSE manifest, as ``UNLOAD ... FORMAT PARQUET MANIFEST VERBOSE`` writes them.

    ``claim``: a record count to state for entry i instead of the true one; ``total``: the same for meta.
    """
    entries, emails = [], []
    for i in range(3):
        part = [f"s{i}-{j}@x.io" for j in range(i + 2)]
        emails += part
        data = parquet_bytes(part)
        url = store.put(f"{prefix}000{i}_part_00.parquet", data)
        count = (claim or {}).get(i, len(part))
        entries.append({"url": url, "meta": {"content_length": len(data), "record_count": count}})
    store.put(f"{prefix}0003_part_00.parquet", parquet_bytes(["unlisted@x.io"]))  # an older unload's file
    manifest = {"entries": entries, "schema": {"elements": [{"name": "email", "type": {"base": "varchar"}}]},
                "meta": {"content_length": 0, "record_count": len(emails) if total is None else total}}
    return store.put(f"{prefix}manifest", orjson.dumps(manifest)), emails


def emails_of(uri: str, **kwargs: object) -> list[str]:
    return [row["email"] for _, _, row in rows_of(read_all(uri, columns={"email"}, **kwargs))]


def test_exactly_the_listed_files_in_the_listed_order(store: Store) -> None:
    uri, emails = unload(store)
    assert emails_of(uri) == emails
    assert emails_of(uri, rules=SnapshotRules(require_marker=True)) == emails  # a manifest is its own marker


def test_an_entry_holding_fewer_records_than_it_says_fails_snapshot_incomplete(store: Store) -> None:
    uri, _ = unload(store, claim={1: 4})
    with pytest.raises(SnapshotError, match=r"vip_0001_part_00.parquet holds 3 rows where its manifest's entry "
                                            r"says 4: it is not whole .* nothing was sent") as info:
        read_all(uri)
    assert info.value.code == "snapshot_incomplete"


def test_a_manifest_claiming_more_records_in_total_fails_snapshot_incomplete(store: Store) -> None:
    uri, emails = unload(store, total=10)
    with pytest.raises(SnapshotError, match=rf"manifest holds {len(emails)} rows where the manifest says 10") as info:
        read_all(uri)
    assert info.value.code == "snapshot_incomplete"


def test_a_file_of_another_length_than_listed_fails_at_listing(store: Store) -> None:
    uri, _ = unload(store)
    store.put("unload/vip_0002_part_00.parquet", parquet_bytes(["other@x.io"]))
    with pytest.raises(SnapshotError, match=r"vip_0002_part_00.parquet is [\d,]+ bytes where manifest .* says "
                                            r"[\d,]+: the file is not the one the job wrote") as info:
        read_pages(uri)
    assert info.value.code == "snapshot_incomplete"


def test_a_listed_file_that_is_missing_fails_snapshot_incomplete_unless_optional(store: Store) -> None:
    uri, _ = unload(store)
    store.delete("unload/vip_0001_part_00.parquet")
    with pytest.raises(SnapshotError, match=r"vip_0001_part_00.parquet, listed in manifest .*, does not exist") as info:
        read_pages(uri)
    assert info.value.code == "snapshot_incomplete"
    entries = [{"url": store.uri("unload/vip_0000_part_00.parquet")},
               {"url": store.uri("unload/vip_0001_part_00.parquet"), "mandatory": False}]
    uri = store.put("unload/copy.manifest", orjson.dumps({"entries": entries}))
    assert emails_of(uri) == ["s0-0@x.io", "s0-1@x.io"]


def test_csv_files_without_a_suffix_are_read_with_the_format_given(store: Store) -> None:
    store.put("unload/vip_0000_part_00", b"email\na@x.io\n")
    store.put("unload/vip_0001_part_00", b"email\nb@x.io\nc@x.io\n")
    entries = [{"url": store.uri(f"unload/vip_000{i}_part_00"), "meta": {"record_count": i + 1}} for i in range(2)]
    uri = store.put("unload/vip_manifest", orjson.dumps({"entries": entries}))
    assert emails_of(uri, format="csv") == ["a@x.io", "b@x.io", "c@x.io"]
    with pytest.raises(SnapshotError, match="cannot tell the format"):
        read_pages(uri)


@pytest.mark.parametrize("listed", [
    "../elsewhere/vip_0000_part_00.parquet",
    "{root}other/vip_0000_part_00.parquet",
    "file:///etc/passwd",
    "s3://another-bucket/unload/vip_0000_part_00.parquet",
    "{root}unload/_temporary/vip_0000_part_00.parquet",
    "{root}unload/.hidden/vip_0000_part_00.parquet",
    "{root}unload/",
])
def test_a_manifest_lists_only_files_beside_or_below_it(store: Store, listed: str) -> None:
    store.put("elsewhere/vip_0000_part_00.parquet", parquet_bytes(["intruder@x.io"]))
    root = store.uri("")
    entry = listed.replace("{root}", root) if "{root}" in listed else (
        store.uri("unload/") + listed if listed.startswith("..") else listed)
    uri = store.put("unload/vip_manifest", orjson.dumps({"entries": [{"url": entry}]}))
    with pytest.raises(SnapshotError, match=r"manifest .* lists .*(not a file in .* or below it|names starting "
                                            r"with '_' or '.')"):
        read_pages(uri)


@pytest.mark.parametrize("again", ["vip_0000_part_00.parquet", "./vip_0000_part_00.parquet",
                                   "%76ip_0000_part_00.parquet", "{uri}"])
def test_a_file_listed_twice_however_spelled_is_refused_naming_both_entries(store: Store, again: str) -> None:
    """A duplicate could stand in for a missing file with the record counts still agreeing: the missing
    file's people would look like leavers. Compared as located, not as written."""
    data = parquet_bytes(["a@x.io"])
    first = store.put("unload/vip_0000_part_00.parquet", data)
    store.put("unload/vip_0001_part_00.parquet", parquet_bytes(["b@x.io"]))  # the file the duplicate replaces
    entries = [{"url": url, "meta": {"content_length": len(data), "record_count": 1}}
               for url in ("vip_0000_part_00.parquet", again.replace("{uri}", first))]
    uri = store.put("unload/vip_manifest", orjson.dumps({"entries": entries, "meta": {"record_count": 2}}))
    with pytest.raises(SnapshotError, match=r"lists the same file .*vip_0000_part_00.parquet twice, as entries\[0\] "
                                            r"'vip_0000_part_00.parquet' and entries\[1\] .*: a manifest lists each "
                                            r"file once") as info:
        read_pages(uri)
    assert info.value.code == "snapshot_unreadable"


def test_a_manifest_rewritten_over_the_same_files_is_another_snapshot(store: Store) -> None:
    """The manifest's statements (record counts) are part of the identity, not only the files it lists."""
    store.put("unload/vip_0000_part_00.parquet", parquet_bytes(["a@x.io", "b@x.io"]))

    def manifest(records: int) -> str:
        entries = [{"url": "vip_0000_part_00.parquet", "meta": {"record_count": records}}]
        return store.put("unload/vip_manifest", orjson.dumps({"entries": entries}))

    first = snapshot_identity(manifest(2))
    assert snapshot_identity(manifest(3)) != first  # the same file, another statement
    assert snapshot_identity(manifest(2)) == first  # the same statement again


def test_listed_files_must_pass_the_worker_prefixes(store: Store) -> None:
    uri, _ = unload(store, prefix="unload/vip/")
    allowed = store.uri("unload/vip/")
    assert emails_of(uri, rules=SnapshotRules(prefixes=(allowed,)))
    with pytest.raises(SnapshotError, match=r"lists .* is outside the snapshot prefixes this worker reads"):
        read_pages(uri, rules=SnapshotRules(prefixes=(store.uri("unload/vip/0000_part_00.parquet") + "/",)))


@pytest.mark.parametrize(("document", "message"), [
    (b"not json", r"is not JSON"),
    (b'{"files": []}', r'has no "entries" list'),
    (b'{"entries": []}', r"lists no files"),
    (b'{"entries": [{"path": "x"}]}', r'entries\[0\] has no "url"'),
    (b'{"entries": [{"url": "a.parquet", "meta": {"record_count": -1}}]}', r"record_count must be a whole number"),
])
def test_a_manifest_that_is_not_one_fails_naming_the_problem(store: Store, document: bytes, message: str) -> None:
    uri = store.put("unload/vip_manifest", document)
    with pytest.raises(SnapshotError, match=message) as info:
        read_pages(uri)
    assert info.value.code == "snapshot_unreadable"


def test_an_entry_with_credentials_is_refused_with_them_masked(store: Store) -> None:
    """Third review: a password holding '/' (an AWS secret key) must not reach the message, listed once or twice."""
    entry = {"url": "s3://AKIAEXAMPLE:wJal/hunter2/bPx@bucket/x.csv"}
    uri = store.put("unload/vip_manifest", orjson.dumps({"entries": [entry, entry]}))
    with pytest.raises(SnapshotError, match=r"\*\*\*@") as caught:
        read_pages(uri)
    assert "hunter2" not in str(caught.value) and "wJal" not in str(caught.value)
