"""readmit_days: entries kept only for re-entry are forgotten at the commit after they expire; a contact
the run re-admits keeps its new entry; nothing else is touched."""

from __future__ import annotations

from tests.syncstate.support import NOW, export, pages, run_once, stored
from worker.activecampaign.importer import BatchOutcome
from worker.contacts.mapping import Mapper
from worker.contacts.plan import Planner
from worker.contacts.synced import SyncedState
from worker.run.commit import install, merge
from worker.run.expiry import DAY, cutoff
from worker.run.runbook import Runbook
from worker.state import open_store
from worker.syncstate.manifest import Committed


def ok(email: str, op: str) -> str:
    return "ok"


def commit(store, exp, rows, run_id: str, expire_before: int) -> None:
    synced, version = SyncedState.load(store, "exports/x/synced")
    book = Runbook(store, "x", run_id)
    planner = Planner(Mapper(exp), synced)
    outcomes = {}
    for part in planner.plan(pages(rows)):
        book.put_part(part)
        for b in part.batches:
            outcomes[b.number] = BatchOutcome(b.number, "b", "completed", {}, {})
    merged = merge(book, exp.list_id, synced, planner.totals, outcomes.__getitem__, now=NOW,
                   expire_before=expire_before)
    try:
        assert install(store, book.keys, synced, version, merged.changes, run_id, Committed(merged.counts, "r"))
    finally:
        merged.changes.close()


def test_expired_leavers_are_forgotten_and_a_readmitted_one_is_kept(tmp_path):
    exp = export(max_removal_fraction=1.0)
    store = open_store(tmp_path.as_uri())
    rows = [{"E": f"p{i}@example.com"} for i in range(6)]
    run_once(store, exp, rows, ok, run_id="r1")
    run_once(store, exp, rows[:2], ok, run_id="r2")  # p2..p5 leave: unsubscribed at NOW
    assert {e for e, (_, flag, _) in stored(store, exp).items() if flag == "u"} == {f"p{i}@example.com"
                                                                                    for i in range(2, 6)}
    # not yet expired: nothing forgotten
    commit(store, exp, rows[:2], "r3", expire_before=NOW)
    assert len(stored(store, exp)) == 6
    # expired; p5 comes back in this very run (re-admitted): its new entry wins
    commit(store, exp, [*rows[:2], rows[5]], "r4", expire_before=NOW + 1)
    after = stored(store, exp)
    assert set(after) == {"p0@example.com", "p1@example.com", "p5@example.com"}
    assert after["p5@example.com"][1] == ""  # subscribed again


def test_cutoff_counts_days_back_from_now():
    assert cutoff(10, NOW) == NOW - 10 * DAY
