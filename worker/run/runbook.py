"""Run bookkeeping: run ids and where a run's records live in the state store.

Why one module: the key layout and the run ids are a contract between the engine (which writes the
records), the worker (which derives run ids from events), the command line (which derives them from a
snapshot) and ``state prune`` (which removes old ones). Spelling them once keeps those in step.

Layout under ``exports/<export>/``::

    synced                        the committed state's manifest (see worker.contacts.synced, worker.syncstate)
    shards/<generation>/NNNNN     its shards: key ranges of entries (one generation is current)
    lease                         the export's lease, when leases live in the state store
    last_snapshot                 the segment's newest known snapshot, for export.requested without one
    last_refresh                  the newest refresh synced (also in the manifest; kept for older workers)
    plans/<run_id>.<plan>         an open plan: what it was made against (worker.run.plans)
    runs/<run_id>/plans/<plan>/parts/part-NNNNN     the diff of one snapshot page, written once
    runs/<run_id>/plans/<plan>/batches/NNNNN.accepted|.final
    runs/<run_id>/plans/<plan>/tags/NNNNN           how far tag removal got, per chunk of contacts (worker.run.tags)
    runs/<run_id>/failures.jsonl|.csv   the failure report
    runs/<run_id>/committed       the run's commit: its counts, failure report and refresh (right after the swap)
    runs/<run_id>/completed       the completion event (put-if-absent)
    runs/<run_id>/published       the event was confirmed by the broker

Runs written before plans had an identity kept their parts and batches straight under
``runs/<run_id>/plan/`` and ``runs/<run_id>/batches/`` (a ``Runbook`` without a plan still reads and writes
there); a run that finds such records adopts them as a plan of its own (``worker.run.plans``).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson

from worker.events.instants import refresh_after
from worker.state import StateError

if TYPE_CHECKING:
    from worker.activecampaign.importer import BatchOutcome
    from worker.contacts.plan import PlanPart
    from worker.events.envelopes import CompletionEvent
    from worker.state import StateStore
    from worker.syncstate.manifest import Committed, Refresh


def run_id_for(export: str, refresh_id: str) -> str:
    """The worker's run id: stable, path-safe and readable; one export + refresh is always one run."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", refresh_id)[:48].strip("-.") or "refresh"
    digest = hashlib.blake2b(f"{export}\0{refresh_id}".encode(), digest_size=6).hexdigest()
    return f"{slug}-{digest}"


def sync_run_id(export: str, identity: str, base_run: str, full: bool) -> str:
    """The command line's run id: same export, same snapshot content, same committed base -> same run.

    A re-run after a crash resumes instead of starting over; after a commit the base changes, so the
    next sync is a new run.
    """
    digest = hashlib.blake2b(f"{export}\0{identity}\0{base_run}\0{int(full)}".encode(), digest_size=10)
    return f"sync-{digest.hexdigest()}"


def export_prefix(export: str) -> str:
    return f"exports/{export}/"


def runs_prefix(export: str) -> str:
    return f"exports/{export}/runs/"


def plans_prefix(export: str) -> str:
    """Where an export's open plans are registered (``worker.run.plans``)."""
    return f"exports/{export}/plans/"


class RunKeys:
    """Where one run's records live in the state store; ``plan``: which plan's parts and batches."""

    def __init__(self, export: str, run_id: str, plan: str | None = None) -> None:
        self.export = export_prefix(export)
        self.run = f"{self.export}runs/{run_id}/"
        self.synced = f"{self.export}synced"
        self.completed = f"{self.run}completed"
        self.committed = f"{self.run}committed"
        self.plans = f"{self.run}plans/"
        if plan is None:  # the layout of runs written before plans had an identity
            self.plan, self.batches = f"{self.run}plan/", f"{self.run}batches/"
            self.tags = f"{self.run}tags/"
        else:
            self.plan, self.batches = f"{self.plans}{plan}/parts/", f"{self.plans}{plan}/batches/"
            self.tags = f"{self.plans}{plan}/tags/"  # managed tags: how far removal got (worker.run.tags)
        self.published = f"{self.run}published"
        self.last_refresh = f"{self.export}last_refresh"
        self.last_snapshot = f"{self.export}last_snapshot"
        self.failures_jsonl = f"{self.run}failures.jsonl"
        self.failures_csv = f"{self.run}failures.csv"

    def part(self, n: int) -> str:
        return f"{self.plan}part-{n:05d}"

    def accepted(self, n: int) -> str:
        return f"{self.batches}{n:05d}.accepted"

    def final(self, n: int) -> str:
        return f"{self.batches}{n:05d}.final"


