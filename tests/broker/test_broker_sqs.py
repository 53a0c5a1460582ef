"""SQS-only behaviour (moto's server over real HTTP): redrive, visibility holds, raw bodies, attributes,
``DelaySeconds``, and a settle that fails for real (a deleted dead-letter queue).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator

import pytest

from worker.broker import ERROR_CLASS_HEADER, ERROR_HEADER, BrokerBridge, Topology, publish_once

from .support import (
    BrokerEnv,
    FlakyProxy,
    event_body,
    eventually,
    foreign_publish,
    running,
    sqs_cleanup,
    sqs_client,
    sqs_counts,
    sqs_depth,
    sqs_env,
    sqs_receive,
    sqs_url_of,
    unique_topology,
)


@pytest.fixture
def sqs(sqs_url: str) -> BrokerEnv:
    return sqs_env(sqs_url)


@pytest.fixture
def topo(sqs: BrokerEnv) -> Iterator[Topology]:
    topology = unique_topology(max_receive_count=2)
    yield topology
    sqs_cleanup(topology)


async def test_declare_creates_queues_with_a_redrive_policy(sqs: BrokerEnv, topo: Topology) -> None:
    bridge = sqs.bridge(topo, visibility_timeout=7)
    async with running(bridge):
        attrs = sqs_client().get_queue_attributes(QueueUrl=sqs_url_of(topo.requests_queue),
                                                  AttributeNames=["All"])["Attributes"]
        policy = json.loads(attrs["RedrivePolicy"])
        assert policy["deadLetterTargetArn"].endswith(":" + topo.dead_letter_queue)
        assert int(policy["maxReceiveCount"]) == 2
        assert attrs["VisibilityTimeout"] == "7"
        sqs_url_of(topo.events_exchange)  # exists
    # Declaring again (a second replica, a restart) is harmless.
    again = sqs.bridge(topo, visibility_timeout=7)
    async with running(again):
        assert again.connected


async def test_bodies_that_look_like_base64_or_kombu_envelopes_arrive_verbatim(sqs: BrokerEnv,
                                                                              topo: Topology) -> None:
    bodies = [b"eyJpZCI6ICJ4In0=",  # base64 of {"id": "x"}: stock kombu would decode it
              json.dumps({"body": "e30=", "properties": {"delivery_info": {}}}).encode(),
              json.dumps({"name": "Zoë ✓"}, ensure_ascii=False).encode()]
    bridge = sqs.bridge(topo)
    async with running(bridge) as inbox:
        for body in bodies:
            foreign_publish(sqs, topo, body)
        got = [d.body for d in await inbox.take(3)]
        assert sorted(got) == sorted(bodies)


async def test_requeued_message_is_redriven_to_the_dlq(sqs: BrokerEnv, topo: Topology) -> None:
    bridge = sqs.bridge(topo)
    async with running(bridge) as inbox:
        foreign_publish(sqs, topo, event_body(1))
        # maxReceiveCount 2: received twice, then SQS moves it to the DLQ instead of a third receive.
        counts = []
        for _ in range(2):
            d = await inbox.next()
            counts.append(d.receive_count)
            assert await bridge.requeue(d)
        dead = await asyncio.to_thread(sqs_receive, topo.dead_letter_queue, 15.0)
        assert counts == [1, 2]
        assert sqs_depth(topo.requests_queue) == 0
        assert inbox.empty()
    assert dead is not None and dead["Body"].encode() == event_body(1)


async def test_hold_keeps_a_message_invisible_past_its_visibility_timeout(sqs: BrokerEnv, topo: Topology) -> None:
    bridge = sqs.bridge(topo, prefetch=1, visibility_timeout=2)  # prefetch 1: it takes nothing else meanwhile
    async with running(bridge) as inbox:
        foreign_publish(sqs, topo, event_body(1))
        d = await inbox.next()
        lapsed_at = time.monotonic() + 2  # when the message would be visible again without holds
        holding = True

        async def keep_holding() -> None:
            while holding:
                assert await bridge.hold(d)
                await asyncio.sleep(0.5)  # a heartbeat's pace, not a wait for something

        holder = asyncio.create_task(keep_holding())
        try:
            # Time itself is what the hold must beat: let the original timeout lapse twice over, then
            # read the queue's state (held: in flight, not visible) rather than watch for a while.
            await asyncio.sleep(lapsed_at + 2 - time.monotonic())
            assert sqs_counts(topo.requests_queue) == {"visible": 0, "in_flight": 1, "delayed": 0}
            assert sqs_receive(topo.requests_queue, 0) is None, "a held message reappeared"
        finally:
            holding = False
            await holder
        # No more holds: the message becomes visible again once its timeout lapses.
        back = await asyncio.to_thread(sqs_receive, topo.requests_queue, 10.0)
        assert back is not None and back["Body"].encode() == event_body(1)
        assert int(back["Attributes"]["ApproximateReceiveCount"]) == 2


async def test_dead_letter_keeps_the_reason_when_there_are_many_attributes(sqs: BrokerEnv, topo: Topology) -> None:
    headers = {f"h{n:02d}": f"v{n}" for n in range(12)}  # more than the 10 SQS allows
    bridge = sqs.bridge(topo)
    async with running(bridge) as inbox:
        foreign_publish(sqs, topo, b"{}", headers=dict(list(headers.items())[:10]))
        d = await inbox.next()
        assert len(d.headers) == 10
        assert await bridge.dead_letter(d, "x" * 5000, "too_long")
    dead = sqs_receive(topo.dead_letter_queue)
    assert dead is not None
    attrs = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert len(attrs) == 10
    assert attrs[ERROR_CLASS_HEADER] == "too_long"
    assert attrs[ERROR_HEADER] == "x" * 1000
    assert sqs_depth(topo.requests_queue) == 0


async def test_publish_once_to_sqs_is_readable_by_plain_boto3(sqs: BrokerEnv, topo: Topology) -> None:
    await asyncio.to_thread(publish_once, sqs.url, topo, b'{"id":"c1"}', to="events", event_type="export.completed",
                            transport_options=sqs.options)
    m = sqs_receive(topo.events_exchange)
    assert m is not None and m["Body"] == '{"id":"c1"}'
    assert m["MessageAttributes"]["event_type"]["StringValue"] == "export.completed"


async def test_deliveries_survive_a_reconnect(sqs: BrokerEnv, topo: Topology, moto_server: str) -> None:
    port = int(moto_server.rsplit(":", 1)[1])
    proxy = FlakyProxy(("127.0.0.1", port))
    try:
        url = f"sqs://testing:testing@127.0.0.1:{proxy.port}"
        bridge = BrokerBridge(url, topo, prefetch=2, transport_options=dict(sqs.options))
        async with running(bridge) as inbox:
            foreign_publish(sqs, topo, event_body(1))
            d = await inbox.next()
            proxy.cut()
            await eventually(lambda: not bridge.connected, 30, "noticed the outage")
            proxy.restore()
            # The receipt handle outlives the connection: the ack waits for the reconnect and succeeds.
            assert await asyncio.wait_for(bridge.ack(d), 30)
            assert bridge.connected and bridge.reconnects >= 1
        assert sqs_depth(topo.requests_queue) == 0
        assert inbox.empty()
    finally:
        proxy.close()


async def test_delay_seconds_are_rounded_up_and_capped_at_900(sqs: BrokerEnv, topo: Topology) -> None:
    bridge = sqs.bridge(topo)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(5000), delay_seconds=5000)  # SQS itself refuses over 900
        assert sqs_counts(topo.requests_queue) == {"visible": 0, "in_flight": 0, "delayed": 1}
        await bridge.publish_request(event_body(1), delay_seconds=0.2)  # a fraction: one whole second
        d = await inbox.next(timeout=20)
        assert d.body == event_body(1) and d.receive_count == 1
        assert await bridge.ack(d)
        assert sqs_counts(topo.requests_queue) == {"visible": 0, "in_flight": 0, "delayed": 1}


async def test_a_dead_letter_to_a_deleted_dlq_is_reported_and_the_message_comes_back(
        sqs: BrokerEnv, topo: Topology, caplog: pytest.LogCaptureFixture) -> None:
    bridge = sqs.bridge(topo, visibility_timeout=1)
    async with running(bridge) as inbox:
        foreign_publish(sqs, topo, event_body(1))
        d = await inbox.next()
        sqs_client().delete_queue(QueueUrl=sqs_url_of(topo.dead_letter_queue))  # deleted under a running worker
        with caplog.at_level(logging.WARNING, logger="worker.broker"):
            assert not await bridge.dead_letter(d, "bad event", "malformed_event")
        assert any(r.getMessage().startswith("dead_letter failed (QueueDoesNotExist") for r in caplog.records)
        assert bridge.unsettled() == [], "given up: its prefetch slot is free again"
        # Left as it was: it reappears once its visibility lapses (a natural backoff) and is taken again.
        back = await inbox.next(timeout=20)
        assert back.body == event_body(1) and back.receive_count == 2
        assert await bridge.ack(back)
