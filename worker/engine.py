"""One export run, start to finish: plan -> send -> confirm -> commit, resumable at every step.

The engine knows nothing of brokers: the CLI and the queue worker both call ``Engine.run`` with a
``RunSpec``. Every step leaves a record in the state store under ``exports/<export>/runs/<run_id>/``:

- ``plan/part-NNNNN``: the diff of one snapshot page as batches (written once, put-if-absent). Line 1
  is a header (counts, invalid rows, per-batch emails/fingerprints/ops); then one line per batch with
  the contacts to send.
- ``batches/NNNNN.accepted``: AC's batchId, recorded right after the 200, before anything else.
- ``batches/NNNNN.final``: the per-contact outcome once AC finished the batch.
- ``failures.jsonl`` / ``failures.csv``: the failure report; ``completed``: the event (put-if-absent).

A restarted run re-plans (deterministically, against the same uncommitted synced state), sends only
batches without an ``accepted`` record, polls those without a ``final`` one, and commits. So a crash
re-sends at most the batches that were in flight. The synced state is replaced only once every batch
has a final outcome, and contacts AC failed keep their old entry, so the next run retries them.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from worker.activecampaign.client import ActiveCampaignClient, ActiveCampaignError, BulkAccepted
from worker.activecampaign.importer import (
    FAILED_NOT_IMPORTED,
    SKIPPED_UNSUBSCRIBED,
    Batch,
    BatchOutcome,
    BulkImporter,
)
from worker.activecampaign.limiter import AccountLimiter
from worker.config import Config, ConfigError, Connection, Export
from worker.events import completion_event, now_iso
from worker.fields import resolve_fields
from worker.mapping import Mapper, mask_email
from worker.plan import ADD, REMOVE, UPDATE, Counts, Planner, PlanPart, tune_gc
from worker.runbook import RunKeys
from worker.snapshot import SnapshotError, read_pages
from worker.state import StateError, StateStore
from worker.synced import SKIPPED, SyncedState

log = logging.getLogger("segment_export.engine")

EXIT_OK, EXIT_FAILED, EXIT_PARTIAL = 0, 1, 3
SAMPLE_ROWS = 20
MILESTONE_SECONDS = 5.0
OPERATIONS = {ADD: "add", UPDATE: "update", REMOVE: "remove"}
#: The failure report's CSV columns (the JSON Lines records have the same keys, where they apply).
REPORT_COLUMNS = ("email", "stage", "reason", "detail", "source", "line", "operation")
#: New contacts failing in a row, at the end of a run, that make the report name the contact limit.
CONTACT_LIMIT_TAIL = 10
CONTACT_LIMIT_REASON = "not imported: the ActiveCampaign account has most likely reached its contact limit"


class RunError(Exception):
    """A run-level failure with a stable code for the ``export.failed`` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
    """Live counters for a TTY progress line or a log milestone."""

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

    event: dict[str, Any] | None
    exit_code: int
    replayed: bool = False  # the run had completed before; this is its recorded event
    interrupted: bool = False  # stopped at a checkpoint on request; run it again (same run id) to go on
    stale: bool = False  # a newer refresh of the segment has already been synced for this export

    @property
    def outcome(self) -> str:
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
    for cls, code in ((RunError, None), (SnapshotError, "snapshot_unreadable"), (StateError, "state_store"),
                      (ConfigError, "config")):
        if isinstance(exc, cls):
            return code or exc.code  # type: ignore[attr-defined]
    return "internal"


def exit_code_for(status: str) -> int:
    return {"succeeded": EXIT_OK, "partial": EXIT_PARTIAL}.get(status, EXIT_FAILED)