# ------------------------------------------------------------------------------------------ records
def encode_part(part: PlanPart, plan: str | None = None, base: str | None = None) -> bytes:
    """A plan part: one header line, all that a resume and the commit need.

    The header holds, per batch, its number, the operations and the emails and fingerprints in send
    order, plus the page's invalid, dropped, skipped and kept-out emails, and which plan it belongs to and
    the synced state that plan was made against (and, for managed tags, the tags sent and lost:
    ``worker.contacts.tagsets``). No contact payload (names, phones, field values): a resumed run re-plans
    the snapshot, which it must read anyway, so the payload would only be personal data kept in the store.
    Deleted once the run is committed.

    Written before any of its batches is handed to the sender: a part is the intent to send its batches,
    so a batch that has no record of its own may have reached ActiveCampaign (``worker.run.settle``).
    """
    from worker.contacts.tagsets import header_fields

    batches = [{"n": b.number, "ops": "".join(b.ops), "emails": b.emails, "fps": b.fingerprints}
               for b in part.batches]
    header = {
        "part": part.number,
        "plan": plan,
        "base": base,
        # When this part was planned, before any of its requests: a leaver's "unsubscribed by us since".
        # Written once (put-if-absent), so a resumed run keeps the first attempt's time.
        "planned_at": int(time.time()),
        "counts": part.counts.as_dict(),
        "invalid": part.invalid,
        "dropped": part.dropped,
        "skipped": part.skipped,
        "kept_out": part.kept_out,
        "batches": batches,
        **header_fields(part, batches),  # managed tags: the tags sent and lost (worker.contacts.tagsets)
    }
    return orjson.dumps(header) + b"\n"


def decode_part_header(data: bytes) -> dict[str, Any]:
    return cast(dict[str, Any], orjson.loads(data.split(b"\n", 1)[0]))


def _newer(known_id: str | None, known_at: str | None, refresh_id: str, occurred_at: str) -> bool:
    """The known refresh is another one that comes after this one (by instant, then by refresh id:
    ``worker.events.instants.refresh_after``)."""
    return known_id != refresh_id and refresh_after(known_at, known_id, occurred_at, refresh_id)


def _batch_number(key: str) -> int:
    return int(key.rsplit("/", 1)[1].split(".")[0])


@dataclass
class Progress:
    """What earlier attempts of a run left: batches AC accepted and batches with a final outcome."""

    accepted: dict[int, tuple[str, list[str], dict[str, str], dict[str, str]]] = field(default_factory=dict)
    finals: set[int] = field(default_factory=set)
    started: bool = False  # any batch record exists: the run's preflight checks passed before

    @property
    def skip(self) -> set[int]:
        """Batches the sender must not send again."""
        return self.finals | set(self.accepted)


