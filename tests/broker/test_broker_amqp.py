"""RabbitMQ-only behaviour: the quorum delivery limit, reconnects after a server-side close, start errors,
delay queues, and settles that fail for real (a deleted dead-letter queue, a conflicting delay queue).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from worker.broker import BrokerBridge, Topology, transport_options_for

from .support import (
    AMQP_URL,
    FlakyProxy,
    amqp_cleanup,
    amqp_count,
    amqp_exists,
    amqp_get,
    event_body,
    eventually,
    running,
    unique_topology,
)


@pytest.fixture
def topo(amqp_url: str) -> Iterator[Topology]:
    topology = unique_topology(max_receive_count=2)
    yield topology
    amqp_cleanup(topology)


def bridge_for(topology: Topology, name: str = "", **kwargs: object) -> BrokerBridge:
    options = transport_options_for(AMQP_URL, client_properties={"connection_name": name or "segment-export-test"})
    return BrokerBridge(AMQP_URL, topology, prefetch=4, transport_options=options, **kwargs)  # type: ignore[arg-type]


async def test_repeatedly_requeued_message_ends_in_the_dlq_with_x_death(topo: Topology) -> None:
    bridge = bridge_for(topo)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1))
        # The limit is 2: the quorum queue delivers it 3 times (2 returns allowed) and dead-letters the 3rd return.
        counts = []
        for _ in range(3):
            d = await inbox.next()
            counts.append(d.receive_count)
            assert await bridge.requeue(d)
        dead = await asyncio.to_thread(amqp_get, topo.dead_letter_queue, 15)
        assert counts == [1, 2, 3]
        assert inbox.empty()
    assert amqp_count(topo.requests_queue) == 0
    assert dead is not None and bytes(dead.body) == event_body(1)
    x_death = dead.headers.get("x-death")
    assert x_death and x_death[0]["queue"] == topo.requests_queue
    assert x_death[0]["reason"] == "delivery_limit"


def close_connection_named(name: str, timeout: float = 10.0) -> None:
    """Close our bridge's connection from the server side (rabbitmqctl), as a broker restart would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["rabbitmqctl", "list_connections", "-q", "--no-table-headers", "pid",
                              "client_properties"], capture_output=True, text=True, timeout=30).stdout
        pids = [line.split("\t")[0] for line in out.splitlines() if f'"{name}"' in line]
        if pids:
            for pid in pids:
                subprocess.run(["rabbitmqctl", "close_connection", pid, "test: connection cut"],
                               capture_output=True, text=True, timeout=30, check=True)
            return
        time.sleep(0.2)
    raise AssertionError(f"connection {name} not found")


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl to cut the connection")
async def test_reconnects_after_the_server_closes_the_connection(topo: Topology) -> None:
    name = f"segment-export-test-{uuid.uuid4().hex[:8]}"
    bridge = bridge_for(topo, name)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1))
        old = await inbox.next()
        await asyncio.to_thread(close_connection_named, name)
        await eventually(lambda: bridge.reconnects == 1 and bridge.connected, 30, "reconnected")

        assert not await bridge.ack(old), "a delivery tag of the dead connection must not be sent"
        again = await inbox.next()
        assert again.body == event_body(1) and again.redelivered and again.receive_count == 2
        assert await bridge.ack(again)
    assert amqp_count(topo.requests_queue) == 0  # after the consumer closed: nothing unacked came back
    assert inbox.empty()


async def test_outage_disconnects_then_reconnects_and_publishes_wait(topo: Topology) -> None:
    proxy = FlakyProxy()
    try:
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}//"
        bridge = BrokerBridge(url, topo, prefetch=4, transport_options=transport_options_for(url))
        async with running(bridge) as inbox:
            await bridge.publish_request(event_body(1))
            old = await inbox.next()
            proxy.cut()
            await eventually(lambda: not bridge.connected, 10, "noticed the outage")
            publishing = asyncio.create_task(bridge.publish_request(event_body(2)))
            await asyncio.sleep(0)  # let the task queue its publish
            # The bridge thread runs commands in order: once this ack's answer is back, the publish ahead
            # of it has been tried and, had it failed instead of waiting, its task would be done.
            assert not await bridge.ack(old), "dropped while disconnected: the broker redelivers it"
            assert not publishing.done(), "a publish must wait for the reconnect"
            assert not bridge.connected
            health = bridge.last_progress
            proxy.restore()
            await asyncio.wait_for(publishing, 30)
            assert bridge.connected and bridge.last_progress >= health
            got = {d.body: d for d in await inbox.take(2)}
            assert set(got) == {event_body(1), event_body(2)}
            assert got[event_body(1)].redelivered
            for d in got.values():
                assert await bridge.ack(d)
    finally:
        proxy.close()


async def test_a_hung_broker_costs_bounded_waits_and_the_thread_keeps_reconnecting(topo: Topology) -> None:
    """TCP open, nothing answered: the confirm wait ends (confirm_timeout), the dead connection is dropped
    without the polite close (which would wait for an answer forever), and the bridge keeps trying new
    connections (their handshakes bounded too) until the broker answers again."""
    proxy = FlakyProxy()
    try:
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}//"
        bridge = BrokerBridge(url, topo, prefetch=1, transport_options=transport_options_for(url),
                              reconnect_wait=1.0, confirm_timeout=1.0)
        async with running(bridge):
            await bridge.publish_request(event_body(1))
            proxy.freeze()
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(bridge.publish_request(event_body(2)), 30)
            await eventually(lambda: proxy.connections >= 2, 30, "a new connection tried while the broker hangs")
            assert not bridge.connected
            proxy.thaw()
            await eventually(lambda: bridge.connected, 30, "reconnected once the broker answers")
            await asyncio.wait_for(bridge.publish_request(event_body(3)), 30)
        assert amqp_count(topo.requests_queue) >= 2  # 1 and 3 confirmed (2 may have landed: unconfirmed)
    finally:
        proxy.close()


