"""The failure report of a run: one record per contact that was not synced, and why.

Written to the state store as ``failures.jsonl`` and ``failures.csv`` (same records; the CSV for people
with a spreadsheet). Full emails: the report is access-controlled like the state store; logs only ever
show masked ones. The completion event carries the report's URI, never its content.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

import orjson

from worker.activecampaign.importer import FAILED_NOT_IMPORTED
from worker.privacy.masking import mask_email
from worker.run.runbook import RunKeys
from worker.state import StateStore

log = logging.getLogger("segment_export.report")

#: The CSV's columns (the JSON Lines records have the same keys, where they apply).
REPORT_COLUMNS = ("email", "stage", "reason", "detail", "source", "line", "operation")
#: New contacts failing in a row, at the end of a run, that make the report name the contact limit.
CONTACT_LIMIT_TAIL = 10
CONTACT_LIMIT_REASON = "not imported: the ActiveCampaign account has most likely reached its contact limit"

Record = dict[str, Any]


class FailureReport:
    """Collects a run's failure records in send order, then writes them once."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        #: The added contacts that failed since the last one that was created, in send order: all that the
        #: contact-limit explanation reads (one entry per add would be tens of MB at ten million contacts).
        self._failed_tail: list[Record | None] = []

    def add(self, record: Record) -> None:
        self.records.append(record)

    def new_contact(self, record: Record | None) -> None:
        """An added contact's outcome, in send order: its failure record, or None when it was created."""
        if record is None:
            self._failed_tail.clear()
        else:
            self._failed_tail.append(record)

    def write(self, store: StateStore, keys: RunKeys, export: str) -> str:
        """Write failures.jsonl and failures.csv; returns the JSON Lines report's URI."""
        explain_contact_limit(self._failed_tail, export)
        store.put(keys.failures_jsonl, b"".join(orjson.dumps(r) + b"\n" for r in self.records))
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(REPORT_COLUMNS)
        for r in self.records:
            writer.writerow([r.get("email") or "", r["stage"], r["reason"], r.get("detail", ""),
                             r.get("source", ""), r.get("line", ""), r.get("operation", "")])
        store.put(keys.failures_csv, buf.getvalue().encode())
        if self.records:
            log.info("failure report written: %d records (e.g. %s)", len(self.records),
                     mask_email(self.records[0].get("email") or ""))
        return store.uri(keys.failures_jsonl)


def explain_contact_limit(new_contacts: list[Record | None], export: str) -> None:
    """Say "contact limit" in words an admin understands when the failures look like it.

    AC's import/info names the emails it did not import, never why. One pattern has a likely cause:
    from some point on, every *new* contact of the run failed (at least ``CONTACT_LIMIT_TAIL`` in a
    row, none created after them), which is what the plan's contact cap does (updates of existing
    contacts still go through). Those records get a reason that names the limit and the fix; the
    wording says "most likely" because AC does not confirm it.
    """
    tail: list[Record] = []
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
