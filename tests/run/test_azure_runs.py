"""Issue 16 must-show 3 on Azurite: a CDM folder laid out as Customer Insights writes it (model.json, headerless
partitions in dated folders, two partitions) with the state store on Azurite too: the list exact; a churned
refresh sends only the changes; kill -9 mid-run and a rerun: exact, one completion. (Two commits racing on the
Azure state store, exactly one winning: tests/state, whose contract and races run on Azurite.)"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.run.conftest import API_KEY, bulk_posts, subscribed, wait_for, write_config
from worker.cli import main
from worker.contacts.samples import evolve, make_segment
from worker.sim import SimSettings
from worker.state import open_store

ROOT = "CustomerInsights_4f1c/VipExport/"
COLUMNS = ("CustomerId", "EmailAddress", "FirstName", "LastName", "Phone")


@pytest.fixture
def container(az_container: str, azurite: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(azurite).get_container_client(az_container)


def export_cdm(container: Any, profiles: list[dict], stamp: str) -> str:
    """``profiles`` as Customer Insights exports a segment to Blob Storage: two headerless partitions; model.json."""
    half = len(profiles) // 2
    partitions = []
    for n, chunk in enumerate((profiles[:half], profiles[half:]), 1):
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(
            [[str(i), *(p.get(c) or "" for c in COLUMNS[1:])] for i, p in enumerate(chunk)])
        container.upload_blob(f"{ROOT}Vip/{stamp}/Vip_{n}.csv", text.getvalue().encode(), overwrite=True)
        partitions.append({"name": f"Vip_{n}", "location": f"Vip/{stamp}/Vip_{n}.csv",
                           "fileFormatSettings": {"$type": "CsvFormatSettings", "quoteStyle": "QuoteStyle.Csv"}})
    model = {"name": "VipExport", "version": "1.0", "entities": [{
        "$type": "LocalEntity", "name": "Vip", "partitions": partitions,
        "attributes": [{"name": c, "dataType": "string"} for c in COLUMNS]}]}
    container.upload_blob(f"{ROOT}model.json", orjson.dumps(model), overwrite=True)
    return f"az://{container.container_name}/{ROOT}model.json"


def sync(capsys: Any, config: Path, snapshot: str) -> tuple[int, dict]:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", snapshot])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def azure_config(tmp_path: Path, url: str, container: str, rate_scale: float) -> Path:
    config = write_config(tmp_path, url, rate_scale=rate_scale, export="require_marker = true")
    text = config.read_text().replace(f'state_url = "file://{tmp_path / "state"}"',
                                      f'state_url = "az://{container}/segment-export"')
    assert f"az://{container}/segment-export" in text
    config.write_text(text)
    return config


def assert_list_exact(simc: Any, expected: dict[str, dict]) -> None:
    members = subscribed(simc)
    assert set(members) == set(expected)
    for email, p in expected.items():
        m = members[email]
        assert (m["first_name"], m["last_name"], m["phone"]) == (p["FirstName"], p["LastName"], p["Phone"]), email


def test_a_cdm_folder_on_azure_with_the_state_on_azure(tmp_path: Path, capsys: Any, sim: Any, container: Any,
                                                       az_container: str) -> None:
    url, simc = sim
    config = azure_config(tmp_path, url, az_container, rate_scale=1)
    ids = list(range(3_000))
    first = make_segment(ids, invalid_rate=0.01, seed=7)
    rc, event = sync(capsys, config, export_cdm(container, first.profiles, "2026/12/05/1200"))
    assert rc == 0, event
    assert_list_exact(simc, first.expected)
    assert event["failures_uri"].startswith(f"az://{az_container}/segment-export/exports/vip/runs/")
    assert not (tmp_path / "state").exists()
    assert open_store(f"az://{az_container}/segment-export").get("exports/vip/synced") is not None

    kept, versions, _, _ = evolve(ids, changed=0.05, removed=0.02, new=0.03, next_id=3_000)
    second = make_segment(kept, invalid_rate=0.01, versions=versions, seed=7)
    before = len(bulk_posts(simc))
    rc, event = sync(capsys, config, export_cdm(container, second.profiles, "2026/12/06/1200"))
    assert rc == 0, event
    added = set(second.expected) - set(first.expected)
    left = set(first.expected) - set(second.expected)
    updated = {e for e in set(first.expected) & set(second.expected) if first.expected[e] != second.expected[e]}
    c = event["counts"]
    assert (c["added"], c["updated"], c["removed"]) == (len(added), len(updated), len(left)) and updated and left
    assert len(bulk_posts(simc)) - before == -(-(len(added) + len(updated) + len(left)) // 250)
    assert_list_exact(simc, second.expected)


@pytest.fixture
def sim_settings() -> SimSettings:
    """The real account's pace (100 bulk imports a minute), so a 20-batch run is still going when it is killed."""
    return SimSettings(api_keys=(API_KEY,), processing_delay=0.2)


@pytest.mark.slow
def test_kill_9_mid_run_then_a_rerun_is_exact_with_one_completion(tmp_path: Path, capsys: Any, sim: Any,
                                                                  container: Any, az_container: str,
                                                                  azurite: str) -> None:
    url, simc = sim
    config = azure_config(tmp_path, url, az_container, rate_scale=1)
    segment = make_segment(range(5_000), seed=8)
    uri = export_cdm(container, segment.profiles, "2026/12/06/1200")
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": azurite, "SEGMENT_EXPORT_TEST_KEY": API_KEY}
    process = subprocess.Popen([sys.executable, "-m", "worker", "sync", "--config", str(config), "--export", "vip",
                                "--snapshot", uri], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               cwd=Path(__file__).resolve().parents[2])
    store = open_store(f"az://{az_container}/segment-export")

    def accepted() -> int:
        return len([k for k in store.list("exports/vip/runs/") if k.endswith(".accepted")])

    def alive() -> None:
        assert process.poll() is None, "the run ended before it was killed: the test proves nothing"

    try:
        wait_for(lambda: accepted() >= 3, 120, "three accepted batches", check=alive)
    finally:
        process.kill()  # SIGKILL: no checkpoint, no cleanup
        process.wait()
    assert store.get("exports/vip/synced") is None, "committed before the kill?"
    assert 0 < len(bulk_posts(simc, None)) < 20

    rc, event = sync(capsys, config, uri)
    assert rc == 0, event
    assert_list_exact(simc, segment.expected)
    completed = [k for k in store.list("exports/vip/runs/") if k.endswith("/completed")]
    assert len(completed) == 1, completed
    assert event["counts"]["added"] + event["counts"]["updated"] + event["counts"]["unchanged"] == 5_000
