"""One export run, start to finish: plan -> send -> confirm -> commit, resumable at every step.

The engine knows nothing of brokers: the command line and the queue worker both call ``Engine.run``
with a ``RunSpec``. Every step leaves a record in the state store (``worker.runbook``), so any worker
can pick the run up where it stopped:

1. plan: read the snapshot page by page, map, validate, dedupe and diff against the synced state;
   each page's plan part is written once (``worker.plan``, handed over by ``worker.pipeline``);
2. send: each planned batch without an accepted record is sent, its batchId recorded at once;
3. confirm: each accepted batch is polled until final, its outcome recorded (2 and 3 overlap:
   ``BulkImporter``);
4. commit: outcomes are merged into a new synced state (``worker.commit``), the failure report is
   written (``worker.report``) and the completion event recorded.

A restarted run re-plans (deterministically, against the same uncommitted synced state), sends only
batches without an ``accepted`` record, polls those without a ``final`` one, and commits. So a crash
re-sends at most the batches that were in flight. Before anything is sent, the removal guard
(``worker.guard``) and ``max_profiles`` may refuse the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from worker.activecampaign.client import ActiveCampaignClient, ActiveCampaignError, BulkAccepted
from worker.activecampaign.importer import Batch, BatchOutcome, BulkImporter
from worker.activecampaign.limiter import RateLimiter
from worker.activecampaign.limiter_factory import make_limiter
from worker.activecampaign.readmission import readmit
from worker.commit import OPERATIONS, install, merge, tidy
from worker.config import Config, ConfigError, Connection, Export
from worker.events import CompletionEvent, completion_event, now_iso
from worker.fields import resolve_fields
from worker.guard import CODE as GUARD_CODE
from worker.guard import Removals, count_removals, verdict
from worker.hooks import HookBus, Hooks
from worker.leases import Lease, Leases, LeaseUnavailable
from worker.mapping import Mapper
from worker.pipeline import PlanFeed
from worker.plan import READMIT, Planner, PlanPart, tune_gc
from worker.runbook import Runbook
from worker.snapshot import Page, SnapshotError, read_pages
from worker.state import StateError, StateStore
from worker.synced import SyncedState
from worker.syncstate.manifest import Committed

log = logging.getLogger("segment_export.engine")

EXIT_OK, EXIT_FAILED, EXIT_PARTIAL = 0, 1, 3
SAMPLE_ROWS = 20
MILESTONE_SECONDS = 5.0
#: Re-entering contacts looked up at once (each lookup is up to three "other" requests).
READMIT_CONCURRENCY = 4


class RunError(Exception):
    """A run-level failure with a stable code for the ``export.failed`` event."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class RunSpec:
    """What to run: one export applied to one snapshot."""

    export: Export
    snapshot_uri: str
    refresh_id: str
    run_id: str
    full: bool = False
    snapshot_format: str | None = None
    snapshot_compression: str | None = None
    occurred_at: str | None = None  # when upstream refreshed the segment: orders refreshes for staleness
    allow_mass_removal: bool = False  # this run only: the removal guard does not stop it
    attempt: int = 1  # which attempt of a run retried after transient failures (events and logs carry it)


@dataclass
class Progress:
    """Live counters for a TTY progress line, a log milestone or a gauge."""

    export: str = ""
    run_id: str = ""
    profiles_read: int = 0
    batches_planned: int = 0
    batches_sent: int = 0
    batches_confirmed: int = 0
    contacts_sent: int = 0
    in_flight: int = 0  # accepted by AC, not yet final (resumed ones included)
    started: float = field(default_factory=time.monotonic)
    logged: float = 0.0  # when the last milestone was logged


