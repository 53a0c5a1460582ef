"""One export run, start to finish: plan -> send -> confirm -> commit, resumable at every step.

The engine knows nothing of brokers: the command line and the queue worker both call ``Engine.run``
with a ``RunSpec``. Every step leaves a record in the state store (``worker.run.runbook``), so any worker
can pick the run up where it stopped:

1. plan: read the snapshot page by page, map, validate, dedupe and diff against the synced state;
   each page's plan part is written once (``worker.contacts.plan``, handed over by ``worker.run.pipeline``);
2. send: each planned batch without an accepted record is sent, its batchId recorded at once;
3. confirm: each accepted batch is polled until final, its outcome recorded (2 and 3 overlap:
   ``BulkImporter``);
4. commit: outcomes are merged into a new synced state (``worker.run.commit``), the failure report is
   written (``worker.run.report``); the manifest swap records the run, its counts and its refresh at once.

The protocol (issue 15, proved by the crash-point walker in ``tests/run/walker``):

- A plan is made against a base, the committed state (its digest), a snapshot and a config
  (``worker.run.plans``); its records live under its id and it is registered before its first part. A
  fresh plan first claims the state (one compare-and-swap of its manifest), so a commit made against the
  state as it was before (a writer that lost the lease) fails instead of landing over the new plan.
- A run that finds its own plan, still on the current base and with the same snapshot and config,
  resumes it: it re-plans deterministically, sends only batches without an ``accepted`` record, polls
  those without a ``final`` one, and commits. A crash re-sends at most the batches in flight.
- A run that finds any other plan on the current base (another run's, or its own made against another
  snapshot or config) first folds them all into the synced state (``worker.run.settle``), then plans
  afresh against the result: what ActiveCampaign already has is part of the diff.
- A run whose commit is recorded (``runs/<run>/committed``, written right after the swap, or the manifest's
  ``committed_by``: this one or one of the few after it, which covers a crash between the two) ends with
  the recorded counts: it writes what is missing of the refresh marker and the completion record and sends
  nothing; a run whose refresh is older than the one the state records is stale.
- Once the swap landed, nothing makes the run fail: a store error in the steps after it (the commit and
  refresh records, the completion record) ends the delivery ``interrupted`` with ``committed`` set, and the
  next delivery finishes those steps (the worker retries it with backoff; ``export.failed`` never follows
  a commit).
- The lease fences every POST and every store write of the run (``worker.run.fence``).

Between 3 and 4, tags this export added that no longer apply are removed (``worker.run.tags``, recorded
per contact under the plan); after 4 one request compares the list's subscribed count with the synced
state (``worker.run.drift``).

Before anything is sent, the removal guard (``worker.run.guard``) and ``max_profiles`` may refuse the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from worker.activecampaign.client import ActiveCampaignClient, ActiveCampaignError, BulkAccepted
from worker.activecampaign.importer import Batch, BatchOutcome, BulkImporter
from worker.activecampaign.leavers import leaver_check
from worker.activecampaign.limiter import RateLimiter
from worker.activecampaign.limiter_factory import make_limiter
from worker.activecampaign.readmission import readmitter
from worker.contacts.fields import resolve_fields
from worker.contacts.mapping import Mapper, profile_columns
from worker.contacts.plan import READMIT, REMOVE, Planner, PlanPart, tune_gc
from worker.contacts.synced import SyncedState
from worker.events.envelopes import CompletionEvent, completion_event, now_iso
from worker.leases import Lease, Leases, LeaseUnavailable
from worker.run import checks
from worker.run.commit import install, merge, tidy
from worker.run.drift import check_drift
from worker.run.expiry import cutoff as expiry_cutoff
from worker.run.fence import Fence, Fenced, FencedStore
from worker.run.guard import CODE as GUARD_CODE
from worker.run.history import record_failure
from worker.run.hooks import HookBus, Hooks
from worker.run.pipeline import PlanFeed
from worker.run.plans import PlanKey, claim, live_plans, open_refresh, register, shape_of
from worker.run.refreshes import newest
from worker.run.runbook import Runbook
from worker.run.settle import settle
from worker.run.tags import GivenByOthers, TagRemover, Untagged, account_peers, given_by_others, planned
from worker.run.types import (
    EXIT_FAILED,
    EXIT_OK,
    Progress,
    RunError,
    RunInterrupted,
    RunResult,
    RunSpec,
    RunStale,
    error_code,
    exit_code_for,
    is_transient,
)
from worker.settings import Config, ConfigError, Connection, Export
from worker.snapshot import Page, SnapshotError, read_pages, snapshot_identity
from worker.state import StateError, StateStore
from worker.syncstate.manifest import Committed, Refresh

log = logging.getLogger("segment_export.engine")

MILESTONE_SECONDS = 5.0
#: Times a run folds other plans in and looks again before it gives up to a commit that keeps winning.
SETTLE_ROUNDS = 3


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

    def client_for(self, export: Export, may_write: Callable[[], bool] | None = None) -> ActiveCampaignClient:
        """``may_write``: the run's fence (``worker.run.fence``), asked before every request that writes."""
        conn = self.config.connections[export.connection]
        return ActiveCampaignClient(conn.api_url, conn.api_key(), self.limiter_for(conn),
                                    timeout=self.config.worker.request_timeout_seconds,
                                    on_request=self.hooks.request_answered, may_write=may_write)

    def importer_for(self, client: ActiveCampaignClient, export: Export) -> BulkImporter:
        return BulkImporter(client, export.list_id)

    async def mapper_for(self, client: ActiveCampaignClient, export: Export) -> Mapper:
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

    def pages(self, spec: RunSpec) -> Iterator[Page]:
        return read_pages(spec.snapshot_uri, format=spec.snapshot_format, compression=spec.snapshot_compression,
                          page_size=self.page_size, columns=profile_columns(spec.export), rules=spec.snapshot_rules())

    def planner_for(self, spec: RunSpec, mapper: Mapper, synced: SyncedState) -> Planner:
        export = spec.export
        return Planner(mapper, synced, full=spec.full, unsubscribe_leavers=export.on_leave == "unsubscribe",
                       readmit=export.readmit, manage_tags=manages_tags(export, synced))

    def load_synced(self, book: Runbook) -> tuple[SyncedState, str | None]:
        """The committed state's key columns (read shard by shard; a v1 state is migrated at the commit)."""
        return SyncedState.load(self.store, book.keys.synced)

    async def aclose(self) -> None:
        """Release what the limiters hold (Redis probes and connections); the engine is done."""
        from worker.clients.redis import close_redis_clients

        for limiter in self._limiters.values():
            closer = getattr(limiter, "aclose", None)
            if closer is not None:
                await closer()
        await close_redis_clients()

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
        committed = False
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
            fence = Fence(lease, self.config.worker.request_timeout_seconds)
            book = Runbook(FencedStore(self.store, fence), spec.export.name, spec.run_id, token=fence.token)
            synced, version = await asyncio.to_thread(self.load_synced, book)
            mine = await asyncio.to_thread(_commit_of, book, synced)
            if mine is None and await asyncio.to_thread(_is_stale, spec, book, synced):
                raise RunStale
            log.info("run starting", extra=ctx)
            self.hooks.run_started(spec)
            run_stop, watcher = _stop_on_loss(stop, lease)
            if mine is not None:  # committed, then stopped before recording completion: the same end
                counts, failures_uri = mine.counts, mine.failures_uri
            else:
                counts, failures_uri = await self._execute(spec, book, synced, version, run_stop, fence)
            committed = True  # from here on the run has succeeded: a failure only delays its completion record
            await asyncio.to_thread(self._after_commit, spec, book, Committed(counts, failures_uri))
            # Drift: one request comparing the list with the committed state (worker.run.drift).
            drift = await check_drift(self.client_for(spec.export), self.store, book.keys.synced, spec.export)
            if drift is not None:
                self.hooks.list_drift(spec.export.name, drift.difference, drift.expected)
            # Still under the lease: a duplicate delivery waiting for it must find the run completed.
            status = "partial" if counts["failed"] else "succeeded"
            event, ours = await asyncio.to_thread(
                book.complete, self._event(spec, status, counts, started_at, t0, failures_uri, None,
                                           drift.as_event() if drift is not None else None))
            await asyncio.to_thread(tidy, book.store, book, self.config.worker.retention_days)
        except RunStale:
            log.info("stale refresh skipped: a newer refresh was already synced", extra=ctx)
            return RunResult(None, EXIT_OK, stale=True)
        except RunInterrupted as exc:
            lost = lease is not None and (lease.lost.is_set() or isinstance(exc, Fenced))
            if lost:
                log.warning("run stopped: its export lease was lost (another replica may take over)", extra=ctx)
                self.hooks.lease_lost(spec.export.name)
            else:
                log.info("run interrupted at a checkpoint; it resumes from its records", extra=ctx)
            return self._ended(spec, RunResult(None, EXIT_FAILED, interrupted=True, lease_lost=lost), t0)
        except (RunError, SnapshotError, ActiveCampaignError, ConfigError, StateError) as exc:
            if committed:  # the list and the state are committed: never export.failed; finish later
                log.warning("run committed, but its completion could not be recorded (%s); the next delivery "
                            "records it", exc, extra=ctx)
                return self._ended(spec, RunResult(None, EXIT_FAILED, interrupted=True, committed=True), t0)
            transient = is_transient(exc)
            log.error("run failed%s: %s", " (transient)" if transient else "", exc, extra=ctx)
            event = self._event(spec, "failed", {}, started_at, t0, None,
                                {"code": error_code(exc), "message": str(exc)[:2000]})
            await asyncio.to_thread(record_failure, self.store, book.keys, event)  # for `runs` (worker.run.history)
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
               failures_uri: str | None, error: dict[str, str] | None,
               drift: dict[str, Any] | None = None) -> CompletionEvent:
        tags = ({"contacts": counts["tags_contacts"], "removed": counts["tags_removed"]}
                if "tags_removed" in counts else None)  # managed tags (worker.run.tags)
        return completion_event(
            run_id=spec.run_id, export=spec.export.name, segment=spec.export.segment, refresh_id=spec.refresh_id,
            connection=spec.export.connection, list_id=spec.export.list_id, status=status, counts=counts,
            started_at=started_at, finished_at=now_iso(), duration_seconds=time.monotonic() - t0,
            failures_uri=failures_uri, error=error, attempt=spec.attempt, drift=drift, tags=tags,
            leavers_deleted=counts.get("leavers_deleted") or None)

    async def _execute(self, spec: RunSpec, book: Runbook, synced: SyncedState, version: str | None,
                       stop: asyncio.Event | None, fence: Fence) -> tuple[dict[str, int], str]:
        """The four steps: plan (streamed), send and confirm (overlapping), commit; first, when other plans
        were made against the current state, fold them in (``worker.run.settle``)."""
        export = spec.export

        def pages() -> Iterator[Page]:
            return self.pages(spec)

        # Listed before any request: a snapshot its marker or manifest says is unfinished fails here.
        snapshot = await asyncio.to_thread(snapshot_identity, spec.snapshot_uri, spec.snapshot_rules())
        async with self.client_for(export, fence.may_send) as client:
            mapper = await self.mapper_for(client, export)
            shape = shape_of(export, sorted(mapper.resolved.items()), spec.full, self.page_size)
            for _ in range(SETTLE_ROUNDS):
                key = PlanKey(synced.base, snapshot, shape)
                heads = await asyncio.to_thread(live_plans, book.store, export.name, synced.base, spec.run_id)
                if all((h.run_id, h.plan) == (spec.run_id, key.id) for h in heads):
                    break
                if await settle(book.store, export.name, export.list_id, heads, synced, version,
                                lambda: self.importer_for(client, export), others=self.given_by_others(export)):
                    synced, version = await asyncio.to_thread(self.load_synced, book)
                    continue
                synced, version = await asyncio.to_thread(self.load_synced, book)  # another commit won: again
                if await asyncio.to_thread(_commit_of, book, synced) is None and await asyncio.to_thread(
                        _is_stale, spec, book, synced):
                    raise RunStale
            else:
                raise RunError("concurrent_commit", f"export {export.name}: the synced state kept changing while "
                                                    f"this run folded earlier plans in; it is retried", transient=True)
            plan = book.for_plan(key.id, key.base)
            resume = await asyncio.to_thread(plan.progress)
            if not resume.started:  # with batch records, an earlier attempt passed these checks
                await self._refusable(spec, checks.check_list(client, export))
                await self._refusable(spec, asyncio.to_thread(checks.check_max_profiles, export, pages))
                await self._refusable(spec, asyncio.to_thread(checks.check_removals, spec, synced, pages))
            if not heads:  # a fresh plan: claim the state, then register the plan; from here on it may send
                synced, version = await self._claim(spec, book, synced, version, fence)
                key = PlanKey(synced.base, snapshot, shape)
                plan = book.for_plan(key.id, key.base)
                resume = await asyncio.to_thread(plan.progress)  # nothing: a plan made against its own claim
                await asyncio.to_thread(register, book.store, export.name, spec.run_id, key,
                                        Refresh(spec.refresh_id, spec.occurred_at) if spec.occurred_at else None)
            planner = self.planner_for(spec, mapper, synced)
            outcomes = await self._send(spec, plan, client, planner, resume, stop)

            def outcome_of(n: int) -> BatchOutcome:
                return outcomes.get(n) or self._stored_outcome(plan, n)

            untagged = await self._untag(spec, plan, client, planner, outcome_of, stop)
        others = self.given_by_others(export) if planner.manage_tags else None
        merged = await asyncio.to_thread(merge, plan, export.list_id, synced, planner.totals, outcome_of,
                                         expire_before=expiry_cutoff(export.readmit_days, time.time()),
                                         first_sent=None if others is None else others.first_sent)
        if untagged is not None:
            merged.counts.update(untagged.as_counts())
        return await asyncio.to_thread(self._commit, spec, plan, synced, version, merged)

    @staticmethod
    async def _claim(spec: RunSpec, book: Runbook, synced: SyncedState, version: str | None,
                     fence: Fence) -> tuple[SyncedState, str | None]:
        """Claim the state for a fresh plan (``worker.run.plans.claim``): a commit made against it as it was
        before (a writer that lost the lease) then fails instead of landing over the plan."""
        claimed = await asyncio.to_thread(claim, book.store, spec.export.name, spec.run_id, fence.token, synced,
                                          version)
        if claimed is None:
            raise RunError("concurrent_commit", f"export {spec.export.name}: the synced state changed while this "
                                                f"run claimed it for its plan; it is retried", transient=True)
        return claimed

    def given_by_others(self, export: Export) -> GivenByOthers | None:
        """The tags the account's other exports give a contact: never removed by this one (``worker.run.tags``)."""
        peers = account_peers(self.config, export)
        return given_by_others(self.store, peers) if peers else None

    async def _untag(self, spec: RunSpec, book: Runbook, client: ActiveCampaignClient, planner: Planner,
                     outcome_of: Callable[[int], BatchOutcome], stop: asyncio.Event | None) -> Untagged | None:
        """Managed tags: remove what the plan says contacts lose, once every batch is final (``worker.run.tags``)."""
        if not planner.manage_tags:
            return None
        items = await asyncio.to_thread(planned, book, outcome_of)
        untagged = await TagRemover(client, book, spec.export.list_id, stop=stop,
                                    others=self.given_by_others(spec.export)).run(items)
        if untagged.removed:
            self.hooks.tags_removed(spec.export.name, untagged.removed)
        return untagged

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
            if part.counts.to_remove:
                self._tripped(spec, checks.check_leavers, spec, planner.totals, planner.synced)
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

        feed = PlanFeed(planner.plan(self.pages(spec)), on_part=on_part, on_batch=on_batch, skip=resume.skip,
                        stop=stop, prepare={READMIT: readmitter(
                            client, export.list_id, planner.left_at,
                            on_decision=lambda result: self.hooks.readmission(export.name, result)),
                            REMOVE: leaver_check(client, export.list_id)})
        try:
            async with feed:
                withdrawn = await self.importer_for(client, export).run(
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

    async def _refusable(self, spec: RunSpec, check: Awaitable[None]) -> None:
        """Await a check; a removal guard refusal is announced to the hooks (metric, alert)."""
        try:
            await check
        except RunError as exc:
            if exc.code == GUARD_CODE:
                self.hooks.guard_tripped(spec.export.name)
            raise

    def _tripped(self, spec: RunSpec, check: Callable[..., None], *args: Any) -> None:
        """``_refusable`` for a check run in the planner thread."""
        try:
            check(*args)
        except RunError as exc:
            if exc.code == GUARD_CODE:
                self.hooks.guard_tripped(spec.export.name)
            raise

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
        """Write the failure report and install the new synced state (compare-and-swap; the manifest records the
        run, its counts and its refresh). What follows the swap is ``_after_commit``; the run's records are
        deleted (``worker.run.commit.tidy``) once its completion is recorded, in ``run``."""
        store = book.store
        try:
            failures_uri = merged.report.write(store, book.keys, spec.export.name)
            installed = install(store, book.keys, synced, version, merged.changes, spec.run_id,
                                Committed(merged.counts, failures_uri),
                                refresh=Refresh(spec.refresh_id, spec.occurred_at or ""))  # "": keeps the newest
        finally:
            merged.changes.close()
        if installed is None and SyncedState.decode(store.get(book.keys.synced)).committed_by(spec.run_id) is None:
            raise RunError("concurrent_commit", f"export {spec.export.name}: another run committed the synced "
                                                f"state while this one ran; it is retried to diff afresh",
                           transient=True)
        return merged.counts, failures_uri

    @staticmethod
    def _after_commit(spec: RunSpec, book: Runbook, committed: Committed) -> None:
        """What follows the swap, idempotent and repeated on every path that finds the commit done: the run's
        ``committed`` record (so it knows it committed after the manifest forgot it) and the ``last_refresh``
        marker, for workers of versions that do not read the manifest's refresh (newest refresh wins).

        A run without a refresh instant (``sync``, an ``export.requested`` with a snapshot and no
        ``refreshed_at``) records none: taking "now" for it would make a newer refresh still queued (made before
        the request, delivered after) stale. The manifest keeps the newest refresh it had (``commit.newest``)."""
        book.record_committed(committed, Refresh(spec.refresh_id, spec.occurred_at or ""))
        if spec.occurred_at:
            book.record_refresh(spec.refresh_id, spec.occurred_at, spec.snapshot_uri)

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


def _is_stale(spec: RunSpec, book: Runbook, synced: SyncedState) -> bool:
    """A newer refresh was committed, or is being synced by an open plan on the current state (an interrupted
    run of it, partly sent): syncing this one would undo it (``worker.run.plans.open_refresh``)."""
    known = newest(synced.refresh, open_refresh(book.store, spec.export.name, synced.base))
    return book.is_stale(spec.refresh_id, spec.occurred_at, known)


def _commit_of(book: Runbook, synced: SyncedState) -> Committed | None:
    """The run's commit, if it made one: as the manifest remembers it (the last few commits), else as the run
    recorded it right after its swap (``runs/<run>/committed``)."""
    return synced.committed_by(book.run_id) or book.committed_record()


def manages_tags(export: Export, synced: SyncedState) -> bool:
    """Whether a run of ``export`` removes the tags it added (``remove_tags``, and tags to add or remembered)."""
    return export.remove_tags and (bool(export.tags or export.tag_field) or synced.index.tag is not None)


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
