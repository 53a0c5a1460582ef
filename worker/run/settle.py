"""Folding live plans in: before a run plans, what earlier plans sent is made part of the synced state.

When a run finds a plan that may have sent batches and that it will not carry on (another run's, or its
own made against another snapshot or config; see ``worker.run.plans``), it must not plan against the
committed state alone: ActiveCampaign already holds what those batches carried, and a diff that ignores
it would leave those contacts wrong for good (their values, or a removal nobody records). So, in one
compare-and-swap of the synced state, and before the new plan is made:

- a batch with a final outcome is merged exactly as its own run's commit would have merged it;
- a batch AC accepted but that has no final outcome is polled until it has one;
- a batch with no record at all, in a part that was written, may have been in flight when its run
  stopped: it is *doubtful* (``worker.run.commit``): its contacts are sent again by the next plan, and
  its removals and re-entries go the re-entry way, where AC's list record decides;
- tags the plan was to remove (managed tags) are removed, going on from the plan's own records.

The commit keeps the run and counts of the state it replaces (it is nobody's run) and the newest refresh of
that state and of the folded plans (a plan's refresh is as good as committed for the stale check), and every
folded plan's base is then no longer current, so it is never folded twice. Nothing is sent here but
import/info polls, for batches AC failed the reason lookups a commit makes anyway, and the folded plans'
tag removals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

from worker.activecampaign.importer import Batch, BatchOutcome, BulkImporter
from worker.contacts.plan import Counts
from worker.contacts.synced import SyncedState
from worker.contacts.tagsets import decode_tags
from worker.run.commit import install, merge
from worker.run.plans import PlanHead
from worker.run.refreshes import newest
from worker.run.runbook import Runbook, RunKeys
from worker.run.tags import GivenByOthers, TagRemover, planned
from worker.state import StateStore
from worker.syncstate.manifest import Refresh
from worker.syncstate.merge import Changes, bits_for

log = logging.getLogger("segment_export.settle")


async def settle(store: StateStore, export: str, list_id: int, heads: list[PlanHead], synced: SyncedState,
                 version: str | None, importer: Callable[[], BulkImporter], *,
                 others: GivenByOthers | None = None) -> bool:
    """Fold ``heads`` (the live plans, oldest first) into the synced state; False when another commit got
    there first (the caller loads the state again and looks afresh). ``others``: the tags the account's
    other exports give a contact, never removed (``worker.run.tags``)."""
    outcomes: list[tuple[Runbook, dict[int, BatchOutcome]]] = []
    for head in heads:
        book = Runbook(store, export, head.run_id, head.book_plan())
        known = await _outcomes(book, importer)
        outcomes.append((book, known))
        # Managed tags: the plan's tag removal is finished first, from its own records (worker.run.tags), so
        # the fold stores what its contacts hold; contacts of a batch whose outcome stays unknown keep their
        # tags and the ones they may have been sent (worker.run.commit), for the next plan to sort out.
        untag = await asyncio.to_thread(planned, book, known.get)
        if untag:
            await TagRemover(importer().client, book, list_id, others=others).run(untag)
    folded_refresh: Refresh | None = None  # the newest refresh the folded plans sent: older ones stay stale
    for head in heads:
        folded_refresh = newest(folded_refresh, head.refresh)
    changes = Changes(bits_for(len(synced)))
    try:
        def fold() -> bool:
            # Managed tags: each part's contacts are stamped with that part's time, as a commit stamps them,
            # but a contact that an older folded plan sent a tag too keeps the newer plan's change: the tag
            # takes the older plan's time (AC's link is no younger than that; worker.run.tags).
            earlier: dict[str, dict[str, int]] = {}

            def first_sent(email: str) -> dict[str, int]:
                got = others.first_sent(email) if others is not None else {}
                for name, at in earlier.get(email, {}).items():
                    got[name] = min(got[name], at) if got.get(name) else at
                return got

            for n, (plan, known) in enumerate(outcomes):
                merge(plan, list_id, synced, Counts(), known.get, changes=changes, first_sent=first_sent)
                if n + 1 < len(outcomes):
                    _note_sent(plan, earlier)
            return install(store, RunKeys(export, "-"), synced, version, changes, None, None,
                           refresh=folded_refresh) is not None

        done = await asyncio.to_thread(fold)
    finally:
        changes.close()
    if done:
        log.info("folded %d earlier plan(s) into the synced state before planning", len(heads),
                 extra={"export": export, "plans": [f"{h.run_id}.{h.plan}" for h in heads]})
    return done


def _note_sent(book: Runbook, earlier: dict[str, dict[str, int]]) -> None:
    """Add to ``earlier`` (email -> casefolded tag name -> time) the tags the plan's parts send, each with
    its part's ``planned_at``, the earliest kept."""
    for header in book.part_headers():
        at, tagsets = int(header.get("planned_at") or 0), header.get("tagsets")
        if not tagsets or not at:
            continue
        for b in header["batches"]:
            for email, t in zip(b["emails"], b["tg"], strict=True):
                for name in decode_tags(tagsets[t]) if t else ():
                    got = earlier.setdefault(email, {})
                    got[name.casefold()] = min(got.get(name.casefold(), at), at)


async def _outcomes(book: Runbook, importer: Callable[[], BulkImporter]) -> dict[int, BatchOutcome]:
    """Every recorded final outcome of the plan, and those of its accepted batches, polled to the end."""
    progress = await asyncio.to_thread(book.progress)
    known: dict[int, BatchOutcome] = {}
    for n in sorted(progress.finals):
        outcome = await asyncio.to_thread(book.final, n)
        if outcome is not None:
            known[n] = outcome
    if progress.accepted:
        async def got(outcome: BatchOutcome) -> None:
            known[outcome.number] = outcome

        async def refuse(batch: Batch, _: object) -> None:  # pragma: no cover - nothing is sent here
            raise AssertionError(f"batch {batch.number} was to be sent while folding a plan in")

        await importer().run(_nothing(), accepted=progress.accepted, on_accepted=refuse, on_final=got)
    return known


async def _nothing() -> AsyncIterator[Batch]:
    return
    yield  # an async generator that yields nothing