class Runbook:
    """The records of one run (and its export's markers) in the state store. Every call blocks.

    Why a class of its own: the engine reads as the run's four steps; where each step's record lives
    and how it is encoded is bookkeeping, shared with the worker (published markers, last snapshot)
    and ``state prune``.
    """

    def __init__(self, store: StateStore, export: str, run_id: str, plan: str | None = None, *,
                 base: str | None = None, token: int | None = None) -> None:
        self.store = store
        self.export = export
        self.run_id = run_id
        self.plan = plan
        self.base = base  # the synced state the plan was made against (worker.contacts.synced.base_of)
        self.token = token  # the lease's fencing token, written into every batch record
        self.keys = RunKeys(export, run_id, plan)

    def for_plan(self, plan: str | None, base: str | None = None) -> Runbook:
        """The same run's records, for plan ``plan`` (None: the records of a run made before plans)."""
        return Runbook(self.store, self.export, self.run_id, plan, base=base, token=self.token)

    # ---------------------------------------------------------------------------------- run records
    def completed(self) -> CompletionEvent | None:
        data = self.store.get(self.keys.completed)
        return cast("CompletionEvent", orjson.loads(data)) if data is not None else None

    def complete(self, event: CompletionEvent) -> tuple[CompletionEvent, bool]:
        """Record the run's completion event once; returns the event of record and whether it is ours."""
        if self.store.put_if_absent(self.keys.completed, orjson.dumps(event)):
            return event, True
        recorded = self.completed()
        return (recorded, False) if recorded is not None else (event, True)

    def record_committed(self, committed: Committed, refresh: Refresh | None) -> None:
        """The run's commit, right after its manifest swap landed (put-if-absent: the first record stays).

        Why, when the manifest records its commit too: the manifest remembers only the last few commits
        (``RECENT``); a run resumed after more commits than that must still know it committed, or it would be
        taken for stale (no completion event) or plan again. Kept until retention prunes the run.
        """
        rec = {"counts": committed.counts, "failures_uri": committed.failures_uri,
               "refresh": asdict(refresh) if refresh is not None else None}
        self.store.put_if_absent(self.keys.committed, orjson.dumps(rec))

    def committed_record(self) -> Committed | None:
        """The run's commit as ``record_committed`` wrote it, or None."""
        from worker.syncstate.manifest import Committed

        data = self.store.get(self.keys.committed)
        if data is None:
            return None
        rec = orjson.loads(data)
        return Committed(dict(rec["counts"]), str(rec["failures_uri"]))

    def mark_published(self) -> None:
        self.store.put_if_absent(self.keys.published, b"1")

    def was_published(self) -> bool:
        return self.store.get(self.keys.published) is not None

    def progress(self) -> Progress:
        """Read the batch records an earlier attempt left (resume)."""
        keys = self.store.list(self.keys.batches)
        got = Progress(started=bool(keys))
        got.finals = {_batch_number(k) for k in keys if k.endswith(".final")}
        for k in keys:
            n = _batch_number(k)
            if k.endswith(".accepted") and n not in got.finals:
                rec = orjson.loads(self.store.get(k) or b"{}")
                if rec.get("batch_id"):
                    got.accepted[n] = (rec["batch_id"], rec["emails"], rec.get("rejected", {}),
                                       rec.get("kept_out", {}))
        return got

    def put_part(self, part: PlanPart) -> None:
        self.store.put_if_absent(self.keys.part(part.number), encode_part(part, self.plan, self.base))

    def part_headers(self) -> Iterator[dict[str, Any]]:
        """Every plan part's header, in part order."""
        for key in self.store.list(self.keys.plan):
            data = self.store.get(key)
            if data is None:
                raise StateError(f"plan part {key} vanished from the state store")
            yield decode_part_header(data)

    def delete_records(self) -> int:
        """Delete the run's plans: parts, batch records and registrations (after its commit); returns how
        many records there were.

        Why: they hold the run's emails and the reasons for invalid rows (which may quote a value); once
        the synced state holds the outcome, only the failure report and the completion event are kept.
        A deletion cut short is harmless: the committed state names this run, so it is never resumed, and
        its plans were made against a state that is no longer current. Deletes run eight at a time: on S3
        each one is a request.
        """
        legacy = RunKeys(self.export, self.run_id)
        keys = (self.store.list(self.keys.plans) + self.store.list(legacy.plan) + self.store.list(legacy.batches)
                + self.store.list(legacy.tags) + self.store.list(f"{plans_prefix(self.export)}{self.run_id}."))
        if len(keys) < 8:
            for key in keys:
                self.store.delete(key)
            return len(keys)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=8, thread_name_prefix="delete-records") as pool:
            list(pool.map(self.store.delete, keys))
        return len(keys)

    def record_accepted(self, number: int, batch_id: str, emails: list[str], rejected: dict[int, str],
                        kept_out: dict[str, str]) -> None:
        """AC took the batch (``emails``: those in the POST); recorded before anything else happens."""
        rec = {"batch_id": batch_id, "emails": emails, "rejected": {str(k): v for k, v in rejected.items()},
               "kept_out": kept_out, "plan": self.plan, "token": self.token}
        self.store.put(self.keys.accepted(number), orjson.dumps(rec))

    def record_final(self, outcome: BatchOutcome) -> None:
        rec = {"n": outcome.number, "batch_id": outcome.batch_id, "status": outcome.status,
               "failed": outcome.failed, "skipped": outcome.skipped, "plan": self.plan, "token": self.token}
        self.store.put(self.keys.final(outcome.number), orjson.dumps(rec))

    def final(self, number: int) -> BatchOutcome | None:
        data = self.store.get(self.keys.final(number))
        if data is None:
            return None
        from worker.activecampaign.importer import BatchOutcome  # the client stack only when a run reads it

        rec = orjson.loads(data)
        return BatchOutcome(rec["n"], rec["batch_id"], rec["status"], rec["failed"], rec["skipped"])

    # ---------------------------------------------------------------------------------- export markers
    def is_stale(self, refresh_id: str, occurred_at: str | None, committed: Refresh | None = None) -> bool:
        """A newer refresh of the segment has already been synced for this export (by instant).

        ``committed``: the refresh the synced state's manifest records (the commit's own record); the
        ``last_refresh`` marker is read too, for states committed by versions that did not record it there.
        """
        if not occurred_at:
            return False
        if committed is not None and _newer(committed.refresh_id, committed.occurred_at, refresh_id, occurred_at):
            return True
        data = self.store.get(self.keys.last_refresh)
        if data is None:
            return False
        last = orjson.loads(data)
        return _newer(last.get("refresh_id"), last.get("occurred_at"), refresh_id, occurred_at)

    def record_refresh(self, refresh_id: str, occurred_at: str, snapshot_uri: str) -> None:
        """Remember the newest refresh synced for this export (stale detection; newest instant wins)."""
        rec = orjson.dumps({"refresh_id": refresh_id, "occurred_at": occurred_at, "run_id": self.run_id,
                            "snapshot": {"uri": snapshot_uri}})
        self._keep_newest(self.keys.last_refresh, rec, occurred_at, refresh_id)

    def remember_snapshot(self, snapshot: dict[str, Any], refresh_id: str, occurred_at: str) -> None:
        """Keep the segment's newest known snapshot, for ``export.requested`` without one."""
        rec = orjson.dumps({"snapshot": snapshot, "refresh_id": refresh_id, "occurred_at": occurred_at})
        self._keep_newest(self.keys.last_snapshot, rec, occurred_at, refresh_id)

    def last_snapshot(self) -> dict[str, Any] | None:
        data = self.store.get(self.keys.last_snapshot)
        return cast(dict[str, Any], orjson.loads(data)) if data else None

    def _keep_newest(self, key: str, rec: bytes, occurred_at: str, refresh_id: str) -> None:
        """Compare-and-swap ``rec`` into ``key`` unless the record there is of a later refresh (instant, then id)."""
        for _ in range(8):
            got = self.store.get_versioned(key)
            if got is not None:
                held = orjson.loads(got[0])
                if refresh_after(held.get("occurred_at"), held.get("refresh_id"), occurred_at, refresh_id):
                    return
            if self.store.replace_if_unchanged(key, rec, got[1] if got else None):
                return
        raise StateError(f"{key}: kept changing under 8 compare-and-swap attempts")
