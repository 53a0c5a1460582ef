"""The send/confirm pipeline of one run: batches in, one final outcome per batch out.

Why a pipeline and not "send everything, then poll everything": a million contacts are 4,000 batches, and
AC processes each in seconds. Sending and confirming at the same time keeps memory bounded (at most
`max_unconfirmed` batches between "pulled" and "final") and lets the engine checkpoint outcomes as they
arrive. The order of events per batch is what makes resuming safe:

1. POST (the limiter paces it) -> 200 -> ``await on_accepted(batch, accepted)``: the engine records the
   batchId before anything else, so a crash after this point never re-sends the batch;
2. import/info polls, oldest batch first, the first one after the expected processing time;
3. on a final status, failure emails are explained (unsubscribed -> skipped; otherwise failed), and
   ``await on_final(outcome)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from worker.activecampaign.client import ActiveCampaignClient, ActiveCampaignError, BulkAccepted, ImportInfo
from worker.activecampaign.errors import SendCancelled
from worker.activecampaign.polling import CompletionEstimate, PollQueue

__all__ = [
    "FAILED_NOT_IMPORTED",
    "SKIPPED_UNSUBSCRIBED",
    "Batch",
    "BatchOutcome",
    "BulkImporter",
]

log = logging.getLogger(__name__)

SKIPPED_UNSUBSCRIBED = "unsubscribed_in_activecampaign"
FAILED_NOT_IMPORTED = (
    "ActiveCampaign did not import this contact (excluded, bounced, over the contact limit "
    "or invalid email; AC does not say which)"
)
#: How many import/info 404s a batch may get before we stop believing it will ever be known.
MAX_UNKNOWN_POLLS = 3

#: A batch accepted by an earlier attempt: (batch_id, emails) with only the emails AC kept, or
#: (batch_id, emails, rejected) with all the batch's emails and BulkAccepted.rejected as recorded
#: (index -> reason; keys may be strings, as they come back from JSON).
AcceptedRecord = (tuple[str, list[str]] | tuple[str, list[str], Mapping[Any, str]]
                  | tuple[str, list[str], Mapping[Any, str], Mapping[str, str]])

_NOTHING_ACCEPTED: Mapping[int, AcceptedRecord] = MappingProxyType({})


#: Runs before a batch's POST and returns the emails that must not be sent, with the reason
#: (counted skipped): e.g. re-entering contacts that turn out to have unsubscribed themselves.
Prepare = Callable[["Batch"], Awaitable[dict[str, str]]]


@dataclass
class Batch:
    """One bulk request's worth of contacts; emails[i] is contacts[i]'s normalized email."""

    number: int
    contacts: list[dict[str, Any]]
    emails: list[str]
    prepare: Prepare | None = None
    #: Set by `prepare`: emails left out of the POST, with the reason (reported as skipped).
    kept_out: dict[str, str] = field(default_factory=dict)


@dataclass
class BatchOutcome:
    """The final word on one batch. Emails in neither dict succeeded.

    status: AC's final status ("completed", "failed", "interrupted"), or "rejected" when AC's validation
    refused every contact (then batch_id is None).
    """

    number: int
    batch_id: str | None
    status: str
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


@dataclass
class _Pending:
    """An accepted batch waiting for its final status (the contacts themselves are no longer needed)."""

    number: int
    batch_id: str
    emails: list[str]
    seq: int
    accepted_at: float | None  # loop time; None for batches accepted by an earlier attempt
    pre_failed: dict[str, str] = field(default_factory=dict)  # dropped by AC's validation
    pre_skipped: dict[str, str] = field(default_factory=dict)  # left out by the batch's `prepare`
    polls: int = 0
    unknown: int = 0


OnAccepted = Callable[[Batch, BulkAccepted], Awaitable[None]]
OnFinal = Callable[[BatchOutcome], Awaitable[None]]


class BulkImporter:
    """Sends batches to one list and confirms them; one instance may serve several runs in turn.

    The completion estimate carries over between runs of the same instance (AC's speed changes slowly);
    the reason-lookup budget is per run.
    """

    def __init__(
        self,
        client: ActiveCampaignClient,
        list_id: int,
        *,
        max_unconfirmed: int = 400,
        expected_delay: float = 2.0,
        max_reason_lookups: int = 500,
        max_concurrent_posts: int = 16,
        poll_concurrency: int = 4,
        lookup_concurrency: int = 4,
        confirm_timeout: float = 3600.0,
    ) -> None:
        """`confirm_timeout` bounds how long one batch may stay non-final before the run fails (the engine's
        retry then resumes polling); the concurrency knobs only hide latency, the limiter sets the pace."""
        if max_unconfirmed < 1 or max_concurrent_posts < 1 or poll_concurrency < 1 or lookup_concurrency < 1:
            raise ValueError("max_unconfirmed and the concurrency limits must be >= 1")
        self.client = client
        self.list_id = list_id
        self.max_unconfirmed = max_unconfirmed
        self.max_reason_lookups = max_reason_lookups
        self.max_concurrent_posts = max_concurrent_posts
        self.poll_concurrency = poll_concurrency
        self.lookup_concurrency = lookup_concurrency
        self.confirm_timeout = confirm_timeout
        self.estimate = CompletionEstimate(expected_delay)
        #: Polls sent by this instance, and batches they confirmed (for metrics and the 2-polls budget).
        self.polls = 0
        self.confirmed = 0

    async def run(
        self,
        batches: AsyncIterator[Batch],
        *,
        accepted: Mapping[int, AcceptedRecord] = _NOTHING_ACCEPTED,
        on_accepted: OnAccepted,
        on_final: OnFinal,
        stop: asyncio.Event | None = None,
    ) -> int:
        """Send every batch (except those in `accepted`, which are only polled) and report each outcome.

        `accepted` (resume): batch number -> record of a batch AC accepted in an earlier attempt, either
        (batch_id, emails actually sent) or (batch_id, all the batch's emails, BulkAccepted.rejected);
        with the 3-tuple the contacts AC's validation dropped are reported as failed again. A batch the
        iterator yields whose number is in `accepted` is skipped, never resent.
        Raises the first error (e.g. an ActiveCampaignError that exhausted its retries); every task this
        started is finished (cancelled) before it returns or raises.
        Once `stop` is set no further POST leaves (batches waiting for the rate budget are withdrawn
        unsent) and the batches AC already accepted are still confirmed: a checkpoint. Returns how many
        pulled batches were withdrawn that way (they need sending by whoever resumes the run).
        """
        run = _ImportRun(self, on_accepted, on_final, stop)
        await run.execute(batches, accepted)
        return run.withdrawn


class _ImportRun:
    """The state of one `BulkImporter.run` call."""

    def __init__(self, importer: BulkImporter, on_accepted: OnAccepted, on_final: OnFinal,
                 stop: asyncio.Event | None = None) -> None:
        self.importer = importer
        self.stop = stop
        self.withdrawn = 0
        self.client = importer.client
        self.on_accepted = on_accepted
        self.on_final = on_final
        self.queue: PollQueue[_Pending] = PollQueue()
        self.unconfirmed = 0
        self.changed = asyncio.Condition()
        self.post_slots = asyncio.Semaphore(importer.max_concurrent_posts)
        self.lookup_slots = asyncio.Semaphore(importer.lookup_concurrency)
        self.lookups_left = importer.max_reason_lookups
        self.seq = 0
        self.skip_numbers: set[int] = set()
        self.tasks: asyncio.TaskGroup | None = None

    async def execute(self, batches: AsyncIterator[Batch], accepted: Mapping[int, AcceptedRecord]) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as tasks:
                self.tasks = tasks
                for number, record in sorted(accepted.items()):
                    self.skip_numbers.add(number)
                    self.unconfirmed += 1
                    self._queue_poll(self._resumed(number, record), loop.time())
                for _ in range(self.importer.poll_concurrency):
                    tasks.create_task(self._poll_worker())
                await self._feed(batches)
                async with self.changed:
                    await self.changed.wait_for(lambda: self.unconfirmed == 0)
                self.queue.close()
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
        finally:
            self.queue.close()
            self.tasks = None

    def _resumed(self, number: int, record: AcceptedRecord) -> _Pending:
        """A batch accepted by an earlier attempt, ready to be polled (its validation drops re-applied)."""
        batch_id, emails = record[0], list(record[1])
        rejected = {int(i): str(reason) for i, reason in (record[2] if len(record) > 2 else {}).items()}
        kept_out = dict(record[3]) if len(record) > 3 else {}
        pre_failed = {emails[i]: reason for i, reason in rejected.items() if 0 <= i < len(emails)}
        kept = [e for i, e in enumerate(emails) if i not in rejected]
        return _Pending(number, batch_id, kept, self._next_seq(), None, pre_failed, dict(kept_out))

    # Sending -----------------------------------------------------------------------------------------------

    async def _feed(self, batches: AsyncIterator[Batch]) -> None:
        """Pull batches only as capacity allows, and start one POST task per batch."""
        assert self.tasks is not None
        iterator = aiter(batches)
        limit = self.importer.max_unconfirmed
        while True:
            async with self.changed:
                await self.changed.wait_for(lambda: self.unconfirmed < limit)
            await self.post_slots.acquire()
            try:
                batch = await anext(iterator)
            except StopAsyncIteration:
                self.post_slots.release()
                return
            except BaseException:
                self.post_slots.release()
                raise
            if batch.number in self.skip_numbers:
                self.post_slots.release()
                log.info(
                    "batch %d was accepted by an earlier attempt; polling it, not resending", batch.number
                )
                continue
            if len(batch.emails) != len(batch.contacts):
                self.post_slots.release()
                raise ValueError(
                    f"batch {batch.number}: {len(batch.contacts)} contacts but {len(batch.emails)} emails"
                )
            self.unconfirmed += 1
            self.tasks.create_task(self._post(batch))

    async def _post(self, batch: Batch) -> None:
        stop = self.stop
        try:
            if batch.prepare is not None:
                batch = await self._prepared(batch)
                if not batch.contacts:  # every contact was left out: nothing to POST
                    await self._finish(BatchOutcome(batch.number, None, "kept_out", skipped=dict(batch.kept_out)))
                    return
                if stop is not None and stop.is_set():
                    raise SendCancelled("the run is stopping")
            result = await self.client.bulk_import(
                batch.contacts, proceed=None if stop is None else (lambda: not stop.is_set()))
        except SendCancelled:
            self.withdrawn += 1
            async with self.changed:
                self.unconfirmed -= 1
                self.changed.notify_all()
            return
        finally:
            self.post_slots.release()
        accepted_at = asyncio.get_running_loop().time()  # AC's clock starts now, not after on_accepted
        pre_failed = {batch.emails[i]: reason for i, reason in result.rejected.items()}
        if result.batch_id is None:
            log.warning("batch %d: AC's validation refused all %d contacts", batch.number, len(batch.emails))
            await self._finish(BatchOutcome(batch.number, None, "rejected", failed=pre_failed,
                                            skipped=dict(batch.kept_out)))
            return
        await self.on_accepted(batch, result)
        emails = [e for i, e in enumerate(batch.emails) if i not in result.rejected]
        pending = _Pending(batch.number, result.batch_id, emails, self._next_seq(), accepted_at, pre_failed,
                           dict(batch.kept_out))
        self._queue_poll(pending, accepted_at + self.importer.estimate.first_poll())

    async def _prepared(self, batch: Batch) -> Batch:
        """Run the batch's `prepare` and drop the contacts it leaves out (their reasons are kept)."""
        assert batch.prepare is not None
        out = await batch.prepare(batch)
        if not out:
            return batch
        keep = [i for i, e in enumerate(batch.emails) if e not in out]
        return Batch(batch.number, [batch.contacts[i] for i in keep], [batch.emails[i] for i in keep],
                     kept_out={e: r for e, r in out.items() if e in set(batch.emails)})

    # Confirming --------------------------------------------------------------------------------------------

    async def _poll_worker(self) -> None:
        loop = asyncio.get_running_loop()
        while (pending := await self.queue.next()) is not None:
            try:
                info = await self.client.import_info(pending.batch_id)
            except ActiveCampaignError as exc:
                if exc.code != "not_found":
                    raise
                pending.unknown += 1
                if pending.unknown >= MAX_UNKNOWN_POLLS:
                    self._spawn_final(pending, None)
                else:
                    self._queue_poll(pending, loop.time() + self.importer.estimate.next_poll(pending.unknown))
                continue
            self.importer.polls += 1
            pending.polls += 1
            now = loop.time()
            if info.final:
                if pending.accepted_at is not None:
                    self.importer.estimate.observe(now - pending.accepted_at, pending.polls)
                self._spawn_final(pending, info)
                continue
            if pending.accepted_at is not None and now - pending.accepted_at > self.importer.confirm_timeout:
                raise ActiveCampaignError(
                    "timeout",
                    f"batch {pending.number} is still {info.status!r} after "
                    f"{self.importer.confirm_timeout:.0f}s; retry the run to resume polling",
                    endpoint="import/info",
                )
            self._queue_poll(pending, now + self.importer.estimate.next_poll(pending.polls))

    def _spawn_final(self, pending: _Pending, info: ImportInfo | None) -> None:
        assert self.tasks is not None
        self.tasks.create_task(self._finalize(pending, info))

    async def _finalize(self, pending: _Pending, info: ImportInfo | None) -> None:
        """Turn a final import/info (None: AC does not know the batch) into the batch's outcome."""
        failed: dict[str, str]
        skipped: dict[str, str] = {}
        if info is None:
            status = "unknown"
            failed = {
                e: "ActiveCampaign does not know this batch (import/info answered 404); not confirmed"
                for e in pending.emails
            }
        elif info.status == "completed":
            status = "completed"
            failed, skipped = await self._explain(pending, info.failure_emails)
        else:
            status = str(info.status)
            failed = {
                e: f"ActiveCampaign reported the batch as {status}; its contacts were not imported"
                for e in pending.emails
            }
        failed.update(pending.pre_failed)
        skipped.update(pending.pre_skipped)
        self.importer.confirmed += 1
        await self._finish(BatchOutcome(pending.number, pending.batch_id, status, failed, skipped))

    async def _explain(
        self, pending: _Pending, failure_emails: list[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Split AC's `failure` emails into skipped (unsubscribed from our list) and failed.

        AC's list does not say why; one lookup per email does, within a per-run budget (lookups share the
        "other" budget with polls).
        """
        ours = {e.strip().lower(): e for e in pending.emails}
        matched: list[str] = []
        for raw in dict.fromkeys(failure_emails):
            email = ours.get(raw.strip().lower())
            if email is not None:
                matched.append(email)
        if len(matched) < len(failure_emails):
            log.warning(
                "batch %d: %d failure email(s) are not in the batch; ignored",
                pending.number,
                len(failure_emails) - len(matched),
            )
        failed: dict[str, str] = {}
        skipped: dict[str, str] = {}
        to_check: list[str] = []
        for email in matched:
            if self.lookups_left > 0:
                self.lookups_left -= 1
                to_check.append(email)
            else:
                failed[email] = FAILED_NOT_IMPORTED
        answers: dict[str, bool] = {}

        async def check(email: str) -> None:
            async with self.lookup_slots:
                answers[email] = await self.client.unsubscribed_from_list(email, self.importer.list_id)

        if to_check:
            async with asyncio.TaskGroup() as lookups:
                for email in to_check:
                    lookups.create_task(check(email))
        for email in to_check:
            if answers[email]:
                skipped[email] = SKIPPED_UNSUBSCRIBED
            else:
                failed[email] = FAILED_NOT_IMPORTED
        return failed, skipped

    # Bookkeeping -------------------------------------------------------------------------------------------

    async def _finish(self, outcome: BatchOutcome) -> None:
        await self.on_final(outcome)
        async with self.changed:
            self.unconfirmed -= 1
            self.changed.notify_all()

    def _queue_poll(self, pending: _Pending, due: float) -> None:
        self.queue.push(pending, seq=pending.seq, due=due)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq


def _first_error(group: BaseExceptionGroup) -> BaseException:
    """The exception to raise from run(): an ActiveCampaignError if any task hit one, else the first."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for exc in leaves:
        if isinstance(exc, ActiveCampaignError):
            return exc
    return leaves[0]
