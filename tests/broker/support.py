"""Helpers for the broker tests: unique topologies, plain-client publishers/readers, an Inbox.

Waits are on a condition with a deadline (``eventually``, the bounded readers); absence is checked on
broker state (queue depths, consumer counts) rather than as "nothing arrived within a moment".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import boto3
from kombu import Connection

from worker.broker import BrokerBridge, Delivery, Topology, transport_options_for

AMQP_URL = os.environ.get("SEGMENT_EXPORT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def amqp_reachable() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 5672), timeout=1):
        return True
    return False


def unique_topology(max_receive_count: int = 5) -> Topology:
    tag = uuid.uuid4().hex[:10]
    return Topology(requests_queue=f"t-{tag}-requests", events_exchange=f"t-{tag}-events",
                    max_receive_count=max_receive_count)


@dataclass
class BrokerEnv:
    """One transport under test: its URL and the transport options the bridge gets."""

    kind: str
    url: str
    options: dict[str, Any]

    def bridge(self, topology: Topology, *, prefetch: int = 10, **kwargs: Any) -> BrokerBridge:
        return BrokerBridge(self.url, topology, prefetch=prefetch, transport_options=dict(self.options), **kwargs)


# ------------------------------------------------------------------------------------------- AMQP


def amqp_cleanup(topology: Topology, extra_queues: tuple[str, ...] = ()) -> None:
    """Delete the test's queues and exchanges through kombu (idempotent: missing ones are fine)."""
    with Connection(AMQP_URL) as conn:
        for q in (topology.requests_queue, topology.dead_letter_queue, *topology.delay_queues(), *extra_queues):
            with contextlib.suppress(Exception):
                conn.channel().queue_delete(q)
        for ex in (topology.events_exchange, topology.dead_letter_queue):
            with contextlib.suppress(Exception):
                conn.channel().exchange_delete(ex)


def amqp_get(queue: str, timeout: float = 5.0) -> Any:
    """basic_get until a message arrives (bounded); returns the py-amqp message (acked)."""
    deadline = time.monotonic() + timeout
    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        channel.auto_decode = False
        while time.monotonic() < deadline:
            msg = channel.basic_get(queue, no_ack=True)
            if msg is not None:
                return msg
            time.sleep(0.05)
    return None


def amqp_count(queue: str) -> int:
    """Messages ready in ``queue`` (not those delivered and unacked)."""
    with Connection(AMQP_URL) as conn:
        return conn.channel().queue_declare(queue, passive=True).message_count


def amqp_consumers(queue: str) -> int:
    with Connection(AMQP_URL) as conn:
        return conn.channel().queue_declare(queue, passive=True).consumer_count


def amqp_exists(queue: str) -> bool:
    try:
        amqp_count(queue)
    except Exception:  # NOT_FOUND closes the channel: the queue does not exist
        return False
    return True


# -------------------------------------------------------------------------------------------- SQS


def sqs_env(url: str) -> BrokerEnv:
    """SQS against moto: no long polling, so tests stay fast."""
    return BrokerEnv("sqs", url, transport_options_for(url, wait_time_seconds=0, polling_interval=0.05))


def sqs_client() -> Any:
    return boto3.client("sqs", region_name="us-east-1")


def sqs_url_of(name: str) -> str:
    return sqs_client().get_queue_url(QueueName=name)["QueueUrl"]


def sqs_receive(name: str, timeout: float = 5.0, *, visibility: int | None = None) -> dict | None:
    """ReceiveMessage with plain boto3 until one arrives (bounded); the message is NOT deleted."""
    client = sqs_client()
    url = sqs_url_of(name)
    deadline = time.monotonic() + timeout
    kwargs: dict[str, Any] = {"QueueUrl": url, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 0,
                              "MessageAttributeNames": ["All"], "MessageSystemAttributeNames": ["All"]}
    if visibility is not None:
        kwargs["VisibilityTimeout"] = visibility
    while True:
        messages = client.receive_message(**kwargs).get("Messages", [])
        if messages:
            return messages[0]
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def sqs_counts(name: str) -> dict[str, int]:
    """visible, in_flight (received, not deleted) and delayed messages of an SQS queue."""
    names = {"ApproximateNumberOfMessages": "visible", "ApproximateNumberOfMessagesNotVisible": "in_flight",
             "ApproximateNumberOfMessagesDelayed": "delayed"}
    attrs = sqs_client().get_queue_attributes(QueueUrl=sqs_url_of(name), AttributeNames=list(names))["Attributes"]
    return {short: int(attrs[long]) for long, short in names.items()}


def sqs_depth(name: str) -> int:
    """Visible plus in-flight messages (not delayed ones)."""
    counts = sqs_counts(name)
    return counts["visible"] + counts["in_flight"]


def sqs_cleanup(topology: Topology) -> None:
    client = sqs_client()
    for name in (topology.requests_queue, topology.dead_letter_queue, topology.events_exchange):
        with contextlib.suppress(Exception):
            client.delete_queue(QueueUrl=sqs_url_of(name))


# ----------------------------------------------------------------------------------- parametrised


def cleanup_topology(kind: str, topo: Topology, extra_queues: tuple[str, ...] = ()) -> None:
    if kind == "amqp":
        amqp_cleanup(topo, extra_queues)
    elif kind == "sqs":
        sqs_cleanup(topo)