@dataclass
class RunResult:
    """How a run ended. ``event`` is None when there is nothing to publish (interrupted, stale)."""

    event: CompletionEvent | None
    exit_code: int
    replayed: bool = False  # the run had completed before; this is its recorded event
    interrupted: bool = False  # stopped at a checkpoint on request; run it again (same run id) to go on
    stale: bool = False  # a newer refresh of the segment has already been synced for this export
    transient: bool = False  # failed for a reason a later attempt may not meet (the event is export.failed)
    busy: bool = False  # another run of the export holds its lease: nothing was done, run it again later
    lease_lost: bool = False  # interrupted because the lease was lost (another replica may have taken over)

    @property
    def outcome(self) -> str:
        if self.busy:
            return "lease_busy"
        if self.interrupted:
            return "interrupted"
        if self.stale:
            return "stale"
        if self.replayed:
            return "duplicate"
        return self.event["status"] if self.event else "unknown"


class RunInterrupted(Exception):
    """Raised inside a run when its stop event was set; the run's records let it resume."""


def error_code(exc: BaseException) -> str:
    """A stable, low-cardinality code for ``export.failed``'s ``error.code``."""
    if isinstance(exc, ActiveCampaignError):
        return f"activecampaign_{exc.code}"
    if isinstance(exc, RunError):
        return exc.code
    if isinstance(exc, SnapshotError):
        return "snapshot_unreadable"
    if isinstance(exc, StateError):
        return "state_store"
    if isinstance(exc, ConfigError):
        return "config"
    return "internal"


def is_transient(exc: BaseException) -> bool:
    """Worth retrying later: AC or storage unreachable, overloaded or slow; never a refusal or bad input."""
    if isinstance(exc, ActiveCampaignError | RunError | SnapshotError):
        return exc.transient
    return isinstance(exc, StateError | OSError)


def exit_code_for(status: str) -> int:
    return {"succeeded": EXIT_OK, "partial": EXIT_PARTIAL}.get(status, EXIT_FAILED)


class _CallbackHooks(Hooks):
    """The engine's older keyword callbacks (``on_progress``, ``on_request``) as a hook subscriber."""

    def __init__(self, on_progress: Callable[[Progress], None] | None,
                 on_request: Callable[[str, int, float], None] | None) -> None:
        self._progress, self._request = on_progress, on_request

    def run_progress(self, progress: Progress) -> None:
        if self._progress:
            self._progress(progress)

    def request_answered(self, endpoint: str, status: int, seconds: float) -> None:
        if self._request:
            self._request(endpoint, status, seconds)