def encode_part(part: PlanPart) -> bytes:
    """Header line (all the commit needs) + one line of contacts per batch (all the sender needs)."""
    header = {
        "part": part.number,
        "counts": part.counts.as_dict(),
        "invalid": part.invalid,
        "dropped": part.dropped,
        "skipped": part.skipped,
        "batches": [{"n": b.number, "ops": "".join(b.ops), "emails": b.emails, "fps": b.fingerprints}
                    for b in part.batches],
    }
    lines = [orjson.dumps(header)]
    lines.extend(orjson.dumps({"n": b.number, "contacts": b.contacts}) for b in part.batches)
    return b"\n".join(lines) + b"\n"


def decode_part_header(data: bytes) -> dict[str, Any]:
    return orjson.loads(data.split(b"\n", 1)[0])


def _explain_contact_limit(new_contacts: list[dict[str, Any] | None], export: str) -> None:
    """Say "contact limit" in words an admin understands when the failures look like it.

    AC's import/info names the emails it did not import, never why. One pattern has a likely cause:
    from some point on, every *new* contact of the run failed (at least ``CONTACT_LIMIT_TAIL`` in a
    row, none created after them), which is what the plan's contact cap does (updates of existing
    contacts still go through). Those records get a reason that names the limit and the fix; the
    wording says "most likely" because AC does not confirm it.
    """
    tail: list[dict[str, Any]] = []
    for record in reversed(new_contacts):
        if record is None:
            break
        if record["reason"] != FAILED_NOT_IMPORTED:
            return  # some other, known reason (a failed batch, a validation refusal): not this pattern
        tail.append(record)
    if len(tail) < CONTACT_LIMIT_TAIL:
        return
    for record in tail:
        record["reason"] = CONTACT_LIMIT_REASON
        record["detail"] = (f"the last {len(tail)} new contacts of the run all failed, none was created after "
                            f"them; ActiveCampaign stops creating contacts at the plan's contact limit. Raise the "
                            f"limit or remove contacts in ActiveCampaign, then run the export again (failed "
                            f"contacts are retried)")
    log.warning("export %s: %d new contacts in a row were not imported; the ActiveCampaign account has most "
                "likely reached its contact limit", export, len(tail))


def _sample_row(mapper: Mapper, contact: dict[str, Any]) -> dict[str, Any]:
    """A dry-run sample: the contact as it would be sent, custom fields by the export's names for them."""
    row = dict(contact)
    if "fields" in row:
        row["fields"] = {mapper.field_names.get(f["id"], str(f["id"])): f["value"] for f in row["fields"]}
    return row


