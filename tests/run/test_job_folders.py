"""Issue 16 must-show 1: a Spark-style job folder of Parquet parts synced end to end, on disk and on moto's S3.

200,000 profiles written by pyarrow as 8 part files plus ``_SUCCESS``, with a decoy ``_temporary/`` folder
(a half-written attempt holding other people) and ``.crc`` files: the list is exact. The same segment
without ``_SUCCESS`` and an export that requires the marker: ``snapshot_incomplete``, nothing sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.run.conftest import API_KEY, bulk_posts, subscribed, write_config
from worker.cli import main
from worker.contacts.samples import make_segment, person
from worker.sim import SimClient, SimSettings

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

COLUMNS = ("EmailAddress", "FirstName", "LastName", "Phone")


def write_job_folder(folder: Path, profiles: list[dict], parts: int, *, marker: bool = True) -> None:
    """``profiles`` as ``parts`` Parquet part files, as Spark lays a committed (or unfinished) job out."""
    folder.mkdir(parents=True)
    size = -(-len(profiles) // parts)
    for i in range(parts):
        chunk = profiles[i * size:(i + 1) * size]
        table = pa.table({c: [p.get(c) for p in chunk] for c in COLUMNS} | {"Unmapped": [b"x" * 8] * len(chunk)})
        pq.write_table(table, folder / f"part-{i:05d}-8f3e-c000.snappy.parquet", row_group_size=10_000)
        (folder / f".part-{i:05d}-8f3e-c000.snappy.parquet.crc").write_bytes(b"crc")
    decoy = folder / "_temporary" / "0" / "_temporary" / "attempt_1"
    decoy.mkdir(parents=True)
    intruders = [person(i) for i in range(900_000, 900_050)]
    pq.write_table(pa.table({c: [p[c] for p in intruders] for c in COLUMNS}), decoy / "part-00008-8f3e-c000.parquet")
    if marker:
        (folder / "_SUCCESS").write_bytes(b"")


def upload(s3: Any, bucket: str, folder: Path, prefix: str) -> str:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.put_object(Bucket=bucket, Key=prefix + path.relative_to(folder).as_posix(), Body=path.read_bytes())
    return f"s3://{bucket}/{prefix}"


@pytest.fixture
def sim_settings() -> SimSettings:
    """The account's limits scaled as the config's budget is (rate_scale 100), so 200,000 take seconds."""
    return SimSettings(api_keys=(API_KEY,), processing_delay=0.1, rate_scale=100)


@pytest.fixture
def s3(moto_server: str) -> Any:
    import boto3

    return boto3.client("s3")


def sync(capsys: Any, config: Path, snapshot: str, *extra: str) -> tuple[int, dict]:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", snapshot, *extra])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def assert_list_exact(simc: SimClient, expected: dict[str, dict]) -> None:
    members = subscribed(simc)
    assert set(members) == set(expected)
    for email, p in expected.items():
        m = members[email]
        assert (m["first_name"], m["last_name"], m["phone"]) == (p["FirstName"], p["LastName"], p["Phone"]), email


@pytest.mark.slow
def test_200k_parquet_parts_with_a_marker_on_disk_and_on_s3(tmp_path: Path, capsys: Any, sim: Any,
                                                            s3: Any, s3_bucket: str) -> None:
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=100, export="require_marker = true")
    segment = make_segment(range(200_000), invalid_rate=0.001, seed=16)
    write_job_folder(tmp_path / "vip", segment.profiles, 8)

    rc, event = sync(capsys, config, str(tmp_path / "vip"))
    assert rc == 0, event
    assert event["counts"]["profiles"] == len(segment.profiles) and event["counts"]["removed"] == 0
    assert event["counts"]["added"] == len(segment.expected) > 199_000
    assert_list_exact(simc, segment.expected)

    # the same parts on S3, named by their marker: read whole, so nothing changed and nothing is sent
    before = len(bulk_posts(simc))
    uri = upload(s3, s3_bucket, tmp_path / "vip", "lake/vip/dt=2026-12-06/")
    rc, event = sync(capsys, config, uri + "_SUCCESS")
    assert rc == 0, event
    assert event["counts"]["unchanged"] == len(segment.expected) and event["counts"]["removed"] == 0
    assert len(bulk_posts(simc)) == before
    assert_list_exact(simc, segment.expected)


@pytest.mark.parametrize("where", ["file", "s3"])
def test_without_the_marker_a_required_one_fails_snapshot_incomplete_and_nothing_is_sent(
        tmp_path: Path, capsys: Any, sim: Any, where: str, request: pytest.FixtureRequest) -> None:
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=100, export="require_marker = true")
    segment = make_segment(range(2_000), seed=16)
    write_job_folder(tmp_path / "vip", segment.profiles, 8, marker=False)
    uri = str(tmp_path / "vip")
    if where == "s3":
        s3, bucket = request.getfixturevalue("s3"), request.getfixturevalue("s3_bucket")
        uri = upload(s3, bucket, tmp_path / "vip", "vip/")
    rc, event = sync(capsys, config, uri)
    assert rc == 1 and event["type"] == "export.failed", event
    assert event["error"]["code"] == "snapshot_incomplete"
    assert "has no _SUCCESS marker and the export sets require_marker" in event["error"]["message"]
    assert simc.requests() == [] and subscribed(simc) == {}

    # the job commits: the same folder is synced whole
    (tmp_path / "vip" / "_SUCCESS").write_bytes(b"")
    if where == "s3":
        s3.put_object(Bucket=bucket, Key="vip/_SUCCESS", Body=b"")
    rc, event = sync(capsys, config, uri)
    assert rc == 0, event
    assert_list_exact(simc, segment.expected)