class Engine:
    """Runs exports. One engine per process; it keeps one rate limiter per ActiveCampaign account."""

    def __init__(self, config: Config, store: StateStore, *, hooks: Hooks | None = None, page_size: int = 5000,
                 leases: Leases | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_request: Callable[[str, int, float], None] | None = None) -> None:
        """``leases``: one run per export across processes (the worker passes them; ``sync`` too)."""
        self.config = config
        self.store = store
        self.leases = leases
        self.page_size = page_size
        self.hooks = HookBus(*([hooks] if hooks else []))
        if on_progress or on_request:
            self.hooks.add(_CallbackHooks(on_progress, on_request))
        self._limiters: dict[str, RateLimiter] = {}
        tune_gc()

    # ------------------------------------------------------------------------------------ accounts
    def limiters(self) -> list[RateLimiter]:
        """Every account limiter this engine made (for the rate-limit wait metric)."""
        return list(self._limiters.values())

    def limiter_for(self, conn: Connection) -> RateLimiter:
        """One limiter per account (hostname), shared by every export and run in this process."""
        # The account is its API host; a simulator (base_url) is an account of its own per host and port.
        key = urlsplit(conn.base_url).netloc if conn.base_url else conn.hostname
        if key not in self._limiters:
            w = self.config.worker
            self._limiters[key] = make_limiter(
                connection_name=conn.name, hostname=key, requests_per_second=conn.requests_per_second,
                bulk_per_minute=conn.bulk_requests_per_minute, redis_url=w.redis_url,
                expected_replicas=w.expected_replicas, on_degraded=self.hooks.limiter_degraded)
        return self._limiters[key]

    def client_for(self, export: Export) -> ActiveCampaignClient:
        conn = self.config.connections[export.connection]
        return ActiveCampaignClient(conn.api_url, conn.api_key(), self.limiter_for(conn),
                                    on_request=self.hooks.request_answered)

    async def _mapper(self, client: ActiveCampaignClient, export: Export) -> Mapper:
        """Resolve custom fields (by personalization tag or title, every page) before anything is sent.

        Any name that matches no field, or several, fails the run here, naming the field: a mapping
        that cannot be honoured must stop the run rather than sync contacts without the value.
        """
        if not export.fields:
            return Mapper(export)
        resolved, problems = resolve_fields(export, await client.custom_fields())
        if problems:
            code = "unknown_field" if any("matches no field" in p for p in problems) else "ambiguous_field"
            raise RunError(code, f"export {export.name}: " + "; ".join(problems))
        return Mapper(export, resolved=resolved)

    async def _check_list(self, client: ActiveCampaignClient, export: Export) -> None:
        """The list exists and the key works (401/403, or AC's HTML login page, fail the run here)."""
        if await client.get_list(export.list_id) is None:
            raise RunError("list_not_found", f"export {export.name}: ActiveCampaign has no list with id "
                                             f"{export.list_id}; fix exports.{export.name}.list_id")

    def _pages(self, spec: RunSpec) -> Iterator[Page]:
        return read_pages(spec.snapshot_uri, format=spec.snapshot_format, compression=spec.snapshot_compression,
                          page_size=self.page_size)

    def _planner(self, spec: RunSpec, mapper: Mapper, synced: SyncedState) -> Planner:
        export = spec.export
        return Planner(mapper, synced, full=spec.full, unsubscribe_leavers=export.on_leave == "unsubscribe",
                       readmit=export.readmit)

    def _load_synced(self, book: Runbook) -> tuple[SyncedState, str | None]:
        """The committed state's key columns (read shard by shard; a v1 state is migrated at the commit)."""
        return SyncedState.load(self.store, book.keys.synced)

    async def aclose(self) -> None:
        """Release what the limiters hold (Redis probes and connections); the engine is done."""
        from worker.redis_clients import close_redis_clients

        for limiter in self._limiters.values():
            closer = getattr(limiter, "aclose", None)
            if closer is not None:
                await closer()
        await close_redis_clients()

    # ------------------------------------------------------------------------------------ preflight
    def count_profiles(self, spec: RunSpec) -> int:
        """Profiles in the snapshot (rows plus unreadable lines, as a run counts them); reads it once."""
        return sum(len(page.rows) + len(page.errors) for page in self._pages(spec))

    def _check_max_profiles(self, spec: RunSpec) -> None:
        """Fail before anything is sent when the snapshot holds more than the export's ``max_profiles``.

        Why a counting pass rather than a check while planning: planning and sending overlap (the first
        batch leaves after the first page), so a check during planning would fail a run half-synced. One
        extra read of the snapshot is cheap next to sending it, and it only happens when the cap is set.
        """
        cap = spec.export.max_profiles
        if not cap:
            return
        count = self.count_profiles(spec)
        if count > cap:
            raise RunError("too_many_profiles",
                           f"the snapshot holds {count:,} profiles, more than max_profiles = {cap:,} "
                           f"(exports.{spec.export.name}.max_profiles); nothing was sent. Check the segment, "
                           f"or raise the cap if it is right")

    def _check_removals(self, spec: RunSpec, synced: SyncedState) -> None:
        """The removal guard, before any request: refuse a run that would unsubscribe too much of the list."""
        export = spec.export
        if spec.allow_mass_removal or export.on_leave != "unsubscribe" or not synced.subscribed():
            return
        message = verdict(export, count_removals(export, synced, self._pages(spec)))
        if message:
            self.hooks.guard_tripped(export.name)
            raise RunError(GUARD_CODE, message)

    # ------------------------------------------------------------------------------------ dry run
    async def dry_run(self, spec: RunSpec) -> dict[str, Any]:
        """What a run would change: counts per outcome and up to 20 sample rows per outcome.

        Sends no write request (its only calls to ActiveCampaign are the custom field lookup) and
        writes nothing to the state store. A run that would be refused (``max_profiles``, the removal
        guard) is reported in ``would_fail`` next to the counts (a person deciding whether to override
        wants both); a mapping that cannot be resolved raises RunError, as the run would. Sample emails
        are full here; the command line masks them unless asked not to.
        """
        book = Runbook(self.store, spec.export.name, spec.run_id)
        synced, _ = await asyncio.to_thread(self._load_synced, book)
        async with self.client_for(spec.export) as client:
            mapper = await self._mapper(client, spec.export)
        planner = self._planner(spec, mapper, synced)
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in (*OPERATIONS.values(), "invalid", "skipped")}

        def walk() -> None:
            for part in planner.plan(self._pages(spec)):
                for source, line, email, reason in part.invalid:
                    if len(samples["invalid"]) < SAMPLE_ROWS:
                        samples["invalid"].append({"email": email, "source": source, "line": line, "reason": reason})
                for email in part.skipped:
                    if len(samples["skipped"]) < SAMPLE_ROWS:
                        samples["skipped"].append({"email": email, "reason": "unsubscribed_in_activecampaign"})
                for b in part.batches:
                    for op, contact in zip(b.ops, b.contacts, strict=True):
                        rows = samples[OPERATIONS[op]]
                        if len(rows) < SAMPLE_ROWS:
                            rows.append(_sample_row(mapper, contact))

        try:
            await asyncio.to_thread(walk)
        except SnapshotError as exc:
            raise RunError("snapshot_unreadable", str(exc)) from None
        t = planner.totals
        counts = {"profiles": t.profiles, "invalid": t.invalid, "duplicates": t.duplicates,
                  "added": t.to_add + t.to_readmit, "updated": t.to_update, "unchanged": t.unchanged,
                  "removed": t.to_remove, "failed": 0, "skipped": t.skipped}
        result: dict[str, Any] = {"export": spec.export.name, "dry_run": True, "counts": counts,
                                  "readmit": t.to_readmit, "samples": samples}
        cap = spec.export.max_profiles
        if cap and t.profiles > cap:
            result["would_fail"] = {"code": "too_many_profiles",
                                    "message": f"the snapshot holds {t.profiles:,} profiles, more than "
                                               f"max_profiles = {cap:,} (exports.{spec.export.name}.max_profiles); "
                                               f"a run would send nothing"}
        elif not spec.allow_mass_removal:
            valid = t.profiles - t.invalid
            message = verdict(spec.export, Removals(t.to_remove, synced.subscribed(), valid))
            if message:
                result["would_fail"] = {"code": GUARD_CODE, "message": message.replace("Nothing was sent",
                                                                                       "A run would send nothing")}
        return result

    # ------------------------------------------------------------------------------------ run
    async def run(self, spec: RunSpec, stop: asyncio.Event | None = None) -> RunResult:
        """Run (or resume) one export to its end; never raises for run-level failures.

        ``stop``, once set, makes the run stop taking new batches, wait for the ones in flight to be
        final (a checkpoint) and return ``interrupted``; running the same spec again goes on from there.
        """
        started_at, t0 = now_iso(), time.monotonic()
        book = Runbook(self.store, spec.export.name, spec.run_id)
        ctx = {"run_id": spec.run_id, "export": spec.export.name, "segment": spec.export.segment,
               "attempt": spec.attempt}
        lease: Lease | None = None
        watcher: asyncio.Future[None] | None = None
        try:
            done = await asyncio.to_thread(book.completed)
            if done is not None:
                return RunResult(done, exit_code_for(done["status"]), replayed=True)
            if self.leases is not None:
                try:
                    lease = await self.leases.acquire(spec.export.name)
                except LeaseUnavailable as exc:
                    log.warning("export lease unavailable (%s); the run is put back", exc, extra=ctx)
                    return RunResult(None, EXIT_FAILED, busy=True)
                if lease is None:
                    log.info("another run of this export holds its lease; the run is put back", extra=ctx)
                    return RunResult(None, EXIT_FAILED, busy=True)
                done = await asyncio.to_thread(book.completed)  # finished while we waited for the lease?
                if done is not None:
                    return RunResult(done, exit_code_for(done["status"]), replayed=True)
            if await asyncio.to_thread(book.is_stale, spec.refresh_id, spec.occurred_at):
                log.info("stale refresh skipped: a newer refresh was already synced", extra=ctx)
                return RunResult(None, EXIT_OK, stale=True)
            log.info("run starting", extra=ctx)
            self.hooks.run_started(spec)
            run_stop, watcher = _stop_on_loss(stop, lease)
            counts, failures_uri = await self._execute(spec, book, run_stop)
            # Still under the lease: a duplicate delivery waiting for it must find the run completed.
            status = "partial" if counts["failed"] else "succeeded"
            event, ours = await asyncio.to_thread(
                book.complete, self._event(spec, status, counts, started_at, t0, failures_uri, None))
            await asyncio.to_thread(tidy, self.store, book, self.config.worker.retention_days)
        except RunInterrupted:
            lost = lease is not None and lease.lost.is_set()
            if lost:
                log.warning("run stopped: its export lease was lost (another replica may take over)", extra=ctx)
                self.hooks.lease_lost(spec.export.name)
            else:
                log.info("run interrupted at a checkpoint; it resumes from its records", extra=ctx)
            return self._ended(spec, RunResult(None, EXIT_FAILED, interrupted=True, lease_lost=lost), t0)
        except (RunError, SnapshotError, ActiveCampaignError, ConfigError, StateError) as exc:
            transient = is_transient(exc)
            log.error("run failed%s: %s", " (transient)" if transient else "", exc, extra=ctx)
            event = self._event(spec, "failed", {}, started_at, t0, None,
                                {"code": error_code(exc), "message": str(exc)[:2000]})
            return self._ended(spec, RunResult(event, EXIT_FAILED, transient=transient), t0)
        finally:
            if watcher is not None:
                watcher.cancel()
            if lease is not None:
                await lease.release()
        if not ours:  # another worker finished the same run first: its event is the one of record
            return self._ended(spec, RunResult(event, exit_code_for(event["status"]), replayed=True), t0)
        log.info("run finished", extra={**ctx, "counts": counts, "status": status})
        return self._ended(spec, RunResult(event, exit_code_for(status)), t0)

    def _ended(self, spec: RunSpec, result: RunResult, t0: float) -> RunResult:
        self.hooks.run_finished(spec, result, time.monotonic() - t0)
        return result

    def _event(self, spec: RunSpec, status: str, counts: dict[str, int], started_at: str, t0: float,
               failures_uri: str | None, error: dict[str, str] | None) -> CompletionEvent:
        return completion_event(
            run_id=spec.run_id, export=spec.export.name, segment=spec.export.segment, refresh_id=spec.refresh_id,
            connection=spec.export.connection, list_id=spec.export.list_id, status=status, counts=counts,
            started_at=started_at, finished_at=now_iso(), duration_seconds=time.monotonic() - t0,
            failures_uri=failures_uri, error=error, attempt=spec.attempt)

    async def _execute(self, spec: RunSpec, book: Runbook, stop: asyncio.Event | None) -> tuple[dict[str, int], str]:
        """The four steps: plan (streamed), send and confirm (overlapping), commit."""
        export = spec.export
        synced, version = await asyncio.to_thread(self._load_synced, book)
        if synced.run_id == spec.run_id and synced.committed is not None:  # committed, then stopped before
            return synced.committed.counts, synced.committed.failures_uri  # recording completion: same end
        resume = await asyncio.to_thread(book.progress)
        async with self.client_for(export) as client:
            mapper = await self._mapper(client, export)
            if not resume.started:  # with batch records, an earlier attempt passed these checks
                await self._check_list(client, export)
                await asyncio.to_thread(self._check_max_profiles, spec)
                await asyncio.to_thread(self._check_removals, spec, synced)
            planner = self._planner(spec, mapper, synced)
            outcomes = await self._send(spec, book, client, planner, resume, stop)
        merged = await asyncio.to_thread(merge, book, export.list_id, synced, planner.totals,
                                         lambda n: outcomes.get(n) or self._stored_outcome(book, n))
        return await asyncio.to_thread(self._commit, spec, book, synced, version, merged)

    async def _send(self, spec: RunSpec, book: Runbook, client: ActiveCampaignClient, planner: Planner,
                    resume: Any, stop: asyncio.Event | None) -> dict[int, BatchOutcome]:
        """Plan the snapshot in a thread while batches are sent and confirmed; returns each batch's outcome."""
        export = spec.export
        outcomes: dict[int, BatchOutcome] = {}
        progress = Progress(export=export.name, run_id=spec.run_id, in_flight=len(resume.accepted))

        def on_part(part: PlanPart) -> None:  # planner thread
            if export.max_profiles and planner.totals.profiles > export.max_profiles:
                raise RunError("too_many_profiles",
                               f"the snapshot grew past max_profiles = {export.max_profiles} profiles "
                               f"(exports.{export.name}.max_profiles) while the run read it; nothing more is sent. "
                               f"Check the segment, then run again")
            if part.counts.to_remove and not spec.allow_mass_removal:
                self._guard_leavers(spec, planner)
            if part.batches or part.invalid or part.dropped or part.skipped or part.kept_out or part.number == 0:
                book.put_part(part)
            progress.profiles_read = planner.totals.profiles
            self._tick(progress)

        def on_batch() -> None:  # planner thread
            progress.batches_planned += 1

        async def on_accepted(batch: Batch, acc: BulkAccepted) -> None:
            assert acc.batch_id is not None
            await asyncio.to_thread(book.record_accepted, batch.number, acc.batch_id, batch.emails, acc.rejected,
                                    batch.kept_out)
            progress.batches_sent += 1
            progress.in_flight += 1
            progress.contacts_sent += len(batch.emails)
            self._tick(progress)

        async def on_final(outcome: BatchOutcome) -> None:
            await asyncio.to_thread(book.record_final, outcome)
            outcomes[outcome.number] = outcome
            progress.batches_confirmed += 1
            progress.in_flight = max(0, progress.in_flight - 1)
            self._tick(progress)

        feed = PlanFeed(planner.plan(self._pages(spec)), on_part=on_part, on_batch=on_batch, skip=resume.skip,
                        stop=stop, prepare={READMIT: self._readmitter(client, export, planner.left_at)})
        try:
            async with feed:
                withdrawn = await BulkImporter(client, export.list_id).run(
                    feed.batches(), accepted=resume.accepted, on_accepted=on_accepted, on_final=on_final,
                    stop=stop)
                stopped = feed.stopped or withdrawn > 0
                if not stopped:  # a stopped run leaves the planner mid-snapshot: leaving the feed ends it
                    await feed.planned()
        finally:
            progress.in_flight = 0
            self.hooks.run_progress(progress)
        if stopped:
            raise RunInterrupted
        self._tick(progress, force=True)
        return outcomes

    def _guard_leavers(self, spec: RunSpec, planner: Planner) -> None:
        """Backstop in the planner thread: the leavers found at the end of the snapshot, before they are
        handed over, are checked again (the snapshot may have changed since the guard's own pass)."""
        t = planner.totals
        message = verdict(spec.export, Removals(t.to_remove, planner.synced.subscribed(), t.profiles - t.invalid))
        if message:
            self.hooks.guard_tripped(spec.export.name)
            raise RunError(GUARD_CODE, message)

    def _readmitter(self, client: ActiveCampaignClient, export: Export,
                    left_at: dict[str, int]) -> Callable[[Batch], Any]:
        """The ``prepare`` step of re-entry batches: re-subscribe what this export unsubscribed, and only
        when the person did not unsubscribe themselves; returns the emails that stay out, with why."""
        slots = asyncio.Semaphore(READMIT_CONCURRENCY)

        async def prepare(batch: Batch) -> dict[str, str]:
            kept_out: dict[str, str] = {}

            async def one(email: str) -> None:
                async with slots:
                    decision = await readmit(client, email, export.list_id,
                                             unsubscribed_at=left_at.get(email) or None)
                if decision.result == "kept_out":
                    kept_out[email] = decision.reason
                self.hooks.readmission(export.name, "kept_out" if decision.result == "kept_out" else "readmitted")

            async with asyncio.TaskGroup() as group:
                for email in batch.emails:
                    group.create_task(one(email))
            return kept_out

        return prepare

    def _tick(self, progress: Progress, force: bool = False) -> None:
        """Report progress to the hooks, and log a milestone at most every MILESTONE_SECONDS."""
        self.hooks.run_progress(progress)
        now = time.monotonic()
        if force or now - progress.logged >= MILESTONE_SECONDS:
            progress.logged = now
            log.info("run progress", extra={
                "run_id": progress.run_id, "export": progress.export, "profiles_read": progress.profiles_read,
                "batches_planned": progress.batches_planned, "batches_sent": progress.batches_sent,
                "batches_confirmed": progress.batches_confirmed, "contacts_sent": progress.contacts_sent,
                "elapsed_seconds": round(now - progress.started, 1)})

    # ------------------------------------------------------------------------------------ commit
    def _commit(self, spec: RunSpec, book: Runbook, synced: SyncedState, version: str | None,
                merged: Any) -> tuple[dict[str, int], str]:
        """Write the failure report, install the new synced state (compare-and-swap), note the refresh. The
        run's records are deleted (``worker.commit.tidy``) once its completion is recorded, in ``run``."""
        try:
            failures_uri = merged.report.write(self.store, book.keys, spec.export.name)
            installed = install(self.store, book.keys, synced, version, merged.changes, spec.run_id,
                                Committed(merged.counts, failures_uri))
        finally:
            merged.changes.close()
        if installed is None:
            current = self.store.get(book.keys.synced)
            if current is None or SyncedState.decode(current).run_id != spec.run_id:
                raise RunError("concurrent_commit", f"export {spec.export.name}: another run committed the synced "
                                                    f"state while this one ran; it is retried to diff afresh",
                               transient=True)
        book.record_refresh(spec.refresh_id, spec.occurred_at or now_iso(), spec.snapshot_uri)
        return merged.counts, failures_uri

    def _stored_outcome(self, book: Runbook, n: int) -> BatchOutcome:
        outcome = book.final(n)
        if outcome is None:
            raise RunError("incomplete", f"batch {n} has no final outcome; the run cannot commit yet", transient=True)
        return outcome

    # ------------------------------------------------------------------------------------ markers
    async def mark_published(self, spec: RunSpec) -> None:
        """Record that the completion event was confirmed by the broker (a redelivery need not resend it)."""
        await asyncio.to_thread(Runbook(self.store, spec.export.name, spec.run_id).mark_published)

    async def was_published(self, spec: RunSpec) -> bool:
        return await asyncio.to_thread(Runbook(self.store, spec.export.name, spec.run_id).was_published)

    async def remember_snapshot(self, export: str, snapshot: dict[str, Any], refresh_id: str,
                                occurred_at: str) -> None:
        """Keep the segment's newest known snapshot per export, for ``export.requested`` without one."""
        await asyncio.to_thread(Runbook(self.store, export, "-").remember_snapshot, snapshot, refresh_id, occurred_at)

    async def last_snapshot(self, export: str) -> dict[str, Any] | None:
        return await asyncio.to_thread(Runbook(self.store, export, "-").last_snapshot)


def _stop_on_loss(stop: asyncio.Event | None,
                  lease: Lease | None) -> tuple[asyncio.Event | None, asyncio.Future[None] | None]:
    """One stop event for the run, set by the caller's ``stop`` or by losing the lease (stop sending at
    once), and the task that watches both (the caller cancels it when the run ends)."""
    if lease is None:
        return stop, None
    merged = asyncio.Event()

    async def watch() -> None:
        waits = [asyncio.ensure_future(lease.lost.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            merged.set()
        finally:
            for w in waits:
                w.cancel()

    return merged, asyncio.ensure_future(watch())


def _sample_row(mapper: Mapper, contact: dict[str, Any]) -> dict[str, Any]:
    """A dry-run sample: the contact as it would be sent, custom fields by the export's names for them."""
    row = dict(contact)
    if "fields" in row:
        row["fields"] = {mapper.field_names.get(f["id"], str(f["id"])): f["value"] for f in row["fields"]}
    return row
