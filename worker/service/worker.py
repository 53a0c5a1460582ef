"""``segment-export run``: the long-running worker that turns request messages into export runs.

Per delivery, in four lines of intent (``_handle``): decide what the delivery calls for, then settle
it — ack, put back with a delay (``defer``), requeue, or dead-letter — whatever went wrong on the way.
No path leaves a delivery held: an unexpected error (the state store failing, a bug) puts the delivery
back with an exponential backoff and, after ``max_receive_count`` such tries, dead-letters it with the
reason. A settle the broker refuses is logged and counted (the broker then gives the message back by
itself). Deliveries held past their bound anyway are counted as stuck and fail ``/readyz``.

Deciding: read the message (``worker.events.incoming``: our event, a CloudEvent, or a storage
notification; malformed -> dead-letter queue with the reason). A notification's created objects that
match a segment's ``triggers`` become that segment's refreshes (``worker.service.triggers``); a test
event, a delete or an unrelated object is acked and counted. Then find the exports it concerns, run
each with the engine (one run per export at a time: a local lock, and the engine's lease across replicas),
publish each completion event with confirms, then ack. While a delivery is
held its SQS visibility is extended; after ``max_unacked_seconds`` (or on SIGTERM) every run stops
at a checkpoint and hands itself on as a continuation (``export.requested`` naming the run id).
A run whose lease is held elsewhere is put back with a delay; a run that failed transiently
(ActiveCampaign or storage unreachable) is retried as a delayed continuation with exponential backoff,
and only its last attempt publishes ``export.failed``. A run that committed and could not record its
completion (the store failed after the swap) never fails: it is retried the same way until it has.

At-least-once everywhere: the run id is derived from export + refresh id, so a redelivered or
duplicate message finds the run's ``completed`` record and only re-publishes the event if its
publication was never confirmed. Metrics and logs hang off hooks (``worker.run.hooks``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from worker.broker import BrokerBridge, Delivery, Topology, transport_options_for
from worker.events.envelopes import ExportRequested, SnapshotRef, new_id, now_iso
from worker.events.incoming import read_message
from worker.events.instants import MAX_FUTURE_SKEW, too_far_ahead
from worker.events.notifications import Notification
from worker.events.schemas import InvalidEvent, load_validators, validate_event
from worker.leases import open_leases
from worker.locations import LocationError, OutsidePrefixes, Prefixes
from worker.run.dryrun import dry_run
from worker.run.engine import Engine
from worker.run.hooks import HookBus, Hooks
from worker.run.runbook import run_id_for
from worker.run.types import RunResult, RunSpec
from worker.service import metrics
from worker.service.health import HealthServer
from worker.service.heartbeat import VisibilityHeartbeat
from worker.service.triggers import Refresh, Triggers
from worker.settings import Config, Export
from worker.state import open_store

log = logging.getLogger("segment_export.service")

CHECKPOINT_MARGIN = 0.2  # stop runs this share of the unacked bound early, so they reach a checkpoint in time
MAX_RETRY_DELAY = 900.0  # seconds: the longest a put-back request waits (SQS's DelaySeconds ceiling)
#: Header counting how often a delivery was put back after an unexpected error (dead-lettered past the limit).
RETRIES_HEADER = "x-segment-export-retries"
STUCK_CHECK_SECONDS = 5.0
NOTIFICATION = "notification"  # the event-type label of upstream notifications (S3, SNS, EventBridge)
_KNOWN_TYPES = {"segment.refreshed", "export.requested", NOTIFICATION}


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
    request: str | None = None  # the export.requested that started the run (its run id derives from it)


@dataclass
class Settlement:
    """How a delivery ends: ``action`` is ack | defer | dead_letter | requeue."""

    action: str
    event_type: str
    outcomes: list[str] = field(default_factory=list)  # ack: one label per job (metrics)
    reason: str = ""
    reason_class: str = ""
    delay: float = 0.0
    headers: dict[str, Any] = field(default_factory=dict)


def backoff_delay(base: float, tries: int) -> float:
    """``base`` doubled per earlier try, capped at MAX_RETRY_DELAY (tries counts from 1)."""
    return min(MAX_RETRY_DELAY, base * 2 ** max(0, tries - 1))


class Worker:
    """Consumes the requests queue until asked to stop; ``run()`` returns the process exit code."""

    def __init__(self, config: Config, *, broker_url: str | None = None,
                 transport_options: dict[str, Any] | None = None,
                 on_published: Callable[[dict[str, Any]], None] | None = None,
                 hooks: Hooks | None = None) -> None:
        self.config = config
        self.on_published = on_published  # sees every completion event once the broker confirmed it
        w = config.worker
        self.url = broker_url or w.broker_url
        self.topology = Topology(requests_queue=w.requests_queue, events_exchange=w.events_exchange,
                                 max_receive_count=w.max_receive_count)
        self.hooks = HookBus(metrics.MetricsHooks(), *([hooks] if hooks else []))
        store = open_store(w.state_url)
        leases = open_leases(w.redis_url, store, ttl=w.lease_seconds, owner=f"{socket.gethostname()}-{os.getpid()}")
        self.engine = Engine(config, store, hooks=self.hooks, leases=leases)
        metrics.watch_engine(self.engine)
        self.bridge = BrokerBridge(self.url, self.topology, prefetch=w.concurrency,
                                   transport_options=transport_options_for(
                                       self.url, **{**w.broker_options, **(transport_options or {})}))
        metrics.set_info(self.bridge.kind)
        self.prefixes = Prefixes.parse(w.snapshot_prefixes)  # normalised once, as every location will be
        self.triggers = Triggers(config.segments)
        self.max_unacked = w.max_unacked_seconds
        self.grace = w.shutdown_grace_seconds
        self.stopping = asyncio.Event()
        self._stops: set[asyncio.Event] = set()  # one per held delivery: set on shutdown
        self._tasks: set[asyncio.Task[None]] = set()
        self._export_locks: dict[str, asyncio.Lock] = {}
        self.draining = False
        self.ready = asyncio.Event()  # consuming: config loaded, broker connected
        self.stuck = 0  # deliveries held past their bound (readiness fails while > 0)

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
            health = HealthServer(self.config.worker.metrics_port, ready=self.is_ready,
                                  consumer_progress=lambda: self.bridge.last_progress)
            await health.start()
        watcher = asyncio.ensure_future(self._watch_stuck())
        try:
            await self.bridge.start(self._on_delivery)
            self.ready.set()
            log.info("worker consuming", extra={"queue": self.topology.requests_queue, "broker": self.bridge.kind})
            await self.stopping.wait()
            await self._drain()
        finally:
            watcher.cancel()
            await self.engine.aclose()
            if health:
                await health.stop()
        return 0

    def is_ready(self) -> bool:
        """Consuming, connected, not draining, and no delivery stuck past its bound."""
        return self.ready.is_set() and self.bridge.connected and self.stuck == 0

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

    async def _watch_stuck(self) -> None:
        """Count deliveries held longer than any run may hold one (the unacked bound plus the grace)."""
        bound = self.max_unacked + self.grace + STUCK_CHECK_SECONDS
        while True:
            now = time.monotonic()
            stuck = sum(1 for _, since in self.bridge.unsettled() if now - since > bound)
            if stuck != self.stuck:
                (log.error if stuck else log.info)("deliveries held past their bound: %d", stuck)
            self.stuck = stuck
            self.hooks.deliveries_stuck(stuck)
            await asyncio.sleep(STUCK_CHECK_SECONDS)

    # ------------------------------------------------------------------------------------ deliveries
    def _on_delivery(self, delivery: Delivery) -> None:
        task = asyncio.ensure_future(self._handle(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, d: Delivery) -> None:
        """Decide, then settle; whatever fails on the way, the delivery is settled once."""
        try:
            settlement = await self._decide(d)
        except asyncio.CancelledError:
            log.warning("shutdown grace period over: delivery handed back to the broker")
            await asyncio.shield(self._settle(d, Settlement("requeue", "unknown")))
            raise
        except Exception as exc:
            settlement = self._after_error(d, exc)
        await self._settle(d, settlement)

    def _after_error(self, d: Delivery, exc: Exception) -> Settlement:
        """An unexpected error while deciding: put the delivery back with a backoff, or give it up."""
        etype = _event_type(d.body)
        tries = int(d.headers.get(RETRIES_HEADER, 0) or 0) + 1
        what = f"{type(exc).__name__}: {exc}"[:500]
        if tries >= self.config.worker.max_receive_count:
            log.error("handling a delivery failed %d times; dead-lettered: %s", tries, what,
                      extra={"event_type": etype}, exc_info=exc)
            return Settlement("dead_letter", etype, reason=f"handling failed {tries} times; last error: {what}",
                              reason_class="handling_failed")
        delay = backoff_delay(self.config.worker.run_retry_base_seconds, tries)
        log.error("handling a delivery failed (try %d); put back in %.0f s: %s", tries, delay, what,
                  extra={"event_type": etype}, exc_info=exc)
        return Settlement("defer", etype, outcomes=["error"], delay=delay, headers={RETRIES_HEADER: tries})

    async def _settle(self, d: Delivery, s: Settlement) -> None:
        """Apply a settlement; a refusal is logged and counted (the broker gives the message back)."""
        try:
            if s.action == "ack":
                ok = await self.bridge.ack(d)
            elif s.action == "defer":
                ok = await self.bridge.defer(d, s.delay, headers=s.headers)
            elif s.action == "dead_letter":
                log.warning("message dead-lettered: %s", s.reason, extra={"reason_class": s.reason_class})
                ok = await self.bridge.dead_letter(d, s.reason, s.reason_class)
            else:
                ok = await self.bridge.requeue(d)
        except Exception:
            log.exception("settling a delivery (%s) failed", s.action)
            ok = False
        if not ok:
            log.error("could not %s a delivery; the broker will deliver it again", s.action.replace("_", "-"),
                      extra={"event_type": s.event_type})
            self.hooks.settle_failed(s.action)
            return
        if s.action == "dead_letter":
            self.hooks.delivery_dead_lettered(s.event_type if s.event_type in _KNOWN_TYPES else "invalid",
                                              s.reason_class)
        for outcome in s.outcomes or ([s.action] if s.action != "ack" else []):
            self.hooks.delivery_settled(s.event_type, outcome)

    async def _decide(self, d: Delivery) -> Settlement:
        received = d.received_at
        try:
            message = read_message(d.body)
        except InvalidEvent as exc:
            return Settlement("dead_letter", "invalid", reason=exc.reason, reason_class=exc.reason_class)
        notified = isinstance(message, Notification)
        etype = NOTIFICATION if isinstance(message, Notification) else str(message["type"])
        try:
            jobs = await (self._notified(message) if isinstance(message, Notification) else self._jobs(message))
        except Rejected as exc:
            return Settlement("dead_letter", etype, reason=exc.reason, reason_class=exc.reason_class)
        if not jobs:
            if notified:
                return Settlement("ack", etype, outcomes=["ignored"])
            log.info("no export is configured for this segment; acked", extra={"event_type": etype})
            return Settlement("ack", etype, outcomes=["no_export"])
        stop = asyncio.Event()
        self._stops.add(stop)
        if self.stopping.is_set():
            stop.set()
        timer = asyncio.get_running_loop().call_later(
            max(0.0, self.max_unacked * (1 - CHECKPOINT_MARGIN) - (time.monotonic() - received)), stop.set)
        heartbeat = asyncio.ensure_future(VisibilityHeartbeat(self.bridge, self.hooks, d, stop).run())
        try:
            outcomes = await asyncio.gather(*(self._process(job, stop) for job in jobs), return_exceptions=True)
        finally:
            timer.cancel()
            heartbeat.cancel()
            self._stops.discard(stop)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return Settlement("ack", etype, outcomes=[str(o) for o in outcomes])

    # ------------------------------------------------------------------------------------ dispatch
    def _admit(self, snap: dict[str, Any]) -> dict[str, Any]:
        """The event's snapshot, with the URI of the location that was checked (what the run reads).

        The location is decided by ``worker.locations`` (decoded once, normalised, links resolved) and
        compared with the prefixes on whole segments; the run then reads that canonical URI, not the
        event's text, so what was checked is what is read.
        """
        try:
            location = self.prefixes.admit(snap["uri"])
        except OutsidePrefixes as exc:  # the prefixes go to our log, never to the publisher's DLQ reason
            log.warning("snapshot URI outside snapshot_prefixes (%s): %s", exc.detail, exc)
            raise Rejected(str(exc), "forbidden_uri") from None
        except LocationError as exc:
            raise Rejected(f"snapshot URI: {exc}", "bad_uri") from None
        return {**snap, "uri": location.uri}

    async def _refresh_jobs(self, segment: str, snapshot: dict[str, Any], refresh_id: str,
                            occurred_at: str) -> list[Job]:
        """A run of every export of ``segment`` on the (admitted) snapshot; the run id follows the refresh id."""
        _refuse_future(occurred_at, "occurred_at")
        jobs = []
        for export in self.config.exports_for_segment(segment):
            await self.engine.remember_snapshot(export.name, snapshot, refresh_id, occurred_at)
            jobs.append(Job(self._spec(export, snapshot, refresh_id, occurred_at, False,
                                       run_id_for(export.name, refresh_id)), 0))
        return jobs

    async def _notified(self, notification: Notification) -> list[Job]:
        """The runs an upstream notification starts: each created object matching a segment's triggers.

        Everything else a bucket announces (the test event sent when a notification is configured, a
        delete, an object under no trigger) is acked, logged and counted by reason, never dead-lettered:
        a bucket notification carries unrelated objects. Every snapshot is admitted (``snapshot_prefixes``)
        before any run starts, so one outside them dead-letters the whole message and runs nothing.
        """
        if notification.test_event:
            self._ignored("test_event", "an S3 test event (sent when a bucket notification is configured)")
            return []
        refreshes: list[Refresh] = []
        for note in notification.objects:
            if note.action != "created":
                self._ignored("deleted" if note.action == "deleted" else "not_created",
                              f"{note.uri[:300]} was not created or not finished ({note.action})")
                continue
            try:
                found = self.triggers.refreshes(note)
            except LocationError as exc:
                self._ignored("bad_location", f"the announced object names no place we read: {exc}")
                continue
            if not found:
                self._ignored("no_trigger", f"{note.uri[:300]} matches no segment's triggers")
            refreshes.extend(found)
        for refresh in refreshes:  # every refresh checked before any is remembered or run
            _refuse_future(refresh.occurred_at, "the notification's time")
        admitted = [(r, self._admit({"uri": r.snapshot_uri})) for r in refreshes]
        jobs: list[Job] = []
        for refresh, snapshot in admitted:
            log.info("a created object announced a segment refresh", extra={
                "segment": refresh.segment, "marker": refresh.marker[:300], "snapshot": snapshot["uri"][:300],
                "refresh_id": refresh.refresh_id, "occurred_at": refresh.occurred_at})
            jobs += await self._refresh_jobs(refresh.segment, snapshot, refresh.refresh_id, refresh.occurred_at)
        return jobs

    def _ignored(self, reason: str, what: str) -> None:
        log.info("notification acked without a run (%s): %s", reason, what)
        self.hooks.notification_ignored(reason)

    async def _jobs(self, event: dict[str, Any]) -> list[Job]:
        if event["type"] == "segment.refreshed":
            return await self._refresh_jobs(event["segment"]["id"], self._admit(event["snapshot"]),
                                            event["refresh_id"], event["occurred_at"])
        if event["type"] == "export.requested":
            named = self.config.exports.get(event["export"])
            if named is None:
                raise Rejected(f"export.requested names export {event['export'][:200]!r}, which this worker's "
                               f"config does not define", "unknown_export")
            export = named
            snap = event.get("snapshot")
            refresh_id = event.get("refresh_id")
            occurred_at = event.get("refreshed_at")
            _refuse_future(occurred_at, "refreshed_at")
            if snap is None:
                last = await self.engine.last_snapshot(export.name)
                if last is None:
                    raise Rejected(f"export {export.name} has no known snapshot yet; include \"snapshot\" in the "
                                   f"request or wait for a segment.refreshed", "no_snapshot")
                snap, occurred_at = last["snapshot"], last["occurred_at"]
                refresh_id = refresh_id or last["refresh_id"]
            snap = self._admit(snap)
            full = bool(event.get("full"))
            refresh_id = refresh_id or f"requested-{event['id']}"
            request = event.get("request_id") if "continuation" in event else event["id"]
            run_id = _run_of(export.name, refresh_id, request, event)
            spec = self._spec(export, snap, refresh_id, occurred_at, full, run_id,
                              allow_mass_removal=bool(event.get("allow_mass_removal")),
                              attempt=int(event.get("attempt", 1)))
            return [Job(spec, int(event.get("continuation", 0)), bool(event.get("dry_run")), request)]
        raise Rejected(f"{event['type']} is not a request this worker acts on (it publishes those)", "unknown_type")

    def _spec(self, export: Export, snap: dict[str, Any], refresh_id: str, occurred_at: str | None, full: bool,
              run_id: str, *, allow_mass_removal: bool = False, attempt: int = 1) -> RunSpec:
        return RunSpec(export=export, snapshot_uri=snap["uri"], refresh_id=refresh_id, run_id=run_id, full=full,
                       snapshot_format=snap.get("format"), snapshot_compression=snap.get("compression"),
                       occurred_at=occurred_at, allow_mass_removal=allow_mass_removal, attempt=attempt,
                       snapshot_prefixes=self.config.worker.snapshot_prefixes,
                       snapshot_admitted=True)  # every snapshot here went through _admit

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
            return await self._finish(job, await self.engine.run(job.spec, stop))
        finally:
            lock.release()

    async def _dry_run(self, job: Job) -> str:
        try:
            preview = await dry_run(self.engine, job.spec)
        except Exception as exc:  # a preview that cannot be made is reported, never retried forever
            log.error("dry run failed: %s", exc, extra={"export": job.spec.export.name})
            return "dry_run_failed"
        log.info("dry run: nothing sent", extra={"export": job.spec.export.name, "counts": preview["counts"],
                                                  "would_fail": preview.get("would_fail")})
        return "dry_run"

    async def _finish(self, job: Job, result: RunResult) -> str:
        """Publish what the run's end calls for; returns the outcome label."""
        spec, w = job.spec, self.config.worker
        if result.busy:  # another replica runs this export: come back when its run may be over
            self.hooks.lease_busy(spec.export.name)
            await self._continue(job, delay=max(1.0, w.lease_seconds / 2))
            return "lease_busy"
        if result.committed:  # committed, its completion not recorded (the store failed): finish it later
            await self._continue(job, delay=backoff_delay(w.run_retry_base_seconds, spec.attempt),
                                 attempt=spec.attempt + 1)
            return "continued"
        if result.interrupted:
            await self._continue(job, delay=w.lease_seconds if result.lease_lost else 0.0)
            return "continued"
        if result.stale:
            return "stale"
        assert result.event is not None
        if result.transient and spec.attempt < w.max_run_attempts:
            delay = backoff_delay(w.run_retry_base_seconds, spec.attempt)
            log.warning("run failed transiently; attempt %d of %d follows in %.0f s", spec.attempt + 1,
                        w.max_run_attempts, delay, extra={"run_id": spec.run_id, "attempt": spec.attempt,
                                                          "error": result.event.get("error", {}).get("code")})
            self.hooks.run_retried(spec.export.name)
            await self._continue(job, delay=delay, attempt=spec.attempt + 1)
            return "retrying"
        if result.replayed and await self.engine.was_published(spec):
            log.info("duplicate request: run already completed and published", extra={"run_id": spec.run_id})
            return "duplicate"
        validate_event(result.event)
        await self.bridge.publish_event(result.event["type"], orjson.dumps(result.event))
        if self.on_published:
            self.on_published(dict(result.event))
        if result.event["status"] != "failed":
            await self.engine.mark_published(spec)
        self.hooks.event_published(result.event, not result.replayed)
        return "duplicate" if result.replayed else result.event["status"]

    async def _continue(self, job: Job, *, delay: float = 0.0, attempt: int | None = None) -> None:
        """Hand the run on: a request naming the run id, so the next worker resumes from its records."""
        spec = job.spec
        snapshot: SnapshotRef = {"uri": spec.snapshot_uri}  # the format only when the run was given one
        if spec.snapshot_format in ("jsonl", "csv"):
            snapshot["format"] = "csv" if spec.snapshot_format == "csv" else "jsonl"
        if spec.snapshot_compression in ("none", "gzip"):
            snapshot["compression"] = "gzip" if spec.snapshot_compression == "gzip" else "none"
        msg: ExportRequested = {
            "type": "export.requested", "version": 1, "id": new_id(), "occurred_at": now_iso(),
            "export": spec.export.name, "full": spec.full, "run_id": spec.run_id, "refresh_id": spec.refresh_id,
            "segment": {"id": spec.export.segment}, "continuation": job.continuation + 1, "snapshot": snapshot}
        if spec.occurred_at:
            msg["refreshed_at"] = spec.occurred_at
        if job.request:
            msg["request_id"] = job.request
        if spec.allow_mass_removal:
            msg["allow_mass_removal"] = True
        if (attempt or spec.attempt) > 1:
            msg["attempt"] = attempt or spec.attempt
        validate_event(dict(msg))
        await self.bridge.publish_request(orjson.dumps(msg), delay_seconds=delay)
        self.hooks.run_continued(spec.export.name)
        log.info("run handed on through a continuation", extra={
            "run_id": spec.run_id, "continuation": job.continuation + 1, "delay_seconds": delay,
            "attempt": msg.get("attempt", 1)})


