"""Step 4 of a run, commit: merge every batch's final outcome into the export's new synced state.

Why only at the end: the synced state is what the next run diffs against, so it may only say "AC has
this" once AC confirmed it. Contacts AC failed keep their old entry (the next run retries them);
contacts it skipped are flagged so they are not resent; leavers this export unsubscribed are kept
with the time, so a re-entry can be told apart from a person's own unsubscription.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from worker.activecampaign.importer import SKIPPED_UNSUBSCRIBED, BatchOutcome
from worker.plan import ADD, READMIT, REMOVE, UPDATE, Counts
from worker.report import FailureReport
from worker.runbook import Runbook
from worker.synced import SKIPPED, UNSUBSCRIBED, Entry, SyncedState

OPERATIONS = {ADD: "add", UPDATE: "update", REMOVE: "remove", READMIT: "readmit"}
KEPT_OUT_REASON = "left_and_returned_readmit_off"


@dataclass
class Merged:
    """The commit's result: the new state's entries, the event's counts and the failure report."""

    entries: dict[str, Entry]
    counts: dict[str, int]
    report: FailureReport


def merge(book: Runbook, list_id: int, synced: SyncedState, plan: Counts,
          outcome_of: Callable[[int], BatchOutcome], *, now: float | None = None) -> Merged:
    """Walk the plan's part headers (send order) and apply each batch's outcome to the synced entries."""
    since = str(int(time.time() if now is None else now))
    entries = dict(synced.entries)
    counts = {"profiles": plan.profiles, "invalid": plan.invalid, "duplicates": plan.duplicates,
              "added": 0, "updated": 0, "unchanged": plan.unchanged, "removed": 0, "failed": 0,
              "skipped": plan.skipped}
    report = FailureReport()
    for header in book.part_headers():
        for source, line, email, reason in header["invalid"]:
            report.add({"email": email, "stage": "invalid", "reason": reason, "source": source, "line": line})
        for email in header["dropped"]:
            entries.pop(email, None)
        for email in header["skipped"]:
            report.add({"email": email, "stage": "skipped", "reason": SKIPPED_UNSUBSCRIBED,
                        "detail": f"unsubscribed from list {list_id} in ActiveCampaign (seen by an earlier "
                                  f"run); never re-subscribed, so not sent again"})
        for email in header.get("kept_out", ()):
            report.add({"email": email, "stage": "skipped", "reason": KEPT_OUT_REASON,
                        "detail": f"left the segment earlier (this export unsubscribed it from list {list_id}) "
                                  f"and is back; readmit is off for this export, so it stays unsubscribed"})
        for b in header["batches"]:
            outcome = outcome_of(b["n"])
            for email, fp, op in zip(b["emails"], b["fps"], b["ops"], strict=True):
                _apply(email, fp, op, outcome, entries, counts, report, list_id, since)
    return Merged(entries, counts, report)


def _apply(email: str, fp: str, op: str, outcome: BatchOutcome, entries: dict[str, Entry],
           counts: dict[str, int], report: FailureReport, list_id: int, since: str) -> None:
    if email in outcome.failed:
        counts["failed"] += 1
        record = {"email": email, "stage": "failed", "reason": outcome.failed[email], "operation": OPERATIONS[op]}
        report.add(record)
        if op == ADD:
            report.new_contact(record)
        return
    if email in outcome.skipped:
        counts["skipped"] += 1
        if op == REMOVE:
            detail = f"already unsubscribed from list {list_id} in ActiveCampaign"
            entries.pop(email, None)  # not ours to re-subscribe later: forget it
        elif op == READMIT:
            detail = (f"left the segment earlier and is back, but the person unsubscribed from list {list_id} "
                      f"themselves (or is excluded or bounced); never re-subscribed")
            entries[email] = (fp, SKIPPED, "")
        else:
            detail = (f"ActiveCampaign skipped it: the contact unsubscribed from list {list_id}; never "
                      f"re-subscribed, not sent again")
            entries[email] = (fp, SKIPPED, "")
        report.add({"email": email, "stage": "skipped", "reason": outcome.skipped[email],
                    "operation": OPERATIONS[op], "detail": detail})
        return
    if op == REMOVE:
        counts["removed"] += 1
        entries[email] = ("", UNSUBSCRIBED, since)
        return
    counts["updated" if op == UPDATE else "added"] += 1
    entries[email] = (fp, "", "")
    if op == ADD:
        report.new_contact(None)
