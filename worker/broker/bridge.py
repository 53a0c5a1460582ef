"""The asyncio service's only door to the broker: one thread owns the connection and does all its I/O.

kombu channels are not thread-safe and its SQS transport would need kombu's own event loop to run
asynchronously, so the bridge keeps every broker call on a dedicated thread. That thread loops: run the
commands the event loop queued (acks, publishes, visibility extensions), read the broker for a moment
(``drain_events``), repeat. Deliveries travel the other way through ``call_soon_threadsafe``.

When the connection fails the thread reconnects with capped, jittered backoff, re-declares the topology
and consumes again. Each connection has a generation number stamped on its deliveries: an AMQP delivery
tag from a dead connection must not be sent on the new one (it would ack some other message), so
settling such a delivery returns False and the broker redelivers it. SQS receipt handles are not tied
to a connection, so SQS deliveries stay settleable across reconnects.

Settling (``ack``, ``requeue``, ``dead_letter``, ``defer``) never raises for broker trouble and never
fails quietly: it returns True when the broker took the settlement, else False, logged here with the
action and the reason (a warning; an error with its traceback when the failure was unexpected). Either
way the delivery is out of the service's hands afterwards: on False the broker gets the message back by
itself (a lost AMQP connection requeues it; an SQS message reappears when its visibility lapses; after
an unexpected error on RabbitMQ or memory:// the bridge requeues it), so the caller only counts the
failure and must not try another settle. Only bad arguments raise (ValueError for a bad delay, before
anything is done). :meth:`BrokerBridge.unsettled` lists what is still held, and since when.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kombu import Connection

from worker.broker.backoff import backoff_delays
from worker.broker.connection import CONNECT_TIMEOUT, make_driver, open_connection
from worker.broker.delivery import Delivery
from worker.broker.driver import Driver
from worker.broker.kombu_driver import CONFIRM_TIMEOUT
from worker.broker.options import broker_kind, transport_options_for
from worker.broker.sqs_transport import RawBodyTransport
from worker.broker.topology import ERROR_CLASS_HEADER, ERROR_HEADER, EVENTS, REQUESTS, Topology, check_delay

log = logging.getLogger(__name__)

#: Dead-letter reasons are truncated: they travel as a header/attribute, and SQS caps message size.
MAX_REASON = 1000
_RAISE = object()
#: Headers the broker sets on a delivery; a copy put back (``defer``) is a new message and starts afresh.
_BROKER_HEADERS = ("x-delivery-count", "x-death", "x-first-death-", "x-last-death-")


class _Defer(Exception):
    """Raised by a command that needs a live connection while there is none: retry after reconnect."""


@dataclass
class _Command:
    """A unit of broker work queued by the event loop for the bridge thread."""

    fn: Callable[[Driver | None], Any]
    future: concurrent.futures.Future[Any]
    deadline: float
    #: On a lost connection: run again after reconnect (True) or resolve with ``fallback`` (False).
    retry: bool
    #: Result when the command cannot run (connection lost, waited too long, bridge stopped);
    #: ``_RAISE`` means raise ConnectionError instead.
    fallback: Any = field(default=_RAISE)
    #: Called with the reason when the command gives up (settles: forget the delivery, log why).
    on_give_up: Callable[[str], None] | None = None

    def give_up(self, why: str) -> None:
        if self.future.done():
            return
        if self.on_give_up is not None:
            self.on_give_up(why)
        if self.fallback is _RAISE:
            self.future.set_exception(ConnectionError(why))
        else:
            self.future.set_result(self.fallback)


class BrokerBridge:
    """One thread owns the kombu connection: consumes, acks, publishes, extends visibility; reconnects."""

    def __init__(self, url: str, topology: Topology, *, prefetch: int, transport_options: dict | None = None,
                 heartbeat_interval: float = 60.0, visibility_timeout: float | None = None,
                 reconnect_wait: float = 30.0, poll_interval: float = 0.1,
                 confirm_timeout: float = CONFIRM_TIMEOUT) -> None:
        """``visibility_timeout``: SQS queue creation and ``hold``; when not given, the transport
        option ``visibility_timeout`` (config ``broker_options``), else 120 s. ``reconnect_wait`` bounds
        how long a publish waits for a lost connection to come back; ``confirm_timeout`` how long one AMQP
        publish waits for its confirm (then the connection counts as broken: a broker that stopped
        answering must not hold the one broker thread).

        A publish whose awaiting coroutine was cancelled (e.g. ``asyncio.wait_for`` ran out) is dropped:
        not sent if it had not been yet, never sent again after a reconnect. Its caller was told it
        failed and retries by itself; sending it later as well would turn one request into two messages.
        """
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.url = url
        self.topology = topology
        self.prefetch = prefetch
        self.kind: str = broker_kind(url)
        self.heartbeat_interval = heartbeat_interval
        self.reconnect_wait = reconnect_wait
        self.poll_interval = poll_interval
        self.confirm_timeout = confirm_timeout
        self.transport_options = transport_options_for(url, **(transport_options or {}))
        if visibility_timeout is None:
            visibility_timeout = float((transport_options or {}).get("visibility_timeout", 120.0))
        #: Seconds; the service extends held SQS messages every ~third of this.
        self.visibility_timeout: float = visibility_timeout
        if self.kind == "sqs":  # one value for queue creation, kombu and hold()
            self.transport_options["visibility_timeout"] = int(visibility_timeout)
        self.connected = False
        self.last_progress = time.monotonic()
        #: Connections lost so far (for metrics/logs; also lets tests see a reconnect that was quick).
        self.reconnects = 0

        self._commands: queue.SimpleQueue[_Command | None] = queue.SimpleQueue()
        self._deferred: list[_Command] = []
        self._lock = threading.Lock()
        self._accepting = False
        self._stop_requested = threading.Event()
        self._paused = False
        self._consuming = False
        self._generation = 0
        self._driver: Driver | None = None
        #: Deliveries handed to the service and not settled; the thread changes it, unsettled() reads it.
        self._held: set[Delivery] = set()
        self._held_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_delivery: Callable[[Delivery], None] | None = None
        self._started: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._finished: concurrent.futures.Future[None] = concurrent.futures.Future()

    # ----------------------------------------------------------------- asyncio side

    async def start(self, on_delivery: Callable[[Delivery], None], *, start_timeout: float = 30.0) -> None:
        """Connect, declare the topology and start consuming; ``on_delivery`` runs on this event loop.

        Returns once connected. Raises ConnectionError when the broker cannot be reached within
        ``start_timeout`` seconds, or at once for errors retrying cannot fix (bad credentials, a queue
        declared elsewhere with other arguments).
        """
        if self._thread is not None:
            raise RuntimeError("BrokerBridge.start() called twice")
        self._loop = asyncio.get_running_loop()
        self._on_delivery = on_delivery
        with self._lock:
            self._accepting = True
        self._thread = threading.Thread(target=self._main, args=(start_timeout,), name=f"broker-{self.kind}",
                                        daemon=True)
        self._thread.start()
        try:
            await asyncio.wrap_future(self._started)
        except BaseException:
            await self.stop()
            raise

    async def ack(self, d: Delivery) -> bool:
        """Settle for good. False when it could not be done (e.g. the delivery's connection is gone)."""
        return await self._settle_call(d, "ack", lambda drv, m: drv.ack(m))

    async def requeue(self, d: Delivery) -> bool:
        """Give it back now (RabbitMQ reject+requeue / SQS visibility 0); counts toward the delivery limit."""
        return await self._settle_call(d, "requeue", lambda drv, m: drv.requeue(m))

    async def dead_letter(self, d: Delivery, reason: str, reason_class: str) -> bool:
        """Copy to the DLQ with the reason in headers/attributes (confirmed), then ack the original.

        Copy first, ack second: a crash in between leaves a duplicate in the DLQ rather than a lost
        message. When the delivery's connection is gone nothing is copied and the result is False: the
        message is redelivered and can be dead-lettered then, without two copies in the DLQ.
        """
        extra = {ERROR_HEADER: reason[:MAX_REASON] or "unknown", ERROR_CLASS_HEADER: reason_class or "unknown"}
        return await self._settle_call(d, "dead_letter", self._copy_then_ack("dlq", d.body, {**d.headers, **extra}))

    async def defer(self, d: Delivery, delay_seconds: float, *, body: bytes | None = None,
                    headers: dict[str, Any] | None = None) -> bool:
        """Settle ``d`` by putting it (or ``body`` instead of its own) back on the requests queue later.

        The copy is published with confirms to arrive after ``delay_seconds`` (rounded up and capped as
        :meth:`publish_request` says), THEN ``d`` is acked: a crash in between duplicates the request,
        never loses it. The copy is a new message (the broker's delivery count starts again) and carries
        ``d``'s headers, minus those the broker sets, updated with ``headers``. True when both steps
        succeeded; False otherwise (see the module docstring: the message comes back by itself).
        ValueError (and ``d`` untouched) for a delay that is not a finite number >= 0.
        """
        delay = check_delay(delay_seconds)
        carried = {k: v for k, v in d.headers.items() if not k.startswith(_BROKER_HEADERS)}
        return await self._settle_call(d, "defer", self._copy_then_ack(
            REQUESTS, d.body if body is None else body, {**carried, **(headers or {})}, delay))

    async def publish_event(self, event_type: str, body: bytes) -> None:
        """Publish to the events exchange (routing key = ``event_type``) / SQS events queue; confirmed."""
        await self._call(lambda drv: self._publish(drv, EVENTS, body, event_type, None), retry=True)

    async def publish_request(self, body: bytes, *, headers: dict | None = None, delay_seconds: float = 0) -> None:
        """Publish to the requests queue (continuations, republishing); returns once confirmed.

        ``delay_seconds`` > 0: the message reaches the requests queue that much later. RabbitMQ: it waits
        in the delay queue of the next bucket up (:data:`~worker.broker.topology.DELAY_BUCKETS`, so 31 s
        becomes 60 s); SQS: ``DelaySeconds``, whole seconds rounded up; memory://: a timer in this
        process. Delays over 900 s are capped at 900 s on every transport. Delayed messages are not in
        the requests queue's depth while they wait, so they do not make KEDA start replicas.

        Raises ConnectionError when the broker is not reachable within ``reconnect_wait``; ValueError
        for a delay that is not a finite number >= 0.
        """
        delay = check_delay(delay_seconds)
        await self._call(lambda drv: self._publish(drv, REQUESTS, body, None, headers, delay), retry=True)

    async def hold(self, d: Delivery) -> bool:
        """Keep a held delivery from reappearing (SQS: visibility := now + visibility_timeout).

        True when the delivery is still this bridge's to settle and (SQS) its visibility was extended;
        False otherwise: settled, taken back by the broker (a stale receipt handle: it leaves
        :meth:`unsettled`), or not extended this time (no connection). Raises only for unexpected errors.
        """
        if d._settled:
            return False
        if self.kind != "sqs":
            with self._held_lock:
                return d in self._held

        def fn(drv: Driver | None) -> bool:
            if drv is None or d._settled:
                return False
            if drv.hold(d._message):
                return True
            self._forget(d)  # the receipt handle went stale: someone else received the message since
            return False

        return bool(await self._call(fn, retry=False, fallback=False))

    def unsettled(self) -> list[tuple[Delivery, float]]:
        """Deliveries this bridge holds for the service, oldest first, each with its monotonic receive time.

        A delivery leaves the list when a settle call ends (True or False) or when the broker takes it
        back (AMQP: the connection was lost; SQS: a stale receipt handle). These are what count against
        ``prefetch``: a delivery the service never settles keeps this replica from consuming. Safe to
        call from any thread; it never waits for the broker.
        """
        with self._held_lock:
            held = list(self._held)
        return sorted(((d, d.received_at) for d in held), key=lambda item: item[1])

    @property
    def consuming(self) -> bool:
        """True while the broker thread has a consumer on the requests queue (False paused/disconnected)."""
        return self._consuming

    def pause(self) -> None:
        """Stop taking new messages (e.g. draining on SIGTERM); held deliveries stay held."""
        self._paused = True

    def resume(self) -> None:
        """Take new messages again."""
        self._paused = False

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop consuming, finish queued commands, give back unacked deliveries, close the connection."""
        thread = self._thread
        if thread is None:
            return
        self._stop_requested.set()
        self._commands.put(None)  # wake the thread if it is waiting for commands
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._finished)), timeout)
        except TimeoutError:
            log.warning("broker thread did not stop within %.1fs", timeout)

    async def _call(self, fn: Callable[[Driver | None], Any], *, retry: bool, fallback: Any = _RAISE,
                    on_give_up: Callable[[str], None] | None = None) -> Any:
        return await asyncio.wrap_future(self._submit(fn, retry=retry, fallback=fallback, on_give_up=on_give_up))

    def _submit(self, fn: Callable[[Driver | None], Any], *, retry: bool, fallback: Any = _RAISE,
                on_give_up: Callable[[str], None] | None = None) -> concurrent.futures.Future[Any]:
        """Queue ``fn`` for the bridge thread; any thread may call this."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        command = _Command(fn, future, time.monotonic() + self.reconnect_wait, retry, fallback, on_give_up)
        with self._lock:
            if not self._accepting:
                command.give_up("broker bridge is not running")
            else:
                self._commands.put(command)
        return future

    def _settle_call(self, d: Delivery, action: str,
                     op: Callable[[Driver, Any], bool]) -> asyncio.Future[bool]:
        """Run a settle on the bridge thread; SQS settles wait for a reconnect (receipt handles survive)."""
        return asyncio.wrap_future(self._submit_settle(d, action, op))

    def _submit_settle(self, d: Delivery, action: str,
                       op: Callable[[Driver, Any], bool]) -> concurrent.futures.Future[bool]:
        def gave_up(why: str) -> None:
            if d._settled:
                log.warning("%s refused: the delivery was already settled or given back", action)
            else:
                log.warning("%s not done (%s); the broker will deliver the message again", action, why)
            self._forget(d)

        return self._submit(self._settle(d, action, op), retry=self.kind == "sqs", fallback=False,
                            on_give_up=gave_up)

    # ------------------------------------------------------------ command bodies (bridge thread)

    def _forget(self, d: Delivery) -> None:
        """The delivery is no longer ours to settle (settled, given back or taken back by the broker)."""
        d._settled = True
        with self._held_lock:
            self._held.discard(d)

    def _settle(self, d: Delivery, action: str,
                op: Callable[[Driver, Any], bool]) -> Callable[[Driver | None], bool]:
        def fn(drv: Driver | None) -> bool:
            if d._settled:
                log.warning("%s refused: the delivery was already settled or given back", action)
                return False
            if d._generation != self._generation and self.kind != "sqs":
                log.warning("%s not sent: the delivery's connection was lost, so its tag means nothing now; "
                            "the broker delivers the message again", action)
                self._forget(d)
                return False
            if drv is None:
                raise _Defer
            try:
                ok = op(drv, d._message)
            except Exception as exc:
                if isinstance(exc, drv.recoverable_errors):
                    raise  # the connection is unusable: retried after reconnect (SQS) or given up
                log.exception("%s failed (%s: %s); the delivery is handed back to the broker", action,
                              type(exc).__name__, exc)
                drv.abandon(d._message)
                ok = False
            self._forget(d)
            return bool(ok)
        return fn

    @staticmethod
    def _copy_then_ack(to: str, body: bytes, headers: dict[str, Any],
                       delay: float = 0) -> Callable[[Driver, Any], bool]:
        """Publish a copy (confirmed), then ack the original; a retry after reconnect does not copy twice."""
        copied = False

        def op(drv: Driver, message: Any) -> bool:
            nonlocal copied
            if not copied:
                drv.publish(to, body, headers=headers, delay_seconds=delay)
                copied = True
            return drv.ack(message)
        return op

    @staticmethod
    def _publish(drv: Driver | None, to: str, body: bytes, routing_key: str | None, headers: dict | None,
                 delay: float = 0) -> None:
        if drv is None:
            raise _Defer
        drv.publish(to, body, routing_key=routing_key, headers=headers, delay_seconds=delay)

    # ------------------------------------------------------------------ bridge thread

    def _main(self, start_timeout: float) -> None:
        try:
            self._serve(time.monotonic() + start_timeout)
        except BaseException as exc:
            log.exception("broker thread failed")
            if not self._started.done():
                self._started.set_exception(exc)
        finally:
            self._shutdown()
            if not self._started.done():
                self._started.set_exception(ConnectionError("broker bridge stopped before it connected"))
            self._finished.set_result(None)

    def _serve(self, start_deadline: float) -> None:
        recoverable = _start_recoverable_errors(self.url)
        delays = None
        while not self._stop_requested.is_set():
            if self._driver is None:
                try:
                    self._connect()
                except Exception as exc:
                    if not self._started.done():
                        remaining = start_deadline - time.monotonic()
                        if not isinstance(exc, recoverable) or remaining <= 0:
                            self._started.set_exception(ConnectionError(
                                f"cannot connect to the {self.kind} broker: {type(exc).__name__}: {exc}"))
                            return
                    log.warning("broker connection failed (%s: %s); retrying", type(exc).__name__, exc)
                    delays = delays or backoff_delays()
                    delay = next(delays)
                    if not self._started.done():
                        delay = min(delay, max(0.0, start_deadline - time.monotonic()))
                    self._idle(delay)
                    continue
                delays = None
                continue
            try:
                self._step(self._driver)
            except Exception as exc:
                self._lose(exc)

    def _connect(self) -> None:
        conn = open_connection(self.url, self.transport_options, heartbeat=self.heartbeat_interval)
        sock = _amqp_socket(conn)
        try:
            if sock is not None:  # channel opens and declares wait for answers with no bound of their own
                sock.settimeout(CONNECT_TIMEOUT)
            driver = make_driver(conn, self.topology, prefetch=self.prefetch,
                                 visibility_timeout=self.visibility_timeout, confirm_timeout=self.confirm_timeout)
            driver.declare()
            if not self._paused:
                driver.consume(functools.partial(self._on_message, driver, self._generation))
                self._consuming = True
            if sock is not None:
                sock.settimeout(None)  # as py-amqp leaves it after its own handshake: reads time out per call
        except BaseException:
            with contextlib.suppress(Exception):
                conn.collect()
            raise
        self._driver = driver
        self.connected = True
        if self._started.done():
            log.info("reconnected to the %s broker", self.kind)
        else:
            log.info("connected to the %s broker", self.kind)
            self._started.set_result(None)

    def _step(self, driver: Driver) -> None:
        self._run_commands()
        if self._paused and self._consuming:
            driver.cancel()
            self._consuming = False
        elif not self._paused and not self._consuming:
            driver.consume(functools.partial(self._on_message, driver, self._generation))
            self._consuming = True
        driver.heartbeat()
        driver.tick()
        capacity = self.prefetch - len(self._held)
        if driver.always_drain or (self._consuming and capacity > 0):
            driver.poll(self.poll_interval, max(capacity, 0))
        else:
            self._idle(self.poll_interval, until_command=True)
        self.last_progress = time.monotonic()

    def _lose(self, exc: BaseException) -> None:
        """Drop the connection after an error; the serve loop reconnects."""
        log.warning("broker connection lost (%s: %s); reconnecting", type(exc).__name__, exc)
        self.connected = False
        self.reconnects += 1
        self._generation += 1
        self._consuming = False
        driver, self._driver = self._driver, None
        if driver is not None:
            if not driver.survives_reconnect:
                with self._held_lock:  # the broker requeues these itself; their settles now return False
                    self._held.clear()
            driver.close(broken=True)

    def _on_message(self, driver: Driver, generation: int, message: Any) -> None:
        """Runs inside drain_events: describe the message and hand it to the event loop."""
        try:
            body, headers, count, redelivered = driver.describe(message)
        except Exception:  # a message we cannot even describe still has to be settled by the service
            log.exception("could not read a broker message's metadata")
            raw = getattr(message, "body", b"")
            body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw or b"")
            headers, count, redelivered = {}, 1, False
        delivery = Delivery(body, headers, count, redelivered, _generation=generation, _message=message)
        with self._held_lock:
            self._held.add(delivery)
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._dispatch, delivery)
        except RuntimeError:  # the event loop is closed; the message returns to the queue on close
            log.warning("event loop closed; delivery not dispatched")

    def _dispatch(self, delivery: Delivery) -> None:
        assert self._on_delivery is not None
        try:
            self._on_delivery(delivery)
        except Exception:  # nobody will settle it: give it back rather than hold it forever
            log.exception("on_delivery callback failed; the delivery is requeued")
            self._submit_settle(delivery, "requeue", lambda drv, m: drv.requeue(m))

    def _idle(self, seconds: float, *, until_command: bool = False) -> None:
        """Wait without busy-looping, running commands as they arrive and expiring deferred ones.

        ``until_command``: return right after the first command (connected: an ack may have freed a
        prefetch slot). Otherwise wait the full time (reconnect backoff must not shrink because acks
        keep arriving).
        """
        end = time.monotonic() + max(seconds, 0.0)
        while not self._stop_requested.is_set():
            now = time.monotonic()
            wait = end - now
            if wait <= 0:
                break
            if self._deferred:  # wake up in time to fail a publish that waited too long
                wait = min(wait, max(0.0, min(c.deadline for c in self._deferred) - now) + 0.01)
            try:
                command = self._commands.get(timeout=wait)
            except queue.Empty:
                command = None
            self._execute(command)
            self._run_commands()
            self.last_progress = time.monotonic()
            if command is not None and until_command:
                break

    def _run_commands(self) -> None:
        if self._deferred and self._driver is not None:
            pending, self._deferred = self._deferred, []
            for command in pending:
                self._execute(command)
        while True:
            try:
                queued = self._commands.get_nowait()
            except queue.Empty:
                break
            self._execute(queued)
        if self._deferred:
            now = time.monotonic()
            keep = []
            for command in self._deferred:
                if now >= command.deadline:
                    command.give_up(f"broker not connected within {self.reconnect_wait:.0f}s")
                else:
                    keep.append(command)
            self._deferred = keep

    def _execute(self, command: _Command | None) -> None:
        if command is None or command.future.done():
            return
        driver = self._driver
        try:
            result = command.fn(driver)
        except _Defer:
            self._deferred.append(command)
        except Exception as exc:
            if driver is not None and isinstance(exc, driver.recoverable_errors):
                if command.retry:
                    self._deferred.append(command)
                else:
                    command.give_up(f"broker connection lost: {exc}")
                raise  # the connection is unusable: the serve loop reconnects
            if not command.future.done():  # cancelled by its caller meanwhile: nobody waits for it
                command.future.set_exception(exc)
        else:
            if not command.future.done():
                command.future.set_result(result)

    def _shutdown(self) -> None:
        """Finish what was queued, give back what is held, close; nothing may be left waiting."""
        driver = self._driver
        if driver is not None and self._consuming:
            with contextlib.suppress(Exception):
                driver.cancel()
        self._consuming = False
        with self._lock:
            self._accepting = False
        try:
            self._run_commands()
        except Exception as exc:
            log.warning("broker connection failed while stopping: %s", exc)
            self._lose(exc)
            driver = None
        for command in self._deferred:
            command.give_up("broker bridge stopped")
        self._deferred = []
        while True:
            try:
                leftover = self._commands.get_nowait()
            except queue.Empty:
                break
            if leftover is not None:
                leftover.give_up("broker bridge stopped")
        with self._held_lock:
            held, self._held = self._held, set()
        if driver is not None:
            try:
                driver.release_held([d._message for d in held if not d._settled])
            except Exception as exc:
                log.warning("could not give back held messages: %s", exc)
            driver.close()
        self._driver = None
        self.connected = False


def _amqp_socket(conn: Connection) -> Any:
    """The TCP socket under an AMQP connection (None for SQS and memory://)."""
    transport = getattr(getattr(conn, "connection", None), "transport", None)
    return getattr(transport, "sock", None)


def _start_recoverable_errors(url: str) -> tuple[type[BaseException], ...]:
    """Errors worth retrying while starting; anything else (bad credentials, ...) fails start at once."""
    conn = Connection(url, transport=RawBodyTransport) if broker_kind(url) == "sqs" else Connection(url)
    return (*conn.recoverable_connection_errors, *conn.recoverable_channel_errors, OSError)
