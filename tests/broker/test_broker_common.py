"""Behaviour every transport must share: RabbitMQ, SQS (moto) and memory:// run the same tests."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest

from worker.broker import ERROR_CLASS_HEADER, ERROR_HEADER, Delivery, Topology, publish_once

from .support import (
    BrokerEnv,
    Inbox,
    amqp_consumers,
    amqp_count,
    cleanup_topology,
    depth,
    event_body,
    eventually,
    foreign_get,
    foreign_publish,
    ready,
    running,
    sqs_counts,
    tap_events,
    unique_topology,
)


async def test_consumes_raw_bytes_from_a_plain_publisher(env: BrokerEnv, topology: Topology) -> None:
    # A JSON object with a "properties" key looks like kombu's own envelope: it must still arrive untouched.
    tricky = json.dumps({"id": "e1", "properties": {"delivery_tag": "x"}, "body": "QUJD"}).encode()
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        assert bridge.connected and bridge.kind == env.kind
        foreign_publish(env, topology, tricky, headers={"trace-id": "abc"})
        foreign_publish(env, topology, b'{"id":"e2"}')
        first, second = await inbox.take(2)
        assert first.body == tricky and second.body == b'{"id":"e2"}'
        assert first.headers.get("trace-id") == "abc"
        assert first.receive_count == 1 and not first.redelivered
        assert await bridge.ack(first) and await bridge.ack(second)


async def test_published_events_are_plain_json_for_plain_consumers(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge):
        tap = tap_events(env, topology)
        body = json.dumps({"id": "done-1", "status": "succeeded"}).encode()
        await bridge.publish_event("export.completed", body)
        got = foreign_get(env, tap)
        assert got is not None
        assert got[0] == body
        if env.kind == "amqp":
            assert got[2] == "application/json"
        if env.kind == "sqs":
            assert got[1].get("event_type") == "export.completed"


async def test_publish_request_round_trip_with_headers(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1), headers={"x-continuation": "run-7"})
        d = await inbox.next()
        assert d.body == event_body(1)
        assert d.headers.get("x-continuation") == "run-7"
        assert await bridge.ack(d)


async def test_prefetch_bounds_what_is_taken(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology, prefetch=2)
    async with running(bridge) as inbox:
        for n in range(5):
            await bridge.publish_request(event_body(n))
        held = await inbox.take(2)
        # The broker counts a message as taken when it hands it out, before we see it: had the bridge
        # taken a third, it would be missing here already.
        assert ready(env, topology.requests_queue) == 3, "took more than prefetch"
        assert [d for d, _ in bridge.unsettled()] == held
        assert await bridge.ack(held[0])
        third = await inbox.next()
        assert ready(env, topology.requests_queue) == 2, "took more than prefetch after an ack"
        assert await bridge.ack(held[1]) and await bridge.ack(third)
        rest = await inbox.take(2)
        for d in rest:
            assert await bridge.ack(d)
        assert sorted(json.loads(d.body)["id"] for d in [*held, third, *rest]) == [f"evt-{n}" for n in range(5)]
        assert bridge.unsettled() == []


async def test_ack_removes_and_stop_returns_unacked(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1))
        await bridge.publish_request(event_body(2))
        a, b = await inbox.take(2)
        assert await bridge.ack(a)
        assert not await bridge.ack(a), "a second settle of the same delivery is refused"
    # b was never acked: stopping gave it back, and a new consumer gets it (only it).
    again = env.bridge(topology)
    async with running(again) as inbox:
        d = await inbox.next()
        assert d.body == b.body
        assert d.redelivered or env.kind == "sqs"  # SQS counts receives instead
        assert d.receive_count >= 2 or env.kind == "memory"
        assert await again.ack(d)
    # Counted after the consumer stopped: an unacked message would be back in the queue by now.
    assert depth(env, topology.requests_queue) == 0
    assert inbox.empty()


async def test_requeue_redelivers_now(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1))
        d = await inbox.next()
        assert await bridge.requeue(d)
        again = await inbox.next()
        assert again.body == d.body
        assert again.redelivered and again.receive_count == 2
        assert await bridge.ack(again)


async def test_dead_letter_carries_the_reason(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        foreign_publish(env, topology, b"{not json", headers={"trace-id": "t-1"})
        d = await inbox.next()
        assert await bridge.dead_letter(d, "body is not valid JSON: line 1", "malformed_event")
        assert bridge.unsettled() == []
    # After the consumer stopped, so an original that was not acked would be counted here.
    assert depth(env, topology.requests_queue) == 0, "a dead-lettered message must not come back"
    assert inbox.empty()
    got = foreign_get(env, topology.dead_letter_queue)
    assert got is not None
    body, headers, _ = got
    assert body == b"{not json"
    assert headers[ERROR_HEADER] == "body is not valid JSON: line 1"
    assert headers[ERROR_CLASS_HEADER] == "malformed_event"
    assert headers["trace-id"] == "t-1"
    assert depth(env, topology.requests_queue) == 0


async def test_pause_stops_taking_and_resume_restarts(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        assert bridge.consuming
        bridge.pause()
        await eventually(lambda: not bridge.consuming, what="the consumer is cancelled")
        if env.kind == "amqp":
            assert amqp_consumers(topology.requests_queue) == 0
        await bridge.publish_request(event_body(1))
        # No consumer (SQS/memory: the bridge does not poll while paused): the message stays in the queue.
        assert ready(env, topology.requests_queue) == 1
        assert inbox.empty()
        bridge.resume()
        d = await inbox.next()
        assert d.body == event_body(1)
        assert await bridge.ack(d)
        assert bridge.consuming


async def test_publish_once_declares_and_publishes(env: BrokerEnv) -> None:
    topology = unique_topology()
    try:
        await asyncio.to_thread(publish_once, env.url, topology, event_body(9), to="requests",
                                transport_options=env.options)
        tap = tap_events(env, topology)
        await asyncio.to_thread(publish_once, env.url, topology, b'{"id":"ev"}', to="events",
                                event_type="export.failed", transport_options=env.options)
        assert foreign_get(env, topology.requests_queue) is not None
        got = foreign_get(env, tap)
        assert got is not None and got[0] == b'{"id":"ev"}'
    finally:
        cleanup_topology(env.kind, topology, (f"{topology.events_exchange}-tap",))


async def test_settling_after_stop_is_refused_not_hung(env: BrokerEnv, topology: Topology,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    bridge = env.bridge(topology)
    inbox = Inbox()
    async with running(bridge, inbox):
        await bridge.publish_request(event_body(1))
        d = await inbox.next()
    with caplog.at_level(logging.WARNING, logger="worker.broker"):
        assert not await bridge.ack(d)
        assert not await bridge.defer(d, 5)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("worker.broker")] == [
        "ack not done (broker bridge is not running); the broker will deliver the message again",
        "defer refused: the delivery was already settled or given back",
    ]
    assert not bridge.connected
    assert bridge.unsettled() == []


async def test_unsettled_lists_what_is_held_oldest_first(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        assert bridge.unsettled() == []
        await bridge.publish_request(event_body(1))
        first = await inbox.next()
        await bridge.publish_request(event_body(2))
        second = await inbox.next()
        held = bridge.unsettled()
        assert held == [(first, first.received_at), (second, second.received_at)]
        assert first.received_at <= second.received_at <= time.monotonic()
        assert await bridge.ack(first)
        assert bridge.unsettled() == [(second, second.received_at)]
        assert await bridge.requeue(second)
        again = await inbox.next()
        assert [d for d, _ in bridge.unsettled()] == [again]
        assert again.received_at > second.received_at
        assert await bridge.ack(again)
        assert bridge.unsettled() == []


async def test_a_delivery_the_callback_cannot_take_is_requeued(env: BrokerEnv, topology: Topology) -> None:
    inbox = Inbox()
    refused: list[Delivery] = []

    def on_delivery(d: Delivery) -> None:
        if not refused:
            refused.append(d)
            raise RuntimeError("the service could not take it")
        inbox(d)

    bridge = env.bridge(topology)
    await bridge.start(on_delivery, start_timeout=15)
    try:
        await bridge.publish_request(event_body(1))
        again = await inbox.next()
        assert again.body == event_body(1) and refused[0].body == event_body(1)
        assert again.receive_count == 2 or env.kind == "memory"  # memory:// counts nothing
        assert [d for d, _ in bridge.unsettled()] == [again]
        assert await bridge.ack(again)
    finally:
        await bridge.stop()


# ------------------------------------------------------------------------------ delayed delivery


def waiting_delayed(env: BrokerEnv, topology: Topology, seconds: float) -> int:
    """Where a delayed message waits: RabbitMQ's delay queue, SQS's delayed count (memory://: in the bridge)."""
    if env.kind == "amqp":
        return amqp_count(topology.delay_queue(seconds))
    assert env.kind == "sqs", "memory:// keeps delayed messages inside the bridge, out of sight"
    return sqs_counts(topology.requests_queue)["delayed"]


async def test_a_delayed_request_waits_outside_the_requests_queue(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1), delay_seconds=300)
        assert ready(env, topology.requests_queue) == 0, "not due for 5 minutes: not in the requests queue"
        if env.kind != "memory":
            assert waiting_delayed(env, topology, 300) == 1
        assert inbox.empty()
    if env.kind == "memory":
        # memory:// keeps the delay in the process: a bridge that stops publishes it early, never loses it.
        assert ready(env, topology.requests_queue) == 1
    else:
        assert ready(env, topology.requests_queue) == 0
        assert waiting_delayed(env, topology, 300) == 1


