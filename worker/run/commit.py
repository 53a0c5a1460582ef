"""Step 4 of a run, commit: merge every batch's final outcome into the export's new synced state.

Why only at the end: the synced state is what the next run diffs against, so it may only say "AC has
this" once AC confirmed it. Contacts AC failed keep their old entry (the next run retries them);
contacts it skipped are flagged so they are not resent; leavers this export unsubscribed are kept
with the time, so a re-entry can be told apart from a person's own unsubscription.

How: ``merge`` walks the plan's part headers and turns each outcome into a change (``Changes``:
partitioned by key range, spilled to a temporary folder when large); ``install`` streams the old
shards and the changes into a new generation and swaps the manifest in with compare-and-swap
(``worker.syncstate.merge``). Memory holds one key range, never the old and the new state. The manifest
records the run, its counts and its refresh, so one swap commits all three (``worker.syncstate.manifest``).

A batch whose outcome is unknown (a plan given up with batches that may have reached ActiveCampaign, see
``worker.run.settle``; or a batch ActiveCampaign no longer knows) is *doubtful*: its contacts are kept with
no fingerprint, so the next plan sends them again, and removals and re-entries with their "unsubscribed by
this export since" time, so the next plan sends a member the re-entry way (AC's list record decides) and a
leaver its removal again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import orjson

from worker.activecampaign.importer import SKIPPED_UNSUBSCRIBED, BatchOutcome
from worker.activecampaign.leavers import GONE
from worker.contacts.plan import ADD, READMIT, REMOVE, UPDATE, Counts
from worker.contacts.synced import SyncedState
from worker.contacts.tagsets import tag_name
from worker.run.expiry import expired_emails
from worker.run.refreshes import newest
from worker.run.report import FailureReport
from worker.run.runbook import Runbook, RunKeys
from worker.state import StateStore
from worker.syncstate import index as codes
from worker.syncstate.manifest import Committed, Manifest, Refresh
from worker.syncstate.merge import DELETE, Changes, bits_for, drop_generation, sweep_orphans, write_generation
from worker.syncstate.source import fingerprint_value

log = logging.getLogger("segment_export.commit")

OPERATIONS = {ADD: "add", UPDATE: "update", REMOVE: "remove", READMIT: "readmit"}
_NO_FP = "0" * 16  # a leaver's (it has none): replaced by 0 below
KEPT_OUT_REASON = "left_and_returned_readmit_off"
#: Generations other than the current one, untouched for this long, are debris of a crashed commit.
ORPHAN_SECONDS = 3600.0
#: A batch's status when ActiveCampaign does not know it (import/info 404): it may or may not have landed.
UNKNOWN = "unknown"


@dataclass
class Merged:
    """The commit's result: the changes to the synced state, the event's counts and the failure report."""

    changes: Changes
    counts: dict[str, int]
    report: FailureReport


def merge(book: Runbook, list_id: int, synced: SyncedState, plan: Counts,
          outcome_of: Callable[[int], BatchOutcome | None], *, now: float | None = None,
          changes: Changes | None = None, expire_before: int | None = None,
          first_sent: Callable[[str], dict[str, int]] | None = None) -> Merged:
    """Walk the plan's part headers (send order) and turn each batch's outcome into synced-state changes.

    ``outcome_of(n)`` None: batch ``n``'s outcome is unknown (it may or may not have reached AC): doubtful.
    ``changes``: add to these (several plans folded into one state, ``worker.run.settle``).
    ``expire_before``: entries kept for re-entry that this export unsubscribed before then are forgotten
    (``worker.run.expiry``). Managed tags: the tags each contact was sent are stored, and a doubtful
    contact keeps the tags it had as well as the ones it may have been sent, so the next plan removes
    whichever no longer apply (``worker.run.tags``). A tag a contact is sent for the first time is
    stored with its part's ``planned_at``, or the earlier time ``first_sent(email)`` gives when another
    export of the account (``worker.run.tags.GivenByOthers``), or an older plan folded in with this one
    (``worker.run.settle``), sent that tag first: AC keeps that older link. The caller closes
    ``Merged.changes`` (it may hold a temporary folder) once the state is installed.
    """
    fallback = int(time.time() if now is None else now)
    changes = changes if changes is not None else Changes(bits_for(len(synced) + plan.to_add))
    if expire_before is not None:  # first: a change this run makes to the same email wins
        for email in expired_emails(synced, expire_before):
            changes.delete(email)
    counts = {"profiles": plan.profiles, "invalid": plan.invalid, "duplicates": plan.duplicates,
              "added": 0, "updated": 0, "unchanged": plan.unchanged, "removed": 0, "failed": 0,
              "skipped": plan.skipped}
    report = FailureReport()
    try:
        for header in book.part_headers():
            # A leaver's "unsubscribed by us since" is when its part was planned, before its request left:
            # re-entry compares it with AC's record, so it must not be later than AC's own timestamp.
            since = int(header.get("planned_at") or fallback) if now is None else fallback
            for source, line, email, reason in header["invalid"]:
                report.add({"email": email, "stage": "invalid", "reason": reason, "source": source, "line": line})
            for email in header["dropped"]:
                changes.delete(email)
            for email in header["skipped"]:
                report.add({"email": email, "stage": "skipped", "reason": SKIPPED_UNSUBSCRIBED,
                            "detail": f"unsubscribed from list {list_id} in ActiveCampaign (seen by an earlier "
                                      f"run); never re-subscribed, so not sent again"})
            for email in header.get("kept_out", ()):
                report.add({"email": email, "stage": "skipped", "reason": KEPT_OUT_REASON,
                            "detail": f"left the segment earlier (this export unsubscribed it from list {list_id}) "
                                      f"and is back; readmit is off for this export, so it stays unsubscribed"})
            tagsets = header.get("tagsets")  # managed tags: each contact's tags are stored as sent
            # ... each with when this export first sent it: before then a link was someone else's doing
            for b in header["batches"]:
                outcome = outcome_of(b["n"])
                tags = None if tagsets is None else _stamped(synced, b["emails"], [tagsets[t] for t in b["tg"]],
                                                             since, first_sent)
                if outcome is None or outcome.status == UNKNOWN:
                    _apply_doubtful(b["emails"], b["ops"], changes, since,
                                    None if tags is None else _maybe_held(synced, b["emails"], tags))
                    if outcome is not None:  # AC forgot the batch: reported and counted failed, as before
                        _apply_each(b["emails"], b["fps"], b["ops"], outcome, _Discard(), counts, report, list_id,
                                    since)
                elif outcome.failed or outcome.skipped:
                    _apply_each(b["emails"], b["fps"], b["ops"], outcome, changes, counts, report, list_id, since,
                                tags)
                else:
                    _apply_clean(b["emails"], b["fps"], b["ops"], changes, counts, report, since, tags)
    except BaseException:
        changes.close()
        raise
    return Merged(changes, counts, report)


class _Discard:
    """Changes that go nowhere: the counts and the report of a batch whose changes are made elsewhere."""

    def add(self, *_: object) -> None:
        return None


def _apply_doubtful(emails: list[str], ops: str, changes: Changes, since: int,
                    tags: list[str] | None = None) -> None:
    """A batch whose outcome is unknown: no fingerprint (sent again), and for removals and re-entries the
    time this export may have unsubscribed them (AC's list record decides next time); ``tags``: what the
    contacts may hold of this export's tags (managed tags)."""
    maybe_out = np.frombuffer(ops.encode(), dtype=np.uint8)
    maybe_out = (maybe_out == ord(REMOVE)) | (maybe_out == ord(READMIT))
    changes.add(emails, np.zeros(len(emails), dtype=np.uint64), np.full(len(emails), codes.SUBSCRIBED, np.uint8),
                np.where(maybe_out, since, 0), tags)


def _stamped(synced: SyncedState, emails: list[str], sent: list[str], since: int,
             first_sent: Callable[[str], dict[str, int]] | None = None) -> list[str]:
    """The tags each contact of a batch is stored with: as sent, each name with when this export first
    sent it (kept from the synced state, else ``since`` or another export's earlier time;
    ``worker.contacts.tagsets.stamp_tags``)."""
    from worker.contacts.tagsets import stamp_tags

    if not any(sent):
        return sent
    cache: dict[tuple[str, str], str] = {}
    out = []
    for email, held, new in zip(emails, synced.tags_of(emails), sent, strict=True):
        earlier = first_sent(email) if first_sent is not None and new else None
        if earlier:
            out.append(stamp_tags(held, new, since, earlier))
            continue
        key = (held, new)
        got = cache.get(key)
        if got is None:
            got = cache[key] = stamp_tags(held, new, since)
        out.append(got)
    return out


def _maybe_held(synced: SyncedState, emails: list[str], sent: list[str]) -> list[str]:
    """Each contact's stored tags together with the (stamped) tags a doubtful batch may have added."""
    out = []
    for stored, new in zip(synced.tags_of(emails), sent, strict=True):
        held = orjson.loads(stored) if stored else []
        known = {tag_name(t).casefold() for t in held}
        items = held + [t for t in (orjson.loads(new) if new else []) if tag_name(t).casefold() not in known]
        out.append(orjson.dumps(items).decode() if items else "")
    return out


def _apply_clean(emails: list[str], fps: list[str], ops: str, changes: Changes, counts: dict[str, int],
                 report: FailureReport, since: int, tags: list[str] | None = None) -> None:
    """A batch AC took whole (the common case), as columns: every contact synced, every leaver unsubscribed.

    ``tags`` (managed tags): each contact's tags as sent; a leaver's are "" (it lost them).
    """
    removes = ops.count(REMOVE)
    counts["removed"] += removes
    counts["updated"] += ops.count(UPDATE)
    counts["added"] += len(ops) - removes - ops.count(UPDATE)  # adds and re-entries
    if ADD in ops:
        report.new_contact(None)  # a contact was created: the run of failed new ones (if any) ends
    leaving = np.frombuffer(ops.encode(), dtype=np.uint8) == ord(REMOVE)
    try:
        fp = np.frombuffer(bytes.fromhex("".join(f or _NO_FP for f in fps)), dtype=">u8").astype(np.uint64)
    except ValueError:  # not the planner's fingerprints (hex digits): one by one
        fp = np.array([fingerprint_value(f) for f in fps], dtype=np.uint64)
    changes.add(emails, np.where(leaving, 0, fp), np.where(leaving, codes.UNSUBSCRIBED, codes.SUBSCRIBED),
                np.where(leaving, since, 0), tags)


def _apply_each(emails: list[str], fps: list[str], ops: str, outcome: BatchOutcome, changes: Changes | _Discard,
                counts: dict[str, int], report: FailureReport, list_id: int, since: int,
                tags: list[str] | None = None) -> None:
    """A batch with failed or skipped contacts: contact by contact."""
    out: _Out = ([], [], [], [], [])
    for i, (email, fp, op) in enumerate(zip(emails, fps, ops, strict=True)):
        _apply(email, fp, op, outcome, out, counts, report, list_id, since, None if tags is None else tags[i])
    changes.add(*out[:4], out[4] if tags is not None else None)


#: Changes gathered contact by contact: emails, fingerprints, flag codes, sinces, tags (None: kept).
_Out = tuple[list[str], list[int], list[int], list[int], list[str | None]]


def _apply(email: str, fp: str, op: str, outcome: BatchOutcome, out: _Out, counts: dict[str, int],
           report: FailureReport, list_id: int, since: int, tags: str | None) -> None:
    def change(fingerprint: int, code: int, when: int = 0, stored: str | None = tags) -> None:
        out[0].append(email)
        out[1].append(fingerprint)
        out[2].append(code)
        out[3].append(when)
        out[4].append(stored)

    if email in outcome.failed:
        counts["failed"] += 1
        record = {"email": email, "stage": "failed", "reason": outcome.failed[email], "operation": OPERATIONS[op]}
        report.add(record)
        if op == ADD:
            report.new_contact(record)
        return
    if op == REMOVE and outcome.skipped.get(email) == GONE:  # deleted in AC: not sent, not re-created
        counts["leavers_deleted"] = counts.get("leavers_deleted", 0) + 1
        change(0, DELETE)
        return
    if email in outcome.skipped:
        counts["skipped"] += 1
        if op == REMOVE:
            detail = f"already unsubscribed from list {list_id} in ActiveCampaign"
            change(0, DELETE)  # not ours to re-subscribe later: forget it
        elif op == READMIT:
            detail = (f"left the segment earlier and is back, but the person unsubscribed from list {list_id} "
                      f"themselves (or is excluded or bounced); never re-subscribed")
            change(fingerprint_value(fp), codes.SKIPPED, stored=None)  # AC left its tags as they were
        else:
            detail = (f"ActiveCampaign skipped it: the contact unsubscribed from list {list_id}; never "
                      f"re-subscribed, not sent again")
            change(fingerprint_value(fp), codes.SKIPPED, stored=None)
        report.add({"email": email, "stage": "skipped", "reason": outcome.skipped[email],
                    "operation": OPERATIONS[op], "detail": detail})
        return
    if op == REMOVE:
        counts["removed"] += 1
        change(0, codes.UNSUBSCRIBED, since)
        return
    counts["updated" if op == UPDATE else "added"] += 1
    change(fingerprint_value(fp), codes.SUBSCRIBED)
    if op == ADD:
        report.new_contact(None)


def install(store: StateStore, keys: RunKeys, synced: SyncedState, version: str | None, changes: Changes,
            run_id: str | None, committed: Committed | None, *, refresh: Refresh | None = None) -> Manifest | None:
    """Write the new generation and swap its manifest in; None when another commit got there first.

    ``run_id`` and ``committed``: the run this commit is, with its counts and report, and ``refresh`` its
    refresh (the manifest keeps the newest one it has seen). ``run_id`` None: a commit that only folds
    outcomes in (``worker.run.settle``); it keeps the run and counts of the state it replaces, and its
    refresh unless ``refresh`` (the newest of the folded plans') is newer.

    The old generation's shards are deleted once the swap succeeded. A generation whose swap failed is left
    to the sweep (generations other than the current one, an hour old): never deleted at once, because a
    swap that "failed" for want of an answer may still land, and its shards must then be there.
    """
    base = synced.manifest
    if run_id is None:
        run_id, committed = synced.run_id, synced.committed
        recent = base.recent if base else ()
    else:
        recent = base.lineage() if base else ()
    refresh = newest(base.refresh if base else None, refresh)
    written = write_generation(store, keys.export, synced.source, changes, run_id, committed, refresh=refresh,
                               recent=recent)
    new = written.manifest
    if not store.replace_if_unchanged(keys.synced, new.encode(), version):
        return None
    try:
        if synced.manifest is not None:
            drop_generation(store, synced.manifest)
        sweep_orphans(store, keys.export, new.generation, older_than=time.time() - ORPHAN_SECONDS)
    except Exception as exc:  # the state is committed; what is left is swept by a later commit
        log.warning("old synced-state shards not deleted: %s", exc)
    log.info("synced state committed: %d entries in %d shards, %d bytes", new.entries, len(new.shard_keys()),
             written.bytes)
    return new


def tidy(store: StateStore, book: Runbook, retention_days: float) -> None:
    """After a commit: delete the run's plan and batch records, and prune the export's runs past retention.

    Housekeeping only (the state is committed): a failure is logged, never fails the run; what is left
    is removed by the next commit or by ``segment-export state prune``.
    """
    from worker.run.retention import prune

    try:
        book.delete_records()
    except Exception as exc:
        log.warning("run %s: plan and batch records not deleted: %s", book.run_id, exc)
    try:
        prune(store, [book.export], retention_days, keep_run=book.run_id)
    except Exception as exc:
        log.warning("export %s: retention prune failed: %s", book.export, exc)
