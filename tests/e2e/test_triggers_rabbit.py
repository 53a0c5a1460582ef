"""Issue 17, must-show 2 (RabbitMQ): an EventBridge "Object Created" and a CloudEvent start runs; an object
under no trigger is acked and counted; a malformed notification and a marker outside ``snapshot_prefixes``
are dead-lettered with their reasons, and nothing is read or sent for them. Snapshots on moto's S3."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tests.e2e.conftest import RabbitBroker, Sim, wait_for, write_config
from worker.contacts.samples import make_segment


def _metric(config: Path, name: str, labels: str) -> float:
    port = next(line.split("=")[1].strip() for line in config.read_text().splitlines()
                if line.startswith("metrics_port"))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _eventbridge(bucket: str, key: str, sequencer: str, time: str) -> bytes:
    return orjson.dumps({
        "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
        "source": "aws.s3", "account": "111122223333", "time": time, "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": 0, "etag": "d41d8cd98f00b204e9800998ecf8427e",
                              "sequencer": sequencer},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"}})


def test_eventbridge_and_cloudevent_start_runs_unrelated_acked_bad_dead_lettered(
        tmp_path: Path, sim: Sim, rabbit: RabbitBroker, s3_bucket: str, workers: Callable[..., Any]) -> None:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=f"{s3_bucket}-outside")
    first, second = make_segment(range(200), seed=1), make_segment(range(20, 260), seed=2)  # 10% leave: under the guard
    for folder, seg in (("vip/one", first), ("vip/two", second)):
        s3.put_object(Bucket=s3_bucket, Key=f"{folder}/part-00000.jsonl",
                      Body=b"".join(orjson.dumps(p) + b"\n" for p in seg.profiles))
        s3.put_object(Bucket=s3_bucket, Key=f"{folder}/_SUCCESS", Body=b"")
    s3.put_object(Bucket=f"{s3_bucket}-outside", Key="vip/x/part-00000.jsonl",
                  Body=b"".join(orjson.dumps(p) + b"\n" for p in first.profiles))
    config = write_config(tmp_path, sim, rabbit)
    config.write_text(config.read_text().replace(f'snapshot_prefixes = ["file://{tmp_path}/"]',
                                                 f'snapshot_prefixes = ["s3://{s3_bucket}/"]')
                      + f'\n[segments.vip-customers]\ntriggers = ["s3://{s3_bucket}/vip/*/_SUCCESS", '
                        f'"s3://{s3_bucket}-outside/vip/*/_SUCCESS"]\n')
    worker = workers(config)

    # 1. EventBridge: the first refresh
    rabbit.publish_raw([_eventbridge(s3_bucket, "vip/one/_SUCCESS", "0001", "2026-11-28T10:00:00Z")])
    (done,) = rabbit.wait_completions(1, 120, check=worker.assert_alive)
    sim.assert_list_exact(3, first.expected)
    assert done["refresh_id"].startswith("object-")

    # 2. a CloudEvent of our own type: the second refresh (format from the part names)
    cloudevent = {"specversion": "1.0", "id": "refresh-2", "source": "/cdp/segments", "type": "segment.refreshed",
                  "time": "2026-11-28T11:00:00Z", "datacontenttype": "application/json",
                  "data": {"segment": {"id": "vip-customers"}, "refresh_id": "two",
                           "snapshot": {"uri": f"s3://{s3_bucket}/vip/two/"}}}
    rabbit.publish_raw([orjson.dumps(cloudevent)])
    rabbit.wait_completions(2, 120, check=worker.assert_alive)
    sim.assert_list_exact(3, second.expected)

    # 3. unrelated, malformed, outside the prefixes: nothing runs, nothing is sent
    posts = len(sim.bulk_posts())
    malformed = orjson.loads(_eventbridge(s3_bucket, "vip/three/_SUCCESS", "0003", "yesterday"))
    rabbit.publish_raw([
        _eventbridge(s3_bucket, "exports/other/_SUCCESS", "0004", "2026-11-28T12:00:00Z"),
        orjson.dumps(malformed),
        _eventbridge(f"{s3_bucket}-outside", "vip/x/_SUCCESS", "0005", "2026-11-28T12:00:00Z"),
    ])
    dead = wait_for(lambda: rabbit.read_dead() if len(rabbit.read_dead()) >= 2 else None, 60,
                    "two dead-lettered messages", check=worker.assert_alive)
    reasons = sorted(str(h.get("x-segment-export-error")) for _, h in dead)
    assert any("time" in r and "RFC 3339" in r for r in reasons), reasons
    assert any("outside the snapshot prefixes" in r for r in reasons), reasons
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert _metric(config, "segment_export_notifications_ignored_total", 'reason="no_trigger"') == 1
    assert len(rabbit.completions()) == 2 and len(sim.bulk_posts()) == posts
    sim.assert_list_exact(3, second.expected)


def test_a_triggered_csv_folder_run_continues_as_csv(tmp_path: Path, sim: Sim, rabbit: RabbitBroker,
                                                      s3_bucket: str, workers: Callable[..., Any]) -> None:
    """A run started by a marker carries no format (the readers decide by the parts' names); handed on past
    ``max_unacked_seconds``, its continuation must not invent one (a folder is not JSON Lines)."""
    import csv
    import io

    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    seg = make_segment(range(20_000), seed=23)
    columns = list(seg.profiles[0])
    for i in range(4):
        text = io.StringIO()
        writer = csv.DictWriter(text, columns)
        writer.writeheader()
        writer.writerows(seg.profiles[i::4])
        s3.put_object(Bucket=s3_bucket, Key=f"vip/csv/part-{i:05d}.csv", Body=text.getvalue().encode())
    s3.put_object(Bucket=s3_bucket, Key="vip/csv/_SUCCESS", Body=b"")
    config = write_config(tmp_path, sim, rabbit, rate_scale=4, worker="max_unacked_seconds = 6")
    config.write_text(config.read_text().replace(f'snapshot_prefixes = ["file://{tmp_path}/"]',
                                                 f'snapshot_prefixes = ["s3://{s3_bucket}/"]')
                      + f'\n[segments.vip-customers]\ntriggers = ["s3://{s3_bucket}/vip/*/_SUCCESS"]\n')
    worker = workers(config)
    rabbit.publish_raw([_eventbridge(s3_bucket, "vip/csv/_SUCCESS", "0042", "2026-11-28T10:00:00Z")])
    (done,) = rabbit.wait_completions(1, 180, check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert "run handed on through a continuation" in worker.text()
    assert done["counts"]["added"] == len(seg.expected) and done["status"] == "succeeded"
    sim.assert_list_exact(3, seg.expected)
    assert len(sim.bulk_posts(None)) == -(-len(seg.expected) // 250)  # nothing sent twice across the hand-over
