"""Behaviour every transport must share: RabbitMQ, SQS (moto) and memory:// run the same tests."""

from __future__ import annotations

import asyncio
import json

from worker.broker import ERROR_CLASS_HEADER, ERROR_HEADER, Topology, publish_once

from .support import (
    BrokerEnv,
    Inbox,
    cleanup_topology,
    depth,
    event_body,
    foreign_get,
    foreign_publish,
    running,
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
        assert await inbox.nothing_within(0.5), "took more than prefetch"
        assert await bridge.ack(held[0])
        third = await inbox.next()
        assert await inbox.nothing_within(0.3)
        assert await bridge.ack(held[1]) and await bridge.ack(third)
        rest = await inbox.take(2)
        for d in rest:
            assert await bridge.ack(d)
        assert sorted(json.loads(d.body)["id"] for d in [*held, third, *rest]) == [f"evt-{n}" for n in range(5)]


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
        assert await inbox.nothing_within(0.3)
    assert depth(env, topology.requests_queue) == 0


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
        assert await inbox.nothing_within(0.3), "a dead-lettered message must not come back"
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
        bridge.pause()
        await asyncio.sleep(0.3)  # let the thread cancel its consumer
        await bridge.publish_request(event_body(1))
        assert await inbox.nothing_within(0.5)
        bridge.resume()
        d = await inbox.next()
        assert await bridge.ack(d)
        assert bridge.last_progress > 0


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


async def test_settling_after_stop_is_refused_not_hung(env: BrokerEnv, topology: Topology) -> None:
    bridge = env.bridge(topology)
    inbox = Inbox()
    async with running(bridge, inbox):
        await bridge.publish_request(event_body(1))
        d = await inbox.next()
    assert not await bridge.ack(d)
    assert not bridge.connected
