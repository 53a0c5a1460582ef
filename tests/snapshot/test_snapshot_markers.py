"""Folders written by jobs (Spark, Databricks, Glue): _SUCCESS markers, decoys never read, require_marker."""

from __future__ import annotations

import pytest
from snapshot_support import Store, read_all, rows_of

from worker.snapshot import SnapshotError, SnapshotRules, read_pages, snapshot_identity

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def parquet_bytes(emails: list[str]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"email": emails}), sink)
    return sink.getvalue().to_pybytes()


def write_job_folder(store: Store, folder: str, *, marker: bool = True) -> list[str]:
    """Three Parquet parts as Spark names them, with a job's decoys around them; returns the emails in order."""
    emails: list[str] = []
    for i in (2, 0, 1):
        part = [f"p{i}-{j}@x.io" for j in range(3)]
        store.put(f"{folder}part-0000{i}-5d1c-c000.snappy.parquet", parquet_bytes(part))
    for i in range(3):
        emails += [f"p{i}-{j}@x.io" for j in range(3)]
    store.put(f"{folder}.part-00000-5d1c-c000.snappy.parquet.crc", b"crc")
    store.put(f"{folder}_temporary/0/task_1/part-00003-5d1c-c000.snappy.parquet", parquet_bytes(["half@x.io"]))
    store.put(f"{folder}_started_4711", b"")
    store.put(f"{folder}_committed_4711", b"{}")
    if marker:
        store.put(f"{folder}_SUCCESS", b"")
    return emails


def emails_of(uri: str, **kwargs: object) -> list[str]:
    return [row["email"] for _, _, row in rows_of(read_all(uri, columns={"email"}, **kwargs))]


def test_a_job_folder_reads_its_parts_in_name_order_and_never_its_decoys(store: Store) -> None:
    emails = write_job_folder(store, "seg/")
    assert emails_of(store.uri("seg/")) == emails
    assert emails_of(store.uri("seg/"), rules=SnapshotRules(require_marker=True)) == emails


def test_a_uri_naming_the_marker_means_its_folder(store: Store) -> None:
    emails = write_job_folder(store, "seg/")
    assert emails_of(store.uri("seg/_SUCCESS")) == emails
    assert [p.source for p in read_all(store.uri("seg/_SUCCESS"))] == [
        store.uri(f"seg/part-0000{i}-5d1c-c000.snappy.parquet") for i in range(3)]
    assert snapshot_identity(store.uri("seg/_SUCCESS")) == snapshot_identity(store.uri("seg/"))


def test_a_marker_that_is_not_there_is_an_unfinished_job(store: Store) -> None:
    write_job_folder(store, "seg/", marker=False)
    with pytest.raises(SnapshotError, match=r"_SUCCESS: the marker does not exist, so the job writing .* has not "
                                            r"committed") as info:
        read_pages(store.uri("seg/_SUCCESS"))
    assert info.value.code == "snapshot_incomplete"


@pytest.mark.parametrize("name", ["seg/", "seg"])
def test_require_marker_refuses_a_folder_without_it_before_reading_anything(store: Store, name: str) -> None:
    write_job_folder(store, "seg/", marker=False)
    assert len(emails_of(store.uri(name))) == 9  # without the rule the parts are read
    with pytest.raises(SnapshotError, match=r"has no _SUCCESS marker and the export sets require_marker: the job "
                                            r"writing it has not finished \(or failed\); nothing was read") as info:
        read_pages(store.uri(name), rules=SnapshotRules(require_marker=True))
    assert info.value.code == "snapshot_incomplete" and not info.value.transient
    with pytest.raises(SnapshotError, match="require_marker"):
        snapshot_identity(store.uri(name), SnapshotRules(require_marker=True))


def test_require_marker_looks_for_the_marker_before_listing_so_a_job_committing_meanwhile_is_refused(
    store: Store, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The job writes its last part and _SUCCESS right after the worker lists the folder: the listing holds
    only the first parts. The marker was looked for before the listing (absent then), so the run is refused,
    never synced half-way. Arranged by order of operations: the job commits inside the listing call."""
    from worker.snapshot import layouts

    store.put("seg/part-00000.csv", b"email\na@x.io\n")
    name = {"file": "list_local_parts", "s3": "list_s3_parts", "az": "list_az_parts"}[store.kind]
    real = getattr(layouts, name)

    def listing_then_the_job_commits(location: object) -> object:
        parts = real(location)
        store.put("seg/part-00001.csv", b"email\nb@x.io\n")
        store.put("seg/_SUCCESS", b"")
        return parts

    monkeypatch.setattr(layouts, name, listing_then_the_job_commits)
    with pytest.raises(SnapshotError, match="has no _SUCCESS marker and the export sets require_marker") as info:
        read_pages(store.uri("seg/"), rules=SnapshotRules(require_marker=True))
    assert info.value.code == "snapshot_incomplete"
    monkeypatch.setattr(layouts, name, real)  # the next event, after the commit, reads the whole folder
    assert emails_of(store.uri("seg/"), rules=SnapshotRules(require_marker=True)) == ["a@x.io", "b@x.io"]


def test_require_marker_refuses_a_single_file(store: Store) -> None:
    uri = store.put("seg.parquet", parquet_bytes(["a@x.io"]))
    store.put("_SUCCESS", b"")
    with pytest.raises(SnapshotError, match=r"is one file, which cannot show it is whole, and the export sets "
                                            r"require_marker: name the job's folder") as info:
        read_pages(uri, rules=SnapshotRules(require_marker=True))
    assert info.value.code == "snapshot_incomplete"


def test_a_marker_that_is_a_folder_or_a_link_does_not_count(tmp_path: object) -> None:
    from pathlib import Path

    base = Path(str(tmp_path))
    store = Store("file", base=base)
    write_job_folder(store, "seg/", marker=False)
    (base / "seg" / "_SUCCESS").mkdir()
    with pytest.raises(SnapshotError, match="has no _SUCCESS marker"):
        read_pages(store.uri("seg/"), rules=SnapshotRules(require_marker=True))
    (base / "seg" / "_SUCCESS").rmdir()
    (base / "elsewhere_SUCCESS").write_bytes(b"")
    (base / "seg" / "_SUCCESS").symlink_to(base / "elsewhere_SUCCESS")
    with pytest.raises(SnapshotError, match="has no _SUCCESS marker"):
        read_pages(store.uri("seg/"), rules=SnapshotRules(require_marker=True))
