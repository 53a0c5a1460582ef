"""Must-show 2: /healthz fails when the consumer thread is stuck; /readyz when the broker is unreachable
or the worker is draining."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from tests.service.support import get
from worker.service import health
from worker.service.health import HealthServer
from worker.settings import parse_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def fetch(url: str) -> int:
    return (await asyncio.to_thread(get, url))[0]


async def test_healthz_fails_when_the_consumer_thread_is_blocked(monkeypatch):
    # Above the server's 1 s loop tick, so only the consumer thread can go stale here.
    monkeypatch.setattr(health, "STALL_SECONDS", 2.0)
    beat = {"t": time.monotonic()}
    gate = threading.Event()
    gate.set()
    done = threading.Event()

    def consumer() -> None:  # beats like the broker thread, until something blocks it
        while not done.is_set():
            gate.wait()
            beat["t"] = time.monotonic()
            done.wait(0.05)  # the pace between two messages; returns at once when the test ends

    thread = threading.Thread(target=consumer, daemon=True)
    thread.start()
    port = free_port()
    server = HealthServer(port, ready=lambda: True, consumer_progress=lambda: beat["t"], host="127.0.0.1")
    await server.start()
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        assert await fetch(url) == 200
        gate.clear()  # the consumer thread is now stuck
        body = await wait_for_status(url, 500)
        assert "consumer thread stalled" in body and "event loop" not in body, body
        gate.set()
        await wait_for_status(url, 200)
    finally:
        done.set()
        gate.set()
        thread.join(10)
        await server.stop()


@pytest.fixture
def worker(tmp_path, monkeypatch):
    from worker.service.worker import Worker

    monkeypatch.setenv("OBS_TEST_KEY", "obs-key-0123456789")
    port = free_port()
    config = parse_config({
        "worker": {"state_url": f"file://{tmp_path / 'state'}", "broker_url": "memory://", "metrics_port": port,
                   "requests_queue": f"obs-{port}", "events_exchange": f"obs-ev-{port}",
                   "snapshot_prefixes": [f"file://{tmp_path}/"]},
        "connections": {"c": {"hostname": "x.api-us1.com", "api_key_env": "OBS_TEST_KEY",
                              "data_privacy_consent": True}},
        "exports": {"vip": {"segment": "vip", "connection": "c", "list_id": 1, "mapping": {"email": "Email"}}},
    }, "test")
    return Worker(config), port


async def test_readyz_follows_broker_connection_and_draining(worker):
    w, port = worker
    url = f"http://127.0.0.1:{port}/readyz"
    drained = asyncio.Event()
    real_drain = w._drain

    async def slow_drain() -> None:  # hold the draining state long enough to probe it
        await drained.wait()
        await real_drain()

    w._drain = slow_drain
    runner = asyncio.ensure_future(w.run())
    try:
        await asyncio.wait_for(w.ready.wait(), 30)
        assert await fetch(url) == 200
        assert await fetch(f"http://127.0.0.1:{port}/healthz") == 200
        w.bridge.connected = False  # what the bridge records when the broker becomes unreachable
        assert await fetch(url) == 503
        w.bridge.connected = True
        assert await fetch(url) == 200
        w.request_stop()  # sets draining at once; the held drain keeps it so
        assert w.draining and await fetch(url) == 503
    finally:
        drained.set()
        w.request_stop()
        assert await asyncio.wait_for(runner, 30) == 0


class TcpProxy:
    """A loopback TCP proxy in front of RabbitMQ: cutting it makes the broker really unreachable."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for w in list(self.writers):
            w.close()
        self.writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def wait_for_status(url: str, status: int, seconds: float = 30.0) -> str:
    """Poll ``url`` until it answers ``status`` (its body is returned); fail naming the last answer."""
    deadline = time.monotonic() + seconds
    while True:
        got, body = await asyncio.to_thread(get, url)
        if got == status:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} still answers {got} ({body[:200]}) after {seconds:.0f} s, not {status}")
        await asyncio.sleep(0.1)  # poll interval


async def test_readyz_fails_while_rabbitmq_is_really_unreachable(tmp_path, monkeypatch):
    """No flag flipped by hand: the worker's only way to RabbitMQ goes away, then comes back."""
    import uuid

    from kombu import Connection

    from worker.service.worker import Worker

    monkeypatch.setenv("OBS_TEST_KEY", "obs-key-0123456789")
    proxy = TcpProxy(5672)
    await proxy.start()
    metrics_port = free_port()
    queue = f"obs-outage-{uuid.uuid4().hex[:8]}"
    config = parse_config({
        "worker": {"state_url": f"file://{tmp_path / 'state'}", "metrics_port": metrics_port,
                   "broker_url": f"amqp://guest:guest@127.0.0.1:{proxy.port}//",
                   "requests_queue": queue, "events_exchange": f"{queue}-events",
                   "snapshot_prefixes": [f"file://{tmp_path}/"]},
        "connections": {"c": {"hostname": "x.api-us1.com", "api_key_env": "OBS_TEST_KEY",
                              "data_privacy_consent": True}},
        "exports": {"vip": {"segment": "vip", "connection": "c", "list_id": 1, "mapping": {"email": "Email"}}},
    }, "test")
    w = Worker(config)
    runner = asyncio.ensure_future(w.run())
    url = f"http://127.0.0.1:{metrics_port}/readyz"
    try:
        await asyncio.wait_for(w.ready.wait(), 30)
        assert await fetch(url) == 200
        await proxy.cut()
        await wait_for_status(url, 503)
        await proxy.start()  # the broker is reachable again on the same address
        await wait_for_status(url, 200, 60)
    finally:
        w.request_stop()
        await asyncio.wait_for(runner, 60)
        if proxy.server is not None:
            proxy.server.close()
        with Connection("amqp://guest:guest@127.0.0.1:5672//") as conn:
            channel = conn.channel()
            for name in (queue, f"{queue}-dlq"):
                try:
                    channel.queue_delete(name)
                except Exception:  # already gone: nothing to clean
                    channel = conn.channel()
            for name in (f"{queue}-events", f"{queue}-dlq"):
                try:
                    channel.exchange_delete(name)
                except Exception:
                    channel = conn.channel()