async def test_publish_gives_up_after_the_reconnect_wait(topo: Topology) -> None:
    proxy = FlakyProxy()
    try:
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}//"
        bridge = BrokerBridge(url, topo, prefetch=1, transport_options=transport_options_for(url),
                              reconnect_wait=1.0)
        async with running(bridge):
            proxy.cut()
            await eventually(lambda: not bridge.connected, 10, "noticed the outage")
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(bridge.publish_request(event_body(1)), 10)
    finally:
        proxy.close()


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]


async def test_start_fails_at_once_on_conflicting_queue_arguments(topo: Topology,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with Connection(AMQP_URL) as conn:  # someone declared the requests queue as a classic queue
        conn.channel().queue_declare(topo.requests_queue, durable=True)
    bridge = bridge_for(topo)
    with caplog.at_level(logging.WARNING, logger="worker.broker"), \
            pytest.raises(ConnectionError, match=r"PRECONDITION_FAILED|inequivalent"):
        await bridge.start(lambda d: None, start_timeout=20)
    assert retries_logged(caplog) == [], "retrying cannot fix conflicting arguments"
    assert not bridge.connected


async def test_start_gives_up_after_a_bounded_wait_when_unreachable() -> None:
    bridge = BrokerBridge("amqp://guest:guest@127.0.0.1:1//", Topology(), prefetch=1)
    with pytest.raises(ConnectionError, match="cannot connect"):
        await bridge.start(lambda d: None, start_timeout=1.0)


async def test_bad_credentials_fail_start_at_once(amqp_url: str, caplog: pytest.LogCaptureFixture) -> None:
    bridge = BrokerBridge("amqp://guest:wrong@127.0.0.1:5672//", Topology(), prefetch=1)
    with caplog.at_level(logging.WARNING, logger="worker.broker"), pytest.raises(ConnectionError):
        await bridge.start(lambda d: None, start_timeout=20)
    assert retries_logged(caplog) == [], "retrying cannot fix bad credentials"


# ------------------------------------------------------------------------------ delay queues


async def test_delay_queues_are_per_bucket_so_a_short_delay_is_not_held_back(topo: Topology) -> None:
    bridge = bridge_for(topo)
    async with running(bridge) as inbox:
        assert not any(amqp_exists(q) for q in topo.delay_queues()), "declared on first use only"
        await bridge.publish_request(event_body(900), delay_seconds=900)
        await bridge.publish_request(event_body(1), delay_seconds=0.2)  # rounded up to the 1 s bucket
        d = await inbox.next(timeout=20)
        assert d.body == event_body(1), "the 1 s message overtakes the 900 s one"
        assert await bridge.ack(d)
        assert amqp_count(topo.delay_queue(900)) == 1
        await bridge.publish_request(event_body(31), delay_seconds=31)
        await bridge.publish_request(event_body(5000), delay_seconds=5000)
        assert amqp_count(f"{topo.requests_queue}-delay-60s") == 1, "31 s rounds up to the 60 s bucket"
        assert amqp_count(f"{topo.requests_queue}-delay-900s") == 2, "longer than 900 s is capped at 900 s"
        assert amqp_count(topo.requests_queue) == 0
    # A second replica declares the same queues with the same arguments: RabbitMQ accepts it.
    again = bridge_for(topo)
    async with running(again):
        await again.publish_request(event_body(2), delay_seconds=60)
        assert amqp_count(topo.delay_queue(60)) == 2


async def test_a_dead_letter_to_a_deleted_dlq_is_reported_and_the_message_comes_back(
        topo: Topology, caplog: pytest.LogCaptureFixture) -> None:
    bridge = bridge_for(topo)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1))
        d = await inbox.next()
        with Connection(AMQP_URL) as conn:  # an operator deletes the DLQ under a running worker
            conn.channel().queue_delete(topo.dead_letter_queue)
        with caplog.at_level(logging.WARNING, logger="worker.broker"):
            assert not await bridge.dead_letter(d, "bad event", "malformed_event")
        assert any("dead_letter failed" in r.getMessage() and "is missing" in r.getMessage()
                   for r in caplog.records if r.exc_info), "the failure is logged with its reason"
        back = await inbox.next()
        assert back.body == event_body(1) and back.redelivered, "requeued, not lost"
        assert [h for h, _ in bridge.unsettled()] == [back], "the failed one is no longer held"
        assert await bridge.ack(back)
        assert bridge.connected and bridge.reconnects == 0, "a returned message leaves the connection usable"


async def test_a_defer_that_cannot_be_done_is_reported_and_the_message_comes_back(
        topo: Topology, caplog: pytest.LogCaptureFixture) -> None:
    with Connection(AMQP_URL) as conn:  # someone else declared a delay queue's name with other arguments
        conn.channel().queue_declare(topo.delay_queue(30), durable=True, auto_delete=False)
    bridge = bridge_for(topo)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1))
        d = await inbox.next()
        with caplog.at_level(logging.WARNING, logger="worker.broker"):
            assert not await bridge.defer(d, 30)
        assert any(r.getMessage().startswith("defer not done (broker connection lost")
                   and "PRECONDITION_FAILED" in r.getMessage() for r in caplog.records)
        back = await inbox.next(timeout=30)  # the channel error cost the connection: redelivered on the new one
        assert back.body == event_body(1) and back.redelivered
        assert [h for h, _ in bridge.unsettled()] == [back], "the failed one is no longer held"
        assert await bridge.ack(back)
    assert amqp_count(topo.delay_queue(30)) == 0