class Inbox:
    """Collects deliveries on the event loop, with bounded waits."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()

    def __call__(self, delivery: Delivery) -> None:
        self.queue.put_nowait(delivery)

    async def next(self, timeout: float = 10.0) -> Delivery:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def take(self, n: int, timeout: float = 10.0) -> list[Delivery]:
        return [await self.next(timeout) for _ in range(n)]

    def empty(self) -> bool:
        return self.queue.empty()


async def eventually(predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> None:
    """Wait until ``predicate()`` is true; AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:.0f}s")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(bridge: BrokerBridge, inbox: Inbox | None = None) -> AsyncIterator[Inbox]:
    """Start a bridge feeding an Inbox; always stop it."""
    inbox = inbox or Inbox()
    await bridge.start(inbox, start_timeout=15)
    try:
        yield inbox
    finally:
        await bridge.stop()


def event_body(n: int = 0, **extra: Any) -> bytes:
    return json.dumps({"type": "segment.refreshed", "id": f"evt-{n}", **extra}).encode()


# ------------------------------------------------------------------- publishers/consumers without us


def foreign_publish(env: BrokerEnv, topology: Topology, body: bytes, headers: dict[str, str] | None = None) -> None:
    """Put ``body`` on the requests queue the way a non-kombu upstream would (py-amqp / boto3)."""
    if env.kind == "amqp":
        import amqp

        with amqp.Connection(host="127.0.0.1:5672", userid="guest", password="guest") as conn:
            ch = conn.channel()
            ch.basic_publish(amqp.Message(body, application_headers=headers or {}), exchange="",
                             routing_key=topology.requests_queue)
    elif env.kind == "sqs":
        attrs = {k: {"DataType": "String", "StringValue": v} for k, v in (headers or {}).items()}
        kwargs: dict[str, Any] = {"QueueUrl": sqs_url_of(topology.requests_queue), "MessageBody": body.decode()}
        if attrs:
            kwargs["MessageAttributes"] = attrs
        sqs_client().send_message(**kwargs)
    else:
        from kombu import Producer

        with Connection("memory://") as conn:
            Producer(conn.channel()).publish(body, routing_key=topology.requests_queue, headers=headers or {},
                                             content_type="application/json", content_encoding="utf-8")


def tap_events(env: BrokerEnv, topology: Topology) -> str:
    """Make events observable: a queue bound to the events exchange (the SQS events queue is one)."""
    if env.kind == "sqs":
        return topology.events_exchange
    from kombu import Exchange, Queue

    name = f"{topology.events_exchange}-tap"
    with Connection(env.url) as conn:
        Queue(name, exchange=Exchange(topology.events_exchange, type="topic", durable=True), routing_key="#",
              durable=False)(conn.channel()).declare()
    return name


def foreign_get(env: BrokerEnv, queue: str, timeout: float = 5.0) -> tuple[bytes, dict[str, Any], Any] | None:
    """Read one message with a plain client: (body, headers or attributes, content_type)."""
    if env.kind == "amqp":
        msg = amqp_get(queue, timeout)
        if msg is None:
            return None
        return bytes(msg.body), dict(msg.headers or {}), msg.properties.get("content_type")
    if env.kind == "sqs":
        m = sqs_receive(queue, timeout)
        if m is None:
            return None
        sqs_client().delete_message(QueueUrl=sqs_url_of(queue), ReceiptHandle=m["ReceiptHandle"])
        attrs = {k: v.get("StringValue") for k, v in m.get("MessageAttributes", {}).items()}
        return m["Body"].encode(), attrs, None
    deadline = time.monotonic() + timeout
    with Connection("memory://") as conn:
        channel = conn.channel()
        while time.monotonic() < deadline:
            msg = channel.basic_get(queue, no_ack=True)
            if msg is not None:
                body = msg.body if isinstance(msg.body, bytes) else msg.body.encode()
                return body, dict(msg.headers or {}), msg.content_type
            time.sleep(0.02)
    return None


def ready(env: BrokerEnv, queue: str) -> int:
    """Messages waiting in a queue to be taken (not those a consumer holds, nor delayed ones)."""
    if env.kind == "amqp":
        return amqp_count(queue)
    if env.kind == "sqs":
        return sqs_counts(queue)["visible"]
    with Connection("memory://") as conn:
        return conn.channel()._size(queue)


def depth(env: BrokerEnv, queue: str) -> int:
    """Messages in a queue, ready or in flight (AMQP: ready only; stop the consumer first to count all)."""
    if env.kind == "sqs":
        return sqs_depth(queue)
    return ready(env, queue)


class FlakyProxy:
    """A TCP proxy to RabbitMQ that a test can cut (close every socket, refuse new ones) and restore.

    It stands in for a broker outage: unlike a server-side close, the bridge cannot reconnect until the
    test says so, which makes the "disconnected" state observable. :meth:`freeze` is the other fault, a
    broker that stopped answering: sockets stay open (new ones are accepted too) but no byte is
    forwarded until :meth:`thaw`, which then delivers what was held, in order.
    """

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5672)) -> None:
        import threading

        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._refusing = False
        self._closed = False
        self._flowing = threading.Event()
        self._flowing.set()
        #: Client connections accepted and forwarded so far.
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)  # the connect is bounded; a quiet connection is not a dead one
            self.connections += 1
            with self._lock:
                self._sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while not self._flowing.wait(0.5):  # frozen: hold the bytes (bounded waits, re-checked)
                    if self._closed:
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every proxied connection and refuse new ones until :meth:`restore`."""
        self._refusing = True
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self) -> None:
        self._refusing = False

    def freeze(self) -> None:
        """A hung broker: connections stay open, nothing is forwarded either way until :meth:`thaw`."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self._flowing.set()
        self.cut()
        self._listener.close()
