"""``segment-export run``: the long-running worker that turns request messages into export runs.

Flow per delivery: validate the event (malformed -> dead-letter queue with the reason, never a crash),
find the exports it concerns, run each with the engine (one run at a time per export in this
process), publish each completion event with confirms, then ack. While a delivery is held its SQS
visibility is extended; after ``max_unacked_seconds`` (or on SIGTERM) every run stops at a checkpoint,
a continuation message (``export.requested`` naming the run id) is published, and the delivery is
acked, so no broker ever holds a delivery longer than the bound and no run restarts from scratch.

At-least-once everywhere: the run id is derived from export + refresh id, so a redelivered or
duplicate message finds the run's ``completed`` record and only re-publishes the event if its
publication was never confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from worker import metrics
from worker.broker import BrokerBridge, Delivery, Topology, transport_options_for
from worker.config import Config, Export
from worker.engine import Engine, RunResult, RunSpec
from worker.event_schemas import InvalidEvent, load_validators, parse_event, validate_event
from worker.events import new_id, now_iso
from worker.health import HealthServer
from worker.runbook import run_id_for
from worker.state import open_store

log = logging.getLogger("segment_export.service")

CHECKPOINT_MARGIN = 0.2  # stop runs this share of the unacked bound early, so they reach a checkpoint in time


class Rejected(Exception):
    """A well-formed event we cannot act on (unknown export, URI outside the allowed prefixes)."""

    def __init__(self, reason: str, reason_class: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reason_class = reason_class


@dataclass
class Job:
    """One export run that a delivery asks for."""

    spec: RunSpec
    continuation: int  # how many times this run has been handed on already
    dry_run: bool = False


class Worker:
    """Consumes the requests queue until asked to stop; ``run()`` returns the process exit code."""

    def __init__(self, config: Config, *, broker_url: str | None = None,
                 transport_options: dict[str, Any] | None = None,
                 on_published: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.config = config
        self.on_published = on_published  # sees every completion event once the broker confirmed it
        w = config.worker
        self.url = broker_url or w.broker_url
        self.topology = Topology(requests_queue=w.requests_queue, events_exchange=w.events_exchange,
                                 max_receive_count=w.max_receive_count)
        self.engine = Engine(config, open_store(w.state_url), on_request=metrics.observe_request,
                             on_progress=metrics.observe_progress)
        metrics.watch_engine(self.engine)
        self.bridge = BrokerBridge(self.url, self.topology, prefetch=w.concurrency,
                                   transport_options=transport_options_for(
                                       self.url, **{**w.broker_options, **(transport_options or {})}))
        metrics.set_info(self.bridge.kind)
        self.max_unacked = w.max_unacked_seconds
        self.grace = w.shutdown_grace_seconds
        self.stopping = asyncio.Event()
        self._stops: set[asyncio.Event] = set()  # one per held delivery: set on shutdown
        self._tasks: set[asyncio.Task[None]] = set()
        self._export_locks: dict[str, asyncio.Lock] = {}
        self.draining = False
        self.ready = asyncio.Event()  # consuming: config loaded, broker connected

    # ------------------------------------------------------------------------------------ lifecycle
    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        load_validators()  # a broken install fails now, not on the first message
        if self.config.worker.snapshot_prefixes is None:
            log.warning("[worker] snapshot_prefixes is not set: events may name any snapshot URI this worker "
                        "can read; set it to the prefixes your platform writes to")
        health = None
        if self.config.worker.metrics_port:
            health = HealthServer(self.config.worker.metrics_port,
                                  ready=lambda: self.ready.is_set() and self.bridge.connected,
                                  consumer_progress=lambda: self.bridge.last_progress)
            await health.start()
        try:
            await self.bridge.start(self._on_delivery)
            self.ready.set()
            log.info("worker consuming", extra={"queue": self.topology.requests_queue, "broker": self.bridge.kind})
            await self.stopping.wait()
            await self._drain()
        finally:
            if health:
                await health.stop()
        return 0

    def request_stop(self) -> None:
        """SIGTERM/SIGINT: stop taking messages; in-flight runs checkpoint and hand on."""
        self.ready.clear()
        if not self.stopping.is_set():
            log.info("stop requested: draining in-flight runs", extra={"in_flight": len(self._tasks)})
            self.draining = True
            self.stopping.set()

    async def _drain(self) -> None:
        self.bridge.pause()
        for stop in self._stops:
            stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=self.grace)
            for task in pending:  # past the grace period: the broker gets the delivery back
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        await self.bridge.stop()

    # ------------------------------------------------------------------------------------ deliveries
    def _on_delivery(self, delivery: Delivery) -> None:
        task = asyncio.ensure_future(self._handle(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, d: Delivery) -> None:
        received = time.monotonic()
        try:
            event = parse_event(d.body)
        except InvalidEvent as exc:
            await self._dead_letter(d, exc.reason, exc.reason_class, "invalid")
            return
        etype = event["type"]
        try:
            jobs = await self._jobs(event)
        except Rejected as exc:
            await self._dead_letter(d, exc.reason, exc.reason_class, etype)
            return
        if not jobs:
            log.info("no export is configured for this segment; acked", extra={"event_type": etype})
            metrics.EVENTS.labels(etype, "no_export").inc()
            await self.bridge.ack(d)
            return
        stop = asyncio.Event()
        self._stops.add(stop)
        if self.stopping.is_set():
            stop.set()
        timer = asyncio.get_running_loop().call_later(
            max(0.0, self.max_unacked * (1 - CHECKPOINT_MARGIN) - (time.monotonic() - received)), stop.set)
        heartbeat = asyncio.ensure_future(self._heartbeat(d))
        try:
            outcomes = await asyncio.gather(*(self._process(job, stop) for job in jobs), return_exceptions=True)
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
            await self.bridge.ack(d)
            for outcome in outcomes:
                metrics.EVENTS.labels(etype, outcome).inc()
        except asyncio.CancelledError:
            log.warning("shutdown grace period over: delivery handed back to the broker")
            with contextlib.suppress(Exception):
                await asyncio.shield(self.bridge.requeue(d))
            raise
        except Exception:
            # Not acked: the broker redelivers (a poison message ends in the DLQ by the delivery limit).
            log.exception("handling a delivery failed; it will be redelivered", extra={"event_type": etype})
            metrics.EVENTS.labels(etype, "error").inc()
            with contextlib.suppress(Exception):
                await self.bridge.requeue(d)
        finally:
            timer.cancel()
            heartbeat.cancel()
            self._stops.discard(stop)

    async def _heartbeat(self, d: Delivery) -> None:
        """Keep an SQS delivery invisible to other consumers while we hold it (no-op on RabbitMQ)."""
        interval = max(1.0, self.bridge.visibility_timeout / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.bridge.hold(d)
            except Exception:  # the next beat tries again; losing one only risks a cheap redelivery
                log.warning("could not extend the delivery's visibility", exc_info=True)

    async def _dead_letter(self, d: Delivery, reason: str, reason_class: str, etype: str) -> None:
        log.warning("message dead-lettered: %s", reason, extra={"reason_class": reason_class})
        await self.bridge.dead_letter(d, reason, reason_class)
        metrics.DEAD_LETTERED.labels(reason_class).inc()
        metrics.EVENTS.labels(etype if etype in _KNOWN_TYPES else "invalid", "dead_lettered").inc()

    # ------------------------------------------------------------------------------------ dispatch
    def _check_uri(self, uri: str) -> None:
        prefixes = self.config.worker.snapshot_prefixes
        if prefixes is not None and not any(uri.startswith(p) for p in prefixes):
            raise Rejected(f"snapshot URI {uri[:300]!r} is outside [worker] snapshot_prefixes; publish snapshots "
                           f"under an allowed prefix or add it to the worker's config", "forbidden_uri")

    async def _jobs(self, event: dict[str, Any]) -> list[Job]:
        if event["type"] == "segment.refreshed":
            snap = event["snapshot"]
            self._check_uri(snap["uri"])
            jobs = []
            for export in self.config.exports_for_segment(event["segment"]["id"]):
                await self.engine.remember_snapshot(export.name, snap, event["refresh_id"], event["occurred_at"])
                jobs.append(Job(self._spec(export, snap, event["refresh_id"], event["occurred_at"], False,
                                           run_id_for(export.name, event["refresh_id"])), 0))
            return jobs
        if event["type"] == "export.requested":
            export = self.config.exports.get(event["export"])
            if export is None:
                raise Rejected(f"export.requested names export {event['export'][:200]!r}, which this worker's "
                               f"config does not define", "unknown_export")
            snap = event.get("snapshot")
            refresh_id = event.get("refresh_id")
            occurred_at = event.get("refreshed_at")
            if snap is None:
                last = await self.engine.last_snapshot(export.name)
                if last is None:
                    raise Rejected(f"export {export.name} has no known snapshot yet; include \"snapshot\" in the "
                                   f"request or wait for a segment.refreshed", "no_snapshot")
                snap, occurred_at = last["snapshot"], last["occurred_at"]
                refresh_id = refresh_id or last["refresh_id"]
            self._check_uri(snap["uri"])
            full = bool(event.get("full"))
            refresh_id = refresh_id or f"requested-{event['id']}"
            run_id = event.get("run_id") or run_id_for(export.name, f"{refresh_id}\0{event['id']}")
            return [Job(self._spec(export, snap, refresh_id, occurred_at, full, run_id),
                        int(event.get("continuation", 0)), bool(event.get("dry_run")))]
        raise Rejected(f"{event['type']} is not a request this worker acts on (it publishes those)", "unknown_type")

    @staticmethod
    def _spec(export: Export, snap: dict[str, Any], refresh_id: str, occurred_at: str | None, full: bool,
              run_id: str) -> RunSpec:
        return RunSpec(export=export, snapshot_uri=snap["uri"], refresh_id=refresh_id, run_id=run_id, full=full,
                       snapshot_format=snap.get("format"), snapshot_compression=snap.get("compression"),
                       occurred_at=occurred_at)

    # ------------------------------------------------------------------------------------ runs
    async def _process(self, job: Job, stop: asyncio.Event) -> str:
        """Run a job and publish what its end calls for; returns the outcome label.

        One run at a time per export in this process, and the lock is held until the completion event
        is confirmed and recorded: a second delivery of the same run then finds it published.
        """
        lock = self._export_locks.setdefault(job.spec.export.name, asyncio.Lock())
        waiter = asyncio.ensure_future(lock.acquire())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not waiter.done() or waiter.cancelled():
            waiter.cancel()
            await self._continue(job)  # never started: hand it on
            return "continued"
        try:
            if job.dry_run:
                return await self._dry_run(job)
            metrics.run_started(job.spec.export.name)
            t0 = time.monotonic()
            try:
                result = await self.engine.run(job.spec, stop)
            finally:
                metrics.run_ended(job.spec.export.name)
            if not result.interrupted and not result.stale and not result.replayed:
                metrics.RUN_DURATION.labels(job.spec.export.name).observe(time.monotonic() - t0)
            return await self._finish(job, result)
        finally:
            lock.release()

    async def _dry_run(self, job: Job) -> str:
        try:
            preview = await self.engine.dry_run(job.spec)
        except Exception as exc:  # a preview that cannot be made is reported, never retried forever
            log.error("dry run failed: %s", exc, extra={"export": job.spec.export.name})
            return "dry_run_failed"
        log.info("dry run: nothing sent", extra={"export": job.spec.export.name, "counts": preview["counts"]})
        return "dry_run"

    async def _finish(self, job: Job, result: RunResult) -> str:
        """Publish what the run's end calls for; returns the outcome label."""
        spec = job.spec
        if result.interrupted:
            await self._continue(job)
            return "continued"
        if result.stale:
            return "stale"
        assert result.event is not None
        if result.replayed and await self.engine.was_published(spec):
            log.info("duplicate request: run already completed and published", extra={"run_id": spec.run_id})
            return "duplicate"
        validate_event(result.event)
        await self.bridge.publish_event(result.event["type"], orjson.dumps(result.event))
        if self.on_published:
            self.on_published(result.event)
        if result.event["status"] != "failed":
            await self.engine.mark_published(spec)
        if not result.replayed:
            metrics.RUNS.labels(spec.export.name, result.event["status"]).inc()
            metrics.record_run(result.event)
        return "duplicate" if result.replayed else result.event["status"]

    async def _continue(self, job: Job) -> None:
        """Hand the run on: a request naming the run id, so the next worker resumes from its records."""
        spec = job.spec
        msg = {"type": "export.requested", "version": 1, "id": new_id(), "occurred_at": now_iso(),
               "export": spec.export.name, "full": spec.full, "run_id": spec.run_id, "refresh_id": spec.refresh_id,
               "segment": {"id": spec.export.segment}, "continuation": job.continuation + 1,
               "snapshot": {"uri": spec.snapshot_uri, "format": spec.snapshot_format or _guess_format(spec)}}
        if spec.snapshot_compression:
            msg["snapshot"]["compression"] = spec.snapshot_compression
        if spec.occurred_at:
            msg["refreshed_at"] = spec.occurred_at
        validate_event(msg)
        await self.bridge.publish_request(orjson.dumps(msg))
        metrics.CONTINUATIONS.labels(spec.export.name).inc()
        log.info("run handed on through a continuation", extra={"run_id": spec.run_id,
                                                                 "continuation": job.continuation + 1})


_KNOWN_TYPES = {"segment.refreshed", "export.requested"}


def _guess_format(spec: RunSpec) -> str:
    return "csv" if ".csv" in spec.snapshot_uri.rsplit("/", 1)[-1] else "jsonl"