async def test_a_delayed_request_arrives_after_its_delay(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1), headers={"x-attempt": "2"}, delay_seconds=1)
        d = await inbox.next(timeout=20)
        assert d.body == event_body(1) and d.headers["x-attempt"] == "2"
        assert d.receive_count == 1 and not d.redelivered
        if env.kind == "amqp":  # it went through the 1 s delay queue, which dead-lettered it back
            death = d.headers["x-death"][0]
            assert (death["queue"], death["reason"]) == (topology.delay_queue(1), "expired")
        assert await bridge.ack(d)


async def test_defer_puts_the_request_back_later_and_acks_the_original(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        foreign_publish(env, topology, event_body(1), headers={"trace-id": "t-1"})
        d = await inbox.next()
        assert await bridge.defer(d, 1, body=event_body(2), headers={"x-attempt": "2"})
        assert bridge.unsettled() == []
        back = await inbox.next(timeout=20)
        assert back.body == event_body(2)
        assert back.headers["trace-id"] == "t-1" and back.headers["x-attempt"] == "2"
        assert back.receive_count == 1 and not back.redelivered, "the copy is a new message"
        assert await bridge.ack(back)
    assert depth(env, topology.requests_queue) == 0


async def test_defer_leaves_the_copy_waiting_and_the_original_gone(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1))
        d = await inbox.next()
        assert await bridge.defer(d, 30)
        assert ready(env, topology.requests_queue) == 0
        if env.kind != "memory":
            assert waiting_delayed(env, topology, 30) == 1
    # Counted after the consumer stopped: an original that was not acked would be back in the queue.
    if env.kind == "memory":
        assert ready(env, topology.requests_queue) == 1  # the copy, published early on stop
    else:
        assert depth(env, topology.requests_queue) == 0
        assert waiting_delayed(env, topology, 30) == 1
    if env.kind == "amqp":
        copy = foreign_get(env, topology.delay_queue(30))
        assert copy is not None and copy[0] == event_body(1)


async def test_bad_delays_are_refused_before_anything_happens(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1))
        d = await inbox.next()
        for bad in (-1, float("nan"), float("inf"), "5"):
            with pytest.raises(ValueError, match="delay_seconds must be a finite number >= 0"):
                await bridge.defer(d, bad)  # type: ignore[arg-type]
            with pytest.raises(ValueError, match="delay_seconds"):
                await bridge.publish_request(event_body(2), delay_seconds=bad)  # type: ignore[arg-type]
        assert [h for h, _ in bridge.unsettled()] == [d], "a refused defer leaves the delivery held"
        assert await bridge.ack(d)
