"""Snapshots on Azure Blob Storage (Azurite over real HTTP): Parquet by ranged reads, the account named in an
abfss:// URI, credentials never in an error, and the install command when the extra is missing.

Folders, markers, manifests and CDM folders on Azure run in the layout tests (their ``store`` fixture)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from snapshot_support import read_all, rows_of

from tests.azurite import ACCOUNT, KEY
from worker.snapshot import SnapshotError, read_pages

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture
def container(az_container: str, azurite: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite).get_container_client(az_container)


def parquet_bytes(table: Any) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=1000)
    return sink.getvalue().to_pybytes()


def test_parquet_parts_on_azure_read_only_the_mapped_columns(container: Any, az_container: str) -> None:
    for i in range(2):
        table = pa.table({"email": [f"p{i}-{j}@x.io" for j in range(2500)], "other": ["x" * 50] * 2500})
        container.upload_blob(f"vip/part-0000{i}-c000.snappy.parquet", parquet_bytes(table))
    container.upload_blob("vip/_SUCCESS", b"")
    container.upload_blob("vip/_temporary/0/part-00009-c000.snappy.parquet", b"half-written")
    pages = read_all(f"az://{az_container}/vip/_SUCCESS", columns={"email"}, page_size=1000)
    assert [row for _, _, row in rows_of(pages)] == [{"email": f"p{i}-{j}@x.io"} for i in range(2) for j in range(2500)]


def test_a_blob_replaced_while_read_fails_instead_of_mixing_two_files(container: Any, az_container: str) -> None:
    container.upload_blob("seg.jsonl", b'{"email": "a@x.io"}\n')
    pages = read_pages(f"az://{az_container}/seg.jsonl")  # listed: its ETag is fixed now
    container.upload_blob("seg.jsonl", b'{"email": "b@x.io"}\n', overwrite=True)
    with pytest.raises(SnapshotError, match="changed while it was being read"):
        list(pages)


def test_the_abfss_form_names_the_account_it_must_be(container: Any, az_container: str) -> None:
    container.upload_blob("seg.csv", b"email\na@x.io\n")
    uri = f"abfss://{az_container}@{ACCOUNT}.dfs.core.windows.net/seg.csv"
    assert [row for _, _, row in rows_of(read_all(uri))] == [{"email": "a@x.io"}]
    with pytest.raises(SnapshotError, match=r"names storage account 'otheraccount' but the worker's Azure "
                                            r"credentials are for 'devstoreaccount1'"):
        read_pages(f"abfss://{az_container}@otheraccount.dfs.core.windows.net/seg.csv")


def test_missing_blobs_and_bad_credentials_say_so_without_the_key(container: Any, az_container: str, azurite: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SnapshotError, match=r"snapshot not found: az://.*/missing.csv"):
        read_pages(f"az://{az_container}/missing.csv")
    container.upload_blob("seg.csv", b"email\na@x.io\n")
    wrong = "A" * 86 + "=="
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.replace(KEY, wrong))
    with pytest.raises(SnapshotError) as info:
        read_pages(f"az://{az_container}/seg.csv")
    assert "permission denied" in str(info.value) and wrong not in str(info.value) and KEY not in str(info.value)


def test_without_credentials_the_error_says_which_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY",
                 "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SnapshotError, match=r"no Azure storage credentials: set AZURE_STORAGE_CONNECTION_STRING"):
        read_pages("az://segments/seg.csv")


BLOCK_AZURE = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "azure" or name.startswith("azure."):
            raise ImportError("No module named " + repr(name))
sys.meta_path.insert(0, Block())
from worker.snapshot import SnapshotError, read_pages
try:
    read_pages(sys.argv[1])
except SnapshotError as exc:
    print(exc)
"""


def test_without_the_extra_an_azure_snapshot_fails_naming_the_install_command() -> None:
    out = subprocess.run([sys.executable, "-c", BLOCK_AZURE, "az://segments/vip/model.json"], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    assert ("snapshot az://segments/vip/model.json: reading Azure Blob Storage needs azure-storage-blob: install "
            "the extra with pip install 'segment-export[azure]'") in out


def test_a_model_json_naming_its_partitions_by_https_url_as_written_on_azure(container: Any, az_container: str) -> None:
    """Customer Insights writes absolute https URLs of the storage account into model.json's partitions."""
    container.upload_blob("ci/Vip/2026/12/06/1200/Vip_1.csv", b'"c1","a@x.io"\r\n')
    container.upload_blob("ci/Vip/2026/12/06/1200/Vip_2.csv", b'"c2","b@x.io"\r\n')
    container.upload_blob("elsewhere/Vip_1.csv", b'"c9","intruder@x.io"\r\n')

    def model(*locations: str) -> bytes:
        return orjson.dumps({"entities": [{"name": "Vip", "attributes": [{"name": "Id"}, {"name": "Email"}],
                                           "partitions": [{"location": u} for u in locations]}]})

    base = f"https://{ACCOUNT}.dfs.core.windows.net:443/{az_container}/ci/Vip/2026/12/06/1200"
    container.upload_blob("ci/model.json", model(f"{base}/Vip_1.csv", f"{base}/Vip_2.csv"))
    for uri in (f"az://{az_container}/ci/model.json",
                f"abfss://{az_container}@{ACCOUNT}.dfs.core.windows.net/ci/model.json"):
        assert [row["Email"] for _, _, row in rows_of(read_all(uri))] == ["a@x.io", "b@x.io"]
    outside = f"https://{ACCOUNT}.blob.core.windows.net/{az_container}/elsewhere/Vip_1.csv"
    container.upload_blob("ci/model.json", model(outside), overwrite=True)
    with pytest.raises(SnapshotError, match=r"which is not a file in az://.*/ci/ or below it"):
        read_pages(f"az://{az_container}/ci/model.json")
    other = f"https://otheraccount.dfs.core.windows.net/{az_container}/ci/Vip/2026/12/06/1200/Vip_1.csv"
    container.upload_blob("ci/model.json", model(other), overwrite=True)
    with pytest.raises(SnapshotError, match=r"in storage account 'otheraccount', but the worker's Azure credentials "
                                            r"are for 'devstoreaccount1'"):
        read_pages(f"az://{az_container}/ci/model.json")