def _run_of(export: str, refresh_id: str, request: str | None, event: dict[str, Any]) -> str:
    """The run an ``export.requested`` runs: derived from its refresh and request, never taken on trust.

    Why: a request naming any run id would run its snapshot under another refresh's run, which then counts as
    completed, and the real refresh would only replay that run's event. Only a continuation names its run
    (the schema refuses ``run_id`` elsewhere), and that run must be the one its refresh (and the request that
    started it) derive.
    """
    named = event.get("run_id")
    own = run_id_for(export, f"{refresh_id}\0{request}") if request else run_id_for(export, refresh_id)
    if named is None:
        return own
    if "continuation" not in event:  # the schema refuses it already; kept for callers that skip it
        raise Rejected("export.requested: run_id is only allowed on a continuation (with continuation set)",
                       "schema")
    if named not in (own, run_id_for(export, refresh_id)):
        raise Rejected(f"export.requested: run_id {named[:64]} is not the run of refresh {refresh_id[:64]!r}"
                       f"{' and request ' + repr(request[:64]) if request else ''}; a continuation continues only "
                       f"its own run: publish the request without run_id and continuation", "foreign_run")
    return named


def _refuse_future(at: str | None, name: str) -> None:
    """Refuse a refresh dated ahead of this clock by more than the skew clocks may have (``future_refresh``).

    Why: the newest refresh recorded decides which later ones are stale, so one dated next year would hold off
    every genuine refresh until then. Refused before anything is remembered or run.
    """
    if too_far_ahead(at):
        raise Rejected(f"{name} {str(at)[:64]} is more than {MAX_FUTURE_SKEW.seconds // 60} minutes ahead of this "
                       f"worker's clock; a refresh cannot have happened in the future: fix the publisher's clock "
                       f"or the event's {name} and publish it again", "future_refresh")


def _event_type(body: bytes) -> str:
    """The event's type for labels, from a body that may be anything."""
    with contextlib.suppress(Exception):
        etype = orjson.loads(body).get("type")
        if etype in _KNOWN_TYPES:
            return str(etype)
    return "unknown"

