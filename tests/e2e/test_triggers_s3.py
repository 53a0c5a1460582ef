"""Issue 17, must-show 1: S3 event notifications start runs, with no code of ours upstream.

moto's S3, SNS and SQS over real HTTP (ThreadedMotoServer), the worker as a real process on the SQS
requests queue, the ActiveCampaign simulator. A bucket notification (suffix ``_SUCCESS``) goes to the
requests queue, directly or through SNS (enveloped, or with raw message delivery); a job writes 8 part
files under a key with a space and ``dt=``, then ``_SUCCESS``: exactly one run, the list exact. The
test event sent when the notification is configured is acked and logged; the same notification
delivered twice is one run; an object under no trigger is acked and counted.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import Sim, SqsBroker, wait_for, write_config
from worker.contacts.samples import make_segment

PARTS = 8


def _config(tmp_path: Path, sim: Sim, broker: SqsBroker, bucket: str) -> Path:
    config = write_config(tmp_path, sim, broker)
    text = config.read_text().replace(f'snapshot_prefixes = ["file://{tmp_path}/"]',
                                      f'snapshot_prefixes = ["s3://{bucket}/"]')
    config.write_text(text + f'\n[segments.vip-customers]\ntriggers = ["s3://{bucket}/vip/*/*/_SUCCESS"]\n')
    return config


def _write_refresh(s3: Any, bucket: str, folder: str, profiles: list[dict]) -> None:
    """What a Spark job does: part files first, then the ``_SUCCESS`` marker."""
    for i in range(PARTS):
        rows = profiles[i::PARTS]
        body = b"".join(orjson.dumps(p) + b"\n" for p in rows)
        s3.put_object(Bucket=bucket, Key=f"{folder}/part-{i:05d}.jsonl", Body=body)
    s3.put_object(Bucket=bucket, Key=f"{folder}/_SUCCESS", Body=b"")


def _queue_arn(broker: SqsBroker) -> str:
    url = broker.url_of(broker.requests_queue)
    return broker.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


SUFFIX = {"Key": {"FilterRules": [{"Name": "suffix", "Value": "_SUCCESS"}]}}


def _notify_queue(s3: Any, bucket: str, broker: SqsBroker) -> None:
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [
        {"Id": "segments", "QueueArn": _queue_arn(broker), "Events": ["s3:ObjectCreated:*"], "Filter": SUFFIX}]})


def _notify_topic(s3: Any, bucket: str, broker: SqsBroker, *, raw: bool) -> None:
    import boto3

    sns = boto3.client("sns", region_name="us-east-1")
    topic = sns.create_topic(Name=f"{broker.requests_queue}-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=_queue_arn(broker),
                  Attributes={"RawMessageDelivery": "true" if raw else "false"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"TopicConfigurations": [
        {"Id": "segments", "TopicArn": topic, "Events": ["s3:ObjectCreated:*"], "Filter": SUFFIX}]})


def _metric(config: Path, name: str, labels: str) -> float:
    port = next(line.split("=")[1].strip() for line in config.read_text().splitlines()
                if line.startswith("metrics_port"))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("route", ["sqs", "sns", "sns-raw"])
def test_a_success_marker_syncs_the_segment_once(route: str, tmp_path: Path, sim: Sim,
                                                 make_sqs: Callable[..., SqsBroker], s3_bucket: str,
                                                 workers: Callable[..., Any]) -> None:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    broker = make_sqs()
    config = _config(tmp_path, sim, broker, s3_bucket)
    if route == "sqs":
        _notify_queue(s3, s3_bucket, broker)
    else:
        _notify_topic(s3, s3_bucket, broker, raw=route == "sns-raw")
    worker = workers(config)
    wait_for(lambda: "notification acked without a run (test_event)" in worker.text(), 60,
             "the configuration's test event to be acked", check=worker.assert_alive)

    seg = make_segment(range(400), seed=17)
    _write_refresh(s3, s3_bucket, "vip/dt=2026-11-28/batch one", seg.profiles)
    (event,) = broker.wait_completions(1, 120, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)
    sim.assert_list_exact(3, seg.expected)
    assert event["status"] == "succeeded" and event["counts"]["added"] == len(seg.expected)
    assert event["refresh_id"].startswith("object-")
    assert "s3://" + s3_bucket + "/vip/dt%3D2026-11-28/batch%20one/" in worker.text()  # decoded, then located
    assert broker.read_dead() == []

    # an object under no trigger (the notification's suffix matches, our trigger does not): acked, counted
    s3.put_object(Bucket=s3_bucket, Key="elsewhere/_SUCCESS", Body=b"")
    wait_for(lambda: _metric(config, "segment_export_notifications_ignored_total", 'reason="no_trigger"') >= 1,
             60, "the unrelated object to be counted", check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)
    assert len(broker.completions()) == 1 and broker.read_dead() == []
    assert _metric(config, "segment_export_notifications_ignored_total", 'reason="test_event"') == 1


def test_the_same_notification_delivered_twice_is_one_run(tmp_path: Path, sim: Sim,
                                                          make_sqs: Callable[..., SqsBroker], s3_bucket: str,
                                                          workers: Callable[..., Any]) -> None:
    """S3 delivers at least once: the notification moto sent, taken off the queue and put back twice."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    broker = make_sqs()
    config = _config(tmp_path, sim, broker, s3_bucket)
    _notify_queue(s3, s3_bucket, broker)
    seg = make_segment(range(300), seed=3)
    _write_refresh(s3, s3_bucket, "vip/dt=2026-11-29/b", seg.profiles)
    bodies = [body for body, _ in broker._get_all(broker.requests_queue)]
    notes = [b for b in bodies if b"Records" in b]
    assert len(notes) == 1 and len(bodies) == 2, bodies  # the marker's notification and the test event
    broker.publish_raw([notes[0], notes[0]])

    worker = workers(config)
    broker.wait_completions(1, 120, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)
    assert len(broker.completions()) == 1, broker.events
    sim.assert_list_exact(3, seg.expected)
    assert len(sim.bulk_posts()) == -(-len(seg.expected) // 250)  # each batch sent once
    assert "duplicate request: run already completed and published" in worker.text()


def test_a_marker_key_with_an_empty_segment_is_refused_not_read_as_another_folder(
        tmp_path: Path, sim: Sim, make_sqs: Callable[..., SqsBroker], s3_bucket: str,
        workers: Callable[..., Any]) -> None:
    """S3 keys are literal: a job that joined its path with a trailing slash wrote 'vip/dt=1//two/'; an
    older refresh sits in 'vip/dt=1/two/'. The '//' marker is acked and counted as bad_location: it never
    starts a run that would read the other folder (and sync the old members as if they were new)."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    broker = make_sqs()
    config = _config(tmp_path, sim, broker, s3_bucket)
    _notify_queue(s3, s3_bucket, broker)
    worker = workers(config)
    old, new = make_segment(range(200), seed=1), make_segment(range(100, 300), seed=2)
    _write_refresh(s3, s3_bucket, "vip/dt=1/two", old.profiles)
    broker.wait_completions(1, 120, check=worker.assert_alive)
    _write_refresh(s3, s3_bucket, "vip/dt=1//two", new.profiles)
    wait_for(lambda: _metric(config, "segment_export_notifications_ignored_total", 'reason="bad_location"') >= 1,
             60, "the '//' marker to be refused", check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)
    assert len(broker.completions()) == 1 and broker.read_dead() == []
    sim.assert_list_exact(3, old.expected)  # untouched: the next correct refresh repairs nothing it broke
    assert "keys are literal" in worker.text()
