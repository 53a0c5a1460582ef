"""Must-show 5: a run longer than ``max_unacked_seconds`` hands itself on through a continuation and still
finishes exactly once; on SQS the visibility heartbeat keeps the held message from reappearing meanwhile.

The runs are made slow by the worker's own budget (``rate_scale`` of the worker config, below the
simulator's, so nothing is refused), not by timing assumptions.
"""

from __future__ import annotations

import boto3
import orjson

from tests.e2e.conftest import records, refreshed, run_id_for, wait_for, write_config
from worker.contacts.samples import make_segment, write_jsonl

HANDED_ON = "run handed on through a continuation"


def _check_outcome(sim, broker, tmp_path, seg, run_id):
    done = broker.completions()
    assert [e["run_id"] for e in done] == [run_id], done
    assert [e for e in broker.events if e["type"] != "export.completed"] == []
    c = done[0]["counts"]
    assert c["added"] == len(seg.expected) and c["failed"] == 0 and c["profiles"] == len(seg.profiles)
    sim.assert_list_exact(3, seg.expected)
    batches = -(-len(seg.expected) // 250)
    assert records(tmp_path, "vip", run_id) == (0, 0, 0)  # a committed run's records are tidied away
    # a checkpoint waits for the batches in flight: nothing is sent twice
    assert len(sim.bulk_posts(None)) == batches
    assert broker.read_dead() == []


def test_long_run_continues_and_finishes_once_rabbitmq(tmp_path, sim, rabbit, workers):
    # 80 batches at ~6.7 bulk imports/s: well past the 4.8 s checkpoint (80 % of 6 s), with batches left to
    # send by then (the importer has at most 16 POSTs in hand; a stop only holds back the rest)
    seg = make_segment(range(20_000), seed=21)
    snap = write_jsonl(tmp_path / "snap.jsonl", seg.profiles)
    worker = workers(write_config(tmp_path, sim, rabbit, rate_scale=4, worker="max_unacked_seconds = 6"))
    rabbit.publish(refreshed(snap, refresh_id="long-1"))
    rabbit.wait_completions(1, 120, check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    _check_outcome(sim, rabbit, tmp_path, seg, run_id_for("vip", "long-1"))
    assert worker.alive()
    assert worker.text().count(HANDED_ON) >= 1, (
        "the run was never handed on: its delivery stayed unacked past max_unacked_seconds = 6")


def test_long_run_on_sqs_heartbeat_keeps_message_hidden(tmp_path, sim, make_sqs, moto_server, workers):
    """The queues have a 4 s visibility timeout and the worker is told so (broker_options); a run holds its
    delivery for most of ``max_unacked_seconds = 12``. A probe (a second consumer) keeps looking at the queue:
    the original message must never be visible again (it is deleted once the continuation is published).
    ``concurrency = 1`` so the worker itself does not poll while it holds a message (it would otherwise
    win every race for a reappearing message against the probe, hiding the failure)."""
    broker = make_sqs(visibility_timeout=4, max_receive_count=100)
    seg = make_segment(range(10_000), seed=22)
    snap = write_jsonl(tmp_path / "snap.jsonl", seg.profiles)
    worker = workers(write_config(tmp_path, sim, broker, rate_scale=1.5,
                                  worker="max_unacked_seconds = 12\nconcurrency = 1"))
    event = refreshed(snap, refresh_id="long-sqs")
    run_id = run_id_for("vip", "long-sqs")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    url = broker.url_of(broker.requests_queue)
    original = sqs.send_message(QueueUrl=url, MessageBody=orjson.dumps(event).decode())["MessageId"]
    wait_for(lambda: records(tmp_path, "vip", run_id)[0] >= 1, 60, "the run to start", check=worker.assert_alive)

    seen: dict[str, int] = {}

    def probe() -> bool:
        """Peek (visibility 0: the message stays available to the worker) at whatever is visible."""
        resp = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0,
                                   AttributeNames=["All"])
        for m in resp.get("Messages", []):
            seen[m["MessageId"]] = seen.get(m["MessageId"], 0) + 1
        assert original not in seen, "the held message became visible again: the visibility heartbeat failed"
        broker.read_events()
        return bool(broker.completions())

    wait_for(probe, 150, "the run to complete", interval=0.5, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)
    _check_outcome(sim, broker, tmp_path, seg, run_id)
    assert worker.alive()
    assert worker.text().count(HANDED_ON) >= 1, (
        "the run was never handed on: its delivery stayed unacked past max_unacked_seconds = 12")
