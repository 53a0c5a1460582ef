"""RabbitMQ-only behaviour: the quorum delivery limit, reconnects after a server-side close, start errors."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection

from worker.broker import BrokerBridge, Topology, transport_options_for

from .support import AMQP_URL, FlakyProxy, amqp_cleanup, amqp_get, event_body, running, unique_topology


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
        counts = []
        for _ in range(10):  # the limit is 2: the broker dead-letters it on the third return at the latest
            try:
                d = await inbox.next(timeout=1.5)
            except TimeoutError:
                break
            counts.append(d.receive_count)
            assert await bridge.requeue(d)
        else:
            pytest.fail("message was never dead-lettered")
    assert counts[:2] == [1, 2], counts
    dead = amqp_get(topo.dead_letter_queue)
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


async def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl to cut the connection")
async def test_reconnects_after_the_server_closes_the_connection(topo: Topology) -> None:
    name = f"segment-export-test-{uuid.uuid4().hex[:8]}"
    bridge = bridge_for(topo, name)
    async with running(bridge) as inbox:
        await bridge.publish_request(event_body(1))
        old = await inbox.next()
        await asyncio.to_thread(close_connection_named, name)
        await wait_for(lambda: bridge.reconnects == 1 and bridge.connected, 30)

        assert not await bridge.ack(old), "a delivery tag of the dead connection must not be sent"
        again = await inbox.next()
        assert again.body == event_body(1) and again.redelivered and again.receive_count == 2
        assert await bridge.ack(again)
        assert await inbox.nothing_within(0.3)


async def test_outage_disconnects_then_reconnects_and_publishes_wait(topo: Topology) -> None:
    proxy = FlakyProxy()
    try:
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}//"
        bridge = BrokerBridge(url, topo, prefetch=4, transport_options=transport_options_for(url))
        async with running(bridge) as inbox:
            await bridge.publish_request(event_body(1))
            old = await inbox.next()
            proxy.cut()
            await wait_for(lambda: not bridge.connected, 10)
            assert not await bridge.ack(old), "dropped while disconnected: the broker redelivers it"
            publishing = asyncio.create_task(bridge.publish_request(event_body(2)))
            await asyncio.sleep(0.5)
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


async def test_publish_gives_up_after_the_reconnect_wait(topo: Topology) -> None:
    proxy = FlakyProxy()
    try:
        url = f"amqp://guest:guest@127.0.0.1:{proxy.port}//"
        bridge = BrokerBridge(url, topo, prefetch=1, transport_options=transport_options_for(url),
                              reconnect_wait=1.0)
        async with running(bridge):
            proxy.cut()
            await wait_for(lambda: not bridge.connected, 10)
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(bridge.publish_request(event_body(1)), 10)
    finally:
        proxy.close()


async def test_start_fails_fast_on_conflicting_queue_arguments(topo: Topology) -> None:
    with Connection(AMQP_URL) as conn:  # someone declared the requests queue as a classic queue
        conn.channel().queue_declare(topo.requests_queue, durable=True)
    bridge = bridge_for(topo)
    started = time.monotonic()
    with pytest.raises(ConnectionError, match=r"PRECONDITION_FAILED|inequivalent"):
        await bridge.start(lambda d: None, start_timeout=20)
    assert time.monotonic() - started < 10
    assert not bridge.connected


async def test_start_gives_up_after_a_bounded_wait_when_unreachable() -> None:
    bridge = BrokerBridge("amqp://guest:guest@127.0.0.1:1//", Topology(), prefetch=1)
    with pytest.raises(ConnectionError, match="cannot connect"):
        await bridge.start(lambda d: None, start_timeout=1.0)


async def test_bad_credentials_fail_start_at_once(amqp_url: str) -> None:
    bridge = BrokerBridge("amqp://guest:wrong@127.0.0.1:5672//", Topology(), prefetch=1)
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        await bridge.start(lambda d: None, start_timeout=20)
    assert time.monotonic() - started < 10