class Engine:
    """Runs exports. One engine per process; it keeps one rate limiter per ActiveCampaign account."""

    def __init__(self, config: Config, store: StateStore, *, page_size: int = 5000,
                 on_progress: Callable[[Progress], None] | None = None,
                 on_request: Callable[[str, int, float], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.page_size = page_size
        self.on_progress = on_progress
        self.on_request = on_request
        self._limiters: dict[str, AccountLimiter] = {}
        tune_gc()

    # ------------------------------------------------------------------------------------ helpers
    def limiter_for(self, conn: Connection) -> AccountLimiter:
        """One limiter per account (hostname), shared by every export and run in this process."""
        key = conn.base_url or conn.hostname
        if key not in self._limiters:
            self._limiters[key] = AccountLimiter(conn.requests_per_second, conn.bulk_requests_per_minute)
        return self._limiters[key]

    def client_for(self, export: Export) -> ActiveCampaignClient:
        conn = self.config.connections[export.connection]
        return ActiveCampaignClient(conn.api_url, conn.api_key(), self.limiter_for(conn),
                                    on_request=self.on_request)

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
        try:
            count = self.count_profiles(spec)
        except SnapshotError as exc:
            raise RunError("snapshot_unreadable", str(exc)) from None
        if count > cap:
            raise RunError("too_many_profiles",
                           f"the snapshot holds {count:,} profiles, more than max_profiles = {cap:,} "
                           f"(exports.{spec.export.name}.max_profiles); nothing was sent. Check the segment, "
                           f"or raise the cap if it is right")

    def _pages(self, spec: RunSpec):
        return read_pages(spec.snapshot_uri, format=spec.snapshot_format, compression=spec.snapshot_compression,
                          page_size=self.page_size)

    def _load_synced(self, keys: RunKeys) -> tuple[SyncedState, str | None]:
        got = self.store.get_versioned(keys.synced)
        if got is None:
            return SyncedState(), None
        return SyncedState.decode(got[0]), got[1]

    # ------------------------------------------------------------------------------------ dry run
    async def dry_run(self, spec: RunSpec) -> dict[str, Any]:
        """What a run would change: counts per outcome and up to 20 sample rows per outcome.

        Sends no write request (its only calls to ActiveCampaign are the custom field lookup) and
        writes nothing to the state store. A snapshot over ``max_profiles`` is reported in ``would_fail``
        next to the counts (a person deciding whether to raise the cap wants both); a mapping that cannot
        be resolved raises RunError, as the run would. Sample emails are full here; the command line
        masks them unless asked not to.
        """
        keys = RunKeys(spec.export.name, spec.run_id)
        synced, _ = await asyncio.to_thread(self._load_synced, keys)
        async with self.client_for(spec.export) as client:
            mapper = await self._mapper(client, spec.export)
        planner = Planner(mapper, synced.entries, full=spec.full,
                          unsubscribe_leavers=spec.export.on_leave == "unsubscribe")
        samples: dict[str, list[dict[str, Any]]] = {"add": [], "update": [], "remove": [], "invalid": [],
                                                    "skipped": []}
        names = OPERATIONS

        def walk() -> None:
            for part in planner.plan(self._pages(spec)):
                for source, line, email, reason in part.invalid:
                    if len(samples["invalid"]) < SAMPLE_ROWS:
                        samples["invalid"].append({"email": email, "source": source, "line": line, "reason": reason})
                for email in part.skipped:
                    if len(samples["skipped"]) < SAMPLE_ROWS:
                        samples["skipped"].append({"email": email, "reason": SKIPPED_UNSUBSCRIBED})
                for b in part.batches:
                    for op, contact in zip(b.ops, b.contacts, strict=True):
                        rows = samples[names[op]]
                        if len(rows) < SAMPLE_ROWS:
                            rows.append(_sample_row(mapper, contact))

        try:
            await asyncio.to_thread(walk)
        except SnapshotError as exc:
            raise RunError("snapshot_unreadable", str(exc)) from None
        t = planner.totals
        counts = {"profiles": t.profiles, "invalid": t.invalid, "duplicates": t.duplicates, "added": t.to_add,
                  "updated": t.to_update, "unchanged": t.unchanged, "removed": t.to_remove, "failed": 0,
                  "skipped": t.skipped}
        result: dict[str, Any] = {"export": spec.export.name, "dry_run": True, "counts": counts,
                                  "samples": samples}
        cap = spec.export.max_profiles
        if cap and t.profiles > cap:
            result["would_fail"] = {"code": "too_many_profiles",
                                    "message": f"the snapshot holds {t.profiles:,} profiles, more than "
                                               f"max_profiles = {cap:,} (exports.{spec.export.name}.max_profiles); "
                                               f"a run would send nothing"}
        return result

    # ------------------------------------------------------------------------------------ run
    async def run(self, spec: RunSpec, stop: asyncio.Event | None = None) -> RunResult:
        """Run (or resume) one export to its end; never raises for run-level failures.

        ``stop``, once set, makes the run stop taking new batches, wait for the ones in flight to be
        final (a checkpoint) and return ``interrupted``; running the same spec again goes on from there.
        """
        started_at, t0 = now_iso(), time.monotonic()
        keys = RunKeys(spec.export.name, spec.run_id)
        ctx = {"run_id": spec.run_id, "export": spec.export.name, "segment": spec.export.segment}
        try:
            done = await asyncio.to_thread(self.store.get, keys.completed)
            if done is not None:
                event = orjson.loads(done)
                return RunResult(event, exit_code_for(event["status"]), replayed=True)
            if await asyncio.to_thread(self._is_stale, keys, spec):
                log.info("stale refresh skipped: a newer refresh was already synced", extra=ctx)
                return RunResult(None, EXIT_OK, stale=True)
            log.info("run starting", extra=ctx)
            counts, failures_uri = await self._run(spec, keys, stop)
        except RunInterrupted:
            log.info("run interrupted at a checkpoint; it resumes from its records", extra=ctx)
            return RunResult(None, EXIT_FAILED, interrupted=True)
        except (RunError, SnapshotError, ActiveCampaignError, ConfigError, StateError) as exc:
            log.error("run failed: %s", exc, extra=ctx)
            event = self._event(spec, "failed", {}, started_at, t0, None,
                                {"code": error_code(exc), "message": str(exc)[:2000]})
            return RunResult(event, EXIT_FAILED)
        status = "partial" if counts["failed"] else "succeeded"
        event = self._event(spec, status, counts, started_at, t0, failures_uri, None)
        stored = await asyncio.to_thread(self.store.put_if_absent, keys.completed, orjson.dumps(event))
        if not stored:  # another worker finished the same run first: its event is the one of record
            data = await asyncio.to_thread(self.store.get, keys.completed)
            if data is not None:
                event = orjson.loads(data)
                return RunResult(event, exit_code_for(event["status"]), replayed=True)
        log.info("run finished", extra={**ctx, "counts": counts, "status": status})
        return RunResult(event, exit_code_for(status))

    async def mark_published(self, spec: RunSpec) -> None:
        """Record that the completion event was confirmed by the broker (a redelivery need not resend it)."""
        await asyncio.to_thread(self.store.put_if_absent, RunKeys(spec.export.name, spec.run_id).published, b"1")

    async def was_published(self, spec: RunSpec) -> bool:
        keys = RunKeys(spec.export.name, spec.run_id)
        return await asyncio.to_thread(self.store.get, keys.published) is not None

    async def remember_snapshot(self, export: str, snapshot: dict[str, Any], refresh_id: str,
                                occurred_at: str) -> None:
        """Keep the segment's newest known snapshot per export, for ``export.requested`` without one."""
        key = RunKeys(export, "-").last_snapshot
        rec = orjson.dumps({"snapshot": snapshot, "refresh_id": refresh_id, "occurred_at": occurred_at})

        def swap() -> None:
            for _ in range(5):
                got = self.store.get_versioned(key)
                if got is not None and orjson.loads(got[0]).get("occurred_at", "") > occurred_at:
                    return
                if self.store.replace_if_unchanged(key, rec, got[1] if got else None):
                    return

        await asyncio.to_thread(swap)

    async def last_snapshot(self, export: str) -> dict[str, Any] | None:
        data = await asyncio.to_thread(self.store.get, RunKeys(export, "-").last_snapshot)
        return orjson.loads(data) if data else None

    def _is_stale(self, keys: RunKeys, spec: RunSpec) -> bool:
        if not spec.occurred_at:
            return False
        data = self.store.get(keys.last_refresh)
        if data is None:
            return False
        last = orjson.loads(data)
        return last.get("occurred_at", "") > spec.occurred_at and last.get("refresh_id") != spec.refresh_id

    def _record_refresh(self, keys: RunKeys, spec: RunSpec) -> None:
        """Remember the newest refresh synced for this export (stale detection; newest wins)."""
        rec = {"refresh_id": spec.refresh_id, "occurred_at": spec.occurred_at or now_iso(), "run_id": spec.run_id,
               "snapshot": {"uri": spec.snapshot_uri}}
        for _ in range(5):
            got = self.store.get_versioned(keys.last_refresh)
            if got is not None and orjson.loads(got[0]).get("occurred_at", "") > rec["occurred_at"]:
                return
            if self.store.replace_if_unchanged(keys.last_refresh, orjson.dumps(rec), got[1] if got else None):
                return

    def _event(self, spec: RunSpec, status: str, counts: dict[str, int], started_at: str, t0: float,
               failures_uri: str | None, error: dict[str, str] | None) -> dict[str, Any]:
        return completion_event(
            run_id=spec.run_id, export=spec.export.name, segment=spec.export.segment, refresh_id=spec.refresh_id,
            connection=spec.export.connection, list_id=spec.export.list_id, status=status, counts=counts,
            started_at=started_at, finished_at=now_iso(), duration_seconds=time.monotonic() - t0,
            failures_uri=failures_uri, error=error)

    async def _run(self, spec: RunSpec, keys: RunKeys, stop: asyncio.Event | None) -> tuple[dict[str, int], str]:
        export = spec.export
        synced, version = await asyncio.to_thread(self._load_synced, keys)
        records = await asyncio.to_thread(self.store.list, keys.batches)
        finals = {int(k.rsplit("/", 1)[1].split(".")[0]) for k in records if k.endswith(".final")}
        accepted: dict[int, tuple[str, list[str], dict[str, str]]] = {}
        for k in records:
            n = int(k.rsplit("/", 1)[1].split(".")[0])
            if k.endswith(".accepted") and n not in finals:
                rec = orjson.loads(await asyncio.to_thread(self.store.get, k) or b"{}")
                if rec.get("batch_id"):
                    accepted[n] = (rec["batch_id"], rec["emails"], rec.get("rejected", {}))
        skip = finals | set(accepted)
        outcomes: dict[int, BatchOutcome] = {}
        progress = Progress(export=export.name, run_id=spec.run_id, in_flight=len(accepted))
        if export.max_profiles and not records:  # with batch records, an earlier attempt passed the check
            await asyncio.to_thread(self._check_max_profiles, spec)

        async with self.client_for(export) as client:
            mapper = await self._mapper(client, export)
            planner = Planner(mapper, synced.entries, full=spec.full,
                              unsubscribe_leavers=export.on_leave == "unsubscribe")
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=16)
            abort = threading.Event()
            end = object()

            def produce() -> None:
                """Plan thread: write each part once, hand its unsent batches to the sender."""
                try:
                    for part in planner.plan(self._pages(spec)):
                        if abort.is_set():
                            return
                        if export.max_profiles and planner.totals.profiles > export.max_profiles:
                            # counted before sending; only a snapshot that grew since gets here
                            raise RunError("too_many_profiles",
                                           f"the snapshot grew past max_profiles = {export.max_profiles} "
                                           f"profiles (exports.{export.name}.max_profiles) while the run read "
                                           f"it; nothing more is sent. Check the segment, then run again")
                        if part.batches or part.invalid or part.dropped or part.skipped or part.number == 0:
                            self.store.put_if_absent(keys.part(part.number), encode_part(part))
                        progress.profiles_read = planner.totals.profiles
                        self._tick(progress)
                        for b in part.batches:
                            progress.batches_planned += 1
                            if b.number in skip:
                                continue
                            item = Batch(b.number, b.contacts, b.emails)
                            while not abort.is_set():
                                fut = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
                                try:
                                    fut.result(timeout=1.0)
                                    break
                                except TimeoutError:
                                    fut.cancel()
                    log.debug("plan finished after %.2f s", time.monotonic() - progress.started)
                    asyncio.run_coroutine_threadsafe(queue.put(end), loop).result()
                except BaseException as exc:  # hand the failure to the sender's iterator
                    if not abort.is_set():
                        asyncio.run_coroutine_threadsafe(queue.put(exc), loop).result()

            stopped = False

            async def batches() -> AsyncIterator[Batch]:
                nonlocal stopped
                stop_wait = asyncio.ensure_future(stop.wait()) if stop else None
                try:
                    while True:
                        if stop is not None and stop.is_set():
                            stopped = True  # checkpoint: no new batches; those in flight still finish
                            return
                        if stop_wait is None:
                            item = await queue.get()
                        else:
                            getter = asyncio.ensure_future(queue.get())
                            await asyncio.wait({getter, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                            if not getter.done():
                                getter.cancel()
                                stopped = True  # checkpoint: no new batches; those in flight still finish
                                return
                            item = getter.result()
                        if item is end:
                            return
                        if isinstance(item, BaseException):
                            raise item
                        yield item
                finally:
                    if stop_wait is not None:
                        stop_wait.cancel()

            async def on_accepted(batch: Batch, acc: BulkAccepted) -> None:
                rec = {"batch_id": acc.batch_id, "emails": batch.emails,
                       "rejected": {str(k): v for k, v in acc.rejected.items()}}
                await asyncio.to_thread(self.store.put, keys.accepted(batch.number), orjson.dumps(rec))
                progress.batches_sent += 1
                progress.in_flight += 1
                progress.contacts_sent += len(batch.emails)
                self._tick(progress)

            async def on_final(outcome: BatchOutcome) -> None:
                rec = {"n": outcome.number, "batch_id": outcome.batch_id, "status": outcome.status,
                       "failed": outcome.failed, "skipped": outcome.skipped}
                await asyncio.to_thread(self.store.put, keys.final(outcome.number), orjson.dumps(rec))
                outcomes[outcome.number] = outcome
                progress.batches_confirmed += 1
                progress.in_flight = max(0, progress.in_flight - 1)
                self._tick(progress)

            producer = asyncio.ensure_future(asyncio.to_thread(produce))
            try:
                withdrawn = await BulkImporter(client, export.list_id).run(
                    batches(), accepted=accepted, on_accepted=on_accepted, on_final=on_final, stop=stop)
                stopped = stopped or withdrawn > 0
                if not stopped:  # a stopped run leaves the planner mid-snapshot: the finally ends it
                    await producer
                log.debug("all batches final after %.2f s", time.monotonic() - progress.started)
            finally:
                progress.in_flight = 0
                if self.on_progress:
                    self.on_progress(progress)
                abort.set()
                while not producer.done():  # unblock a producer waiting on a full queue
                    while not queue.empty():
                        queue.get_nowait()
                    await asyncio.sleep(0.01)
        if stopped:
            raise RunInterrupted
        self._tick(progress, force=True)
        result = await asyncio.to_thread(self._commit, spec, keys, synced, version, planner.totals, outcomes)
        log.debug("committed after %.2f s", time.monotonic() - progress.started)
        return result

    def _tick(self, progress: Progress, force: bool = False) -> None:
        """Report progress to the hook, and log a milestone at most every MILESTONE_SECONDS."""
        if self.on_progress:
            self.on_progress(progress)
        now = time.monotonic()
        if force or now - progress.logged >= MILESTONE_SECONDS:
            progress.logged = now
            log.info("run progress", extra={
                "run_id": progress.run_id, "export": progress.export, "profiles_read": progress.profiles_read,
                "batches_planned": progress.batches_planned, "batches_sent": progress.batches_sent,
                "batches_confirmed": progress.batches_confirmed, "contacts_sent": progress.contacts_sent,
                "elapsed_seconds": round(now - progress.started, 1)})

    # ------------------------------------------------------------------------------------ commit
    def _commit(self, spec: RunSpec, keys: RunKeys, synced: SyncedState, version: str | None, plan: Counts,
                outcomes: dict[int, BatchOutcome]) -> tuple[dict[str, int], str]:
        """Merge every batch outcome into a new synced state; write the failure report."""
        entries = dict(synced.entries)
        counts = {"profiles": plan.profiles, "invalid": plan.invalid, "duplicates": plan.duplicates,
                  "added": 0, "updated": 0, "unchanged": plan.unchanged, "removed": 0, "failed": 0,
                  "skipped": plan.skipped}
        report: list[dict[str, Any]] = []
        new_contacts: list[dict[str, Any] | None] = []  # every add in send order: its failure record, or None
        for key in self.store.list(keys.plan):
            data = self.store.get(key)
            if data is None:
                raise RunError("state_store", f"plan part {key} vanished from the state store")
            header = decode_part_header(data)
            for source, line, email, reason in header["invalid"]:
                report.append({"email": email, "stage": "invalid", "reason": reason, "source": source,
                               "line": line})
            for email in header["dropped"]:
                entries.pop(email, None)
            for email in header["skipped"]:
                report.append({"email": email, "stage": "skipped", "reason": SKIPPED_UNSUBSCRIBED,
                               "detail": f"unsubscribed from list {spec.export.list_id} in ActiveCampaign (seen by "
                                         f"an earlier run); never re-subscribed, so not sent again"})
            for b in header["batches"]:
                outcome = outcomes.get(b["n"]) or self._stored_outcome(keys, b["n"])
                for email, fp, op in zip(b["emails"], b["fps"], b["ops"], strict=True):
                    if email in outcome.failed:
                        counts["failed"] += 1
                        record = {"email": email, "stage": "failed", "reason": outcome.failed[email],
                                  "operation": OPERATIONS[op]}
                        report.append(record)
                        if op == ADD:
                            new_contacts.append(record)
                    elif email in outcome.skipped:
                        counts["skipped"] += 1
                        detail = (f"already unsubscribed from list {spec.export.list_id} in ActiveCampaign"
                                  if op == REMOVE else
                                  f"ActiveCampaign skipped it: the contact unsubscribed from list "
                                  f"{spec.export.list_id}; never re-subscribed, not sent again")
                        report.append({"email": email, "stage": "skipped", "reason": outcome.skipped[email],
                                       "operation": OPERATIONS[op], "detail": detail})
                        if op == REMOVE:
                            entries.pop(email, None)
                        else:
                            entries[email] = (fp, SKIPPED)
                    elif op == REMOVE:
                        counts["removed"] += 1
                        entries.pop(email, None)
                    else:
                        counts["added" if op == ADD else "updated"] += 1
                        entries[email] = (fp, "")
                        if op == ADD:
                            new_contacts.append(None)
        _explain_contact_limit(new_contacts, spec.export.name)
        failures_uri = self._write_report(keys, report)
        new = SyncedState(entries, spec.run_id).encode()
        if not self.store.replace_if_unchanged(keys.synced, new, version):
            current = self.store.get(keys.synced)
            if current is None or SyncedState.decode(current).run_id != spec.run_id:
                raise RunError("concurrent_commit", f"export {spec.export.name}: another run committed the synced "
                                                    f"state while this one ran; run it again to diff afresh")
        self._record_refresh(keys, spec)
        return counts, failures_uri

    def _stored_outcome(self, keys: RunKeys, n: int) -> BatchOutcome:
        data = self.store.get(keys.final(n))
        if data is None:
            raise RunError("incomplete", f"batch {n} has no final outcome; the run cannot commit yet")
        rec = orjson.loads(data)
        return BatchOutcome(rec["n"], rec["batch_id"], rec["status"], rec["failed"], rec["skipped"])

    def _write_report(self, keys: RunKeys, report: list[dict[str, Any]]) -> str:
        """failures.jsonl and failures.csv: one record per contact not synced (full emails: access-controlled)."""
        jsonl = b"".join(orjson.dumps(r) + b"\n" for r in report)
        self.store.put(f"{keys.run}failures.jsonl", jsonl)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(REPORT_COLUMNS)
        for r in report:
            writer.writerow([r.get("email") or "", r["stage"], r["reason"], r.get("detail", ""), r.get("source", ""),
                             r.get("line", ""), r.get("operation", "")])
        self.store.put(f"{keys.run}failures.csv", buf.getvalue().encode())
        if report:
            log.info("failure report written: %d records (e.g. %s)", len(report),
                     mask_email(report[0].get("email") or ""))
        return self.store.uri(f"{keys.run}failures.jsonl")
