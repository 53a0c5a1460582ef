"""A run without ActiveCampaign: the real planner, part records, commit merge and install, with outcomes
chosen by the test; and the documented semantics as a plain dict model to hold them against."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from worker.activecampaign.importer import SKIPPED_UNSUBSCRIBED, BatchOutcome
from worker.contacts.mapping import Mapper
from worker.contacts.plan import ADD, READMIT, REMOVE, UPDATE, Counts, Planner
from worker.contacts.synced import Entry, SyncedState
from worker.run.commit import install, merge
from worker.run.runbook import Runbook
from worker.settings import Export, parse_config
from worker.snapshot import Page
from worker.state import StateStore
from worker.syncstate.manifest import Committed

NOW = 1_700_000_000
Outcome = str  # "ok" | "failed" | "skipped"


def export(name: str = "x", **over: object) -> Export:
    raw = {"segment": "s", "connection": "c", "list_id": 3,
           "mapping": {"email": "E", "first_name": "F", "last_name": "L", "phone": "P"}, **over}
    cfg = parse_config({"connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X",
                                              "data_privacy_consent": True}},
                        "exports": {name: raw}})
    return cfg.exports[name]


def pages(rows: list[dict], size: int = 7) -> list[Page]:
    return [Page("file:///snap.jsonl", [(i + 1, r) for i, r in enumerate(rows[s:s + size], s)])
            for s in range(0, len(rows), size)] or [Page("file:///snap.jsonl")]


@dataclass
class Ran:
    totals: Counts
    counts: dict[str, int]
    sent: list[tuple[str, str]]  # (email, op) in send order
    fingerprints: dict[str, str]  # of each sent email
    dropped: list[str]


def run_once(store: StateStore, exp: Export, rows: list[dict], outcome_for: Callable[[str, str], Outcome], *,
             run_id: str, full: bool = False, page_size: int = 7, leavers_per_part: int = 3) -> Ran:
    """Plan ``rows`` against the stored state, "send" with the chosen outcomes, merge and install."""
    synced, version = SyncedState.load(store, f"exports/{exp.name}/synced")
    book = Runbook(store, exp.name, run_id)
    planner = Planner(Mapper(exp), synced, full=full, unsubscribe_leavers=exp.on_leave == "unsubscribe",
                      readmit=exp.readmit, leavers_per_part=leavers_per_part)
    outcomes: dict[int, BatchOutcome] = {}
    sent: list[tuple[str, str]] = []
    fingerprints: dict[str, str] = {}
    dropped: list[str] = []
    for part in planner.plan(pages(rows, page_size)):
        book.put_part(part)
        dropped.extend(part.dropped)
        for b in part.batches:
            failed, skipped = {}, {}
            for email, op, fp in zip(b.emails, b.ops, b.fingerprints, strict=True):
                sent.append((email, op))
                fingerprints[email] = fp
                verdict = outcome_for(email, op)
                if verdict == "failed":
                    failed[email] = "refused"
                elif verdict == "skipped":
                    skipped[email] = SKIPPED_UNSUBSCRIBED
            outcomes[b.number] = BatchOutcome(b.number, f"b{b.number}", "completed", failed, skipped)
    merged = merge(book, exp.list_id, synced, planner.totals, outcomes.__getitem__, now=NOW)
    try:
        assert install(store, book.keys, synced, version, merged.changes, run_id,
                       Committed(merged.counts, "file:///report")) is not None
    finally:
        merged.changes.close()
    book.delete_records()
    return Ran(planner.totals, merged.counts, sent, fingerprints, dropped)


def stored(store: StateStore, exp: Export) -> dict[str, Entry]:
    state, _ = SyncedState.load(store, f"exports/{exp.name}/synced")
    entries = dict(state.entries())
    assert len(entries) == len(state), "an email stored twice"
    return entries


def model_run(state: dict[str, Entry], exp: Export, rows: Iterable[dict], outcome_for: Callable[[str, str], Outcome],
              *, full: bool = False) -> tuple[dict[str, Entry], set[tuple[str, str]]]:
    """The synced state after one run, by the rules in worker.contacts.synced, worker.contacts.plan and
    worker.run.commit."""
    mapper = Mapper(exp)
    new = dict(state)
    seen: set[str] = set()
    sends: list[tuple[str, str, str]] = []  # (email, fingerprint, op)
    for row in rows:
        m = mapper.map(row)
        if isinstance(m, str) or m.email in seen:
            continue
        seen.add(m.email)
        old = state.get(m.email)
        if old is None:
            sends.append((m.email, m.fingerprint, ADD))
        elif old[1] == "u":
            if exp.readmit:
                sends.append((m.email, m.fingerprint, READMIT))
        elif full:
            sends.append((m.email, m.fingerprint, UPDATE))
        elif old[1] == "s":
            pass
        elif old[0] != m.fingerprint:
            sends.append((m.email, m.fingerprint, UPDATE))
    for email, (_, flag, _) in state.items():
        if email in seen or flag == "u":
            continue
        if exp.on_leave == "unsubscribe" and flag != "s":
            sends.append((email, "", REMOVE))
        else:
            del new[email]
    for email, fp, op in sends:
        verdict = outcome_for(email, op)
        if verdict == "failed":
            continue
        if verdict == "skipped":
            if op == REMOVE:
                del new[email]
            else:
                new[email] = (fp, "s", "")
        elif op == REMOVE:
            new[email] = ("", "u", str(NOW))
        else:
            new[email] = (fp, "", "")
    return new, {(e, op) for e, _, op in sends}
