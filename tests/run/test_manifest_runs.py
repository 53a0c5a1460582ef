"""Issue 16 must-show 2: a Redshift-style VERBOSE manifest synced exactly; one claiming more records than its
files hold fails ``snapshot_incomplete`` with nothing sent (on moto's S3, the simulator over real HTTP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.run.conftest import subscribed, write_config
from worker.cli import main
from worker.contacts.samples import make_segment

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

COLUMNS = ("EmailAddress", "FirstName", "LastName", "Phone")


@pytest.fixture
def s3(moto_server: str) -> Any:
    import boto3

    return boto3.client("s3")


def unload(s3: Any, bucket: str, profiles: list[dict], *, slices: int = 4, overclaim: int = 0) -> str:
    """``profiles`` as ``UNLOAD ... TO 's3://bucket/unload/vip_' FORMAT PARQUET MANIFEST VERBOSE`` writes them."""
    entries = []
    size = -(-len(profiles) // slices)
    for i in range(slices):
        chunk = profiles[i * size:(i + 1) * size]
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({c: [p.get(c) for p in chunk] for c in COLUMNS}), sink)
        data = sink.getvalue().to_pybytes()
        key = f"unload/vip_{i:04d}_part_00.parquet"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        claimed = len(chunk) + (overclaim if i == 0 else 0)
        entries.append({"url": f"s3://{bucket}/{key}", "meta": {"content_length": len(data), "record_count": claimed}})
    total = len(profiles) + overclaim
    manifest = {"entries": entries, "meta": {"content_length": sum(e["meta"]["content_length"] for e in entries),
                                             "record_count": total}}
    s3.put_object(Bucket=bucket, Key="unload/vip_manifest", Body=orjson.dumps(manifest))
    return f"s3://{bucket}/unload/vip_manifest"


def sync(capsys: Any, config: Path, snapshot: str) -> tuple[int, dict]:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", snapshot])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def test_a_verbose_manifest_is_synced_exactly(tmp_path: Path, capsys: Any, sim: Any, s3: Any, s3_bucket: str) -> None:
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export="require_marker = true")
    segment = make_segment(range(3_000), seed=2)
    s3.put_object(Bucket=s3_bucket, Key="unload/vip_0009_part_00.parquet", Body=b"an older unload's file, unlisted")
    rc, event = sync(capsys, config, unload(s3, s3_bucket, segment.profiles))
    assert rc == 0, event
    assert event["counts"]["profiles"] == 3_000
    members = subscribed(simc)
    assert set(members) == set(segment.expected)
    assert all(members[e]["first_name"] == p["FirstName"] for e, p in segment.expected.items())


def test_a_manifest_claiming_more_records_fails_snapshot_incomplete_and_sends_nothing(
        tmp_path: Path, capsys: Any, sim: Any, s3: Any, s3_bucket: str) -> None:
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20)
    segment = make_segment(range(3_000), seed=2)
    rc, event = sync(capsys, config, unload(s3, s3_bucket, segment.profiles, overclaim=1))
    assert rc == 1 and event["type"] == "export.failed", event
    assert event["error"]["code"] == "snapshot_incomplete"
    assert "vip_0000_part_00.parquet holds 750 rows where its manifest's entry says 751" in event["error"]["message"]
    sent = [r for r in simc.requests() if r["method"] != "GET"]
    assert sent == [] and simc.members(3) == {}
