"""Managed tags against a dict model: over several runs of tag changes, leavers, skips, failures and
re-entries (the real planner, part records, the removal step's plan and the streaming commit), the tags
each contact must lose and the tags the synced state remembers are what the documented rules give.

The rules (worker/contacts/plan.py, worker/run/tags.py, worker/run/commit.py): a contact the run sent
and AC took keeps exactly the tags sent, each with the time of the run that first sent it (kept while it
is sent again), and loses the remembered ones it was not sent, with those times (a leaver loses
all); one AC failed keeps its entry and its tags and loses nothing; one AC skipped keeps what it had
(a skipped leaver is forgotten and loses its tags); a dropped leaver loses its tags.
"""

from __future__ import annotations

import hashlib
import tempfile
from unittest import mock

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.syncstate.support import NOW, export, pages
from worker.activecampaign.importer import SKIPPED_UNSUBSCRIBED, BatchOutcome
from worker.contacts.mapping import Mapper
from worker.contacts.plan import ADD, READMIT, REMOVE, UPDATE, Planner
from worker.contacts.synced import SyncedState
from worker.contacts.tagsets import decode_tags, encode_tags, stamp_tags, tag_name
from worker.run.commit import install, merge
from worker.run.runbook import Runbook
from worker.run.tags import planned
from worker.state import StateStore, open_store
from worker.syncstate import merge as merge_module
from worker.syncstate.manifest import Committed

PEOPLE = [f"p{i}@example.com" for i in range(30)]
TAG_VALUES = ["", "a", "a,b", "B", "b,c", "c"]
OUTCOMES = ("ok", "ok", "ok", "failed", "skipped")


def outcome_chooser(seed: int):
    def outcome_for(email: str, op: str) -> str:
        digest = hashlib.blake2s(f"{seed}:{email}:{op}".encode()).digest()
        return OUTCOMES[digest[0] % len(OUTCOMES)]
    return outcome_for


def stored_tags(store: StateStore) -> dict[str, tuple[str, str]]:
    """email -> (flag, tags) of the committed state."""
    state, _ = SyncedState.load(store, "exports/x/synced")
    out = {}
    for block in state.source.blocks():
        for email, flag, tags in zip(block.emails, block.flag.tolist(), block.tag_list(), strict=True):
            out[email] = ("" if flag == 0 else "s" if flag == 1 else "u", tags)
    return out


def run(store: StateStore, exp, rows, outcome_for, run_id: str, now: int = NOW):
    """One run without ActiveCampaign; returns (sends, untag plan as {email: names})."""
    synced, version = SyncedState.load(store, "exports/x/synced")
    book = Runbook(store, exp.name, run_id)
    planner = Planner(Mapper(exp), synced, unsubscribe_leavers=exp.on_leave == "unsubscribe", readmit=exp.readmit,
                      leavers_per_part=3, manage_tags=True)
    outcomes: dict[int, BatchOutcome] = {}
    sends: list[tuple[str, str, str]] = []
    for part in planner.plan(pages(rows, 4)):
        book.put_part(part)
        for b in part.batches:
            failed, skipped = {}, {}
            for email, op, contact in zip(b.emails, b.ops, b.contacts, strict=True):
                sends.append((email, op, encode_tags(contact.get("tags"))))
                verdict = outcome_for(email, op)
                if verdict == "failed":
                    failed[email] = "refused"
                elif verdict == "skipped":
                    skipped[email] = SKIPPED_UNSUBSCRIBED
            outcomes[b.number] = BatchOutcome(b.number, f"b{b.number}", "completed", failed, skipped)
    untag = {u.email: u.names for u in planned(book, outcomes.__getitem__)}
    merged = merge(book, exp.list_id, synced, planner.totals, outcomes.__getitem__, now=now)
    try:
        assert install(store, book.keys, synced, version, merged.changes, run_id,
                       Committed(merged.counts, "file:///report")) is not None
    finally:
        merged.changes.close()
    book.delete_records()
    return sends, untag


def items(stored: str) -> list:
    return orjson.loads(stored) if stored else []


def model(before: dict[str, tuple[str, str]], sends, seen: set[str], keep_leavers: bool, outcome_for, now: int):
    """(state after, untag) by the rules in the module docstring."""
    after = dict(before)
    untag: dict[str, list] = {}

    def lost(old: str, new: str) -> list:
        keep = {t.casefold() for t in decode_tags(new)}
        return [t for t in items(old) if tag_name(t).casefold() not in keep]

    sent = {email for email, _, _ in sends}
    for email, op, tags in sends:
        _, old_tags = before.get(email, ("", ""))
        verdict = outcome_for(email, op)
        if verdict == "failed":
            continue
        if verdict == "skipped":
            if op == REMOVE:
                del after[email]
                if old_tags:
                    untag[email] = items(old_tags)
            else:
                after[email] = ("s", old_tags if email in before else "")
            continue
        if op == REMOVE:
            after[email] = ("u", "")
            if old_tags:
                untag[email] = items(old_tags)
            continue
        after[email] = ("", stamp_tags(old_tags, tags, now))
        if op in (UPDATE, READMIT) and lost(old_tags, tags):
            untag[email] = lost(old_tags, tags)
        assert op != ADD or email not in before
    for email, (flag, tags) in before.items():  # dropped leavers: forgotten without a request
        if email in seen or email in sent or flag == "u":
            continue
        if keep_leavers or flag == "s":
            del after[email]
            if tags:
                untag[email] = items(tags)
    return after, untag


snapshot = st.lists(st.tuples(st.sampled_from(PEOPLE), st.sampled_from(TAG_VALUES), st.integers(0, 1)),
                    max_size=35)


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(runs=st.lists(st.tuples(snapshot, st.integers(0, 10_000)), min_size=1, max_size=5), keep=st.booleans(),
       shard_target=st.sampled_from([2, 5, 1 << 17]), spill=st.booleans())
def test_the_tags_lost_and_remembered_match_the_model(runs, keep, shard_target, spill):
    exp = export(tags=["Static"], tag_field="T", on_leave="keep" if keep else "unsubscribe",
                 max_removal_fraction=1.0)
    state: dict[str, tuple[str, str]] = {}
    with tempfile.TemporaryDirectory() as folder, \
            mock.patch.object(merge_module, "SHARD_TARGET", shard_target), \
            mock.patch.object(merge_module, "MEMORY_LIMIT", 64 if spill else 1 << 20):
        store = open_store(f"file://{folder}")
        for n, (people, seed) in enumerate(runs):
            rows, seen = [], set()
            for email, tags, version in people:
                rows.append({"E": email, "F": f"v{version}", "T": tags})
                seen.add(email)
            choose = outcome_chooser(seed)
            sends, untag = run(store, exp, rows, choose, f"run-{n}", NOW + n)
            expected, expected_untag = model(state, sends, seen, keep, choose, NOW + n)
            assert untag == expected_untag
            assert stored_tags(store) == expected
            state = expected


def test_a_leaver_loses_the_tags_it_was_sent_and_a_changed_value_only_its_own(tmp_path):
    """The plain case, spelled out: static tag and tag_field values, one leaver, one changed value."""
    exp = export(tags=["segment:vip"], tag_field="T", max_removal_fraction=1.0)
    store = open_store(tmp_path.as_uri())

    def ok(email: str, op: str) -> str:
        return "ok"

    run(store, exp, [{"E": "a@x.com", "T": "red,blue"}, {"E": "b@x.com", "T": "red"}], ok, "r1", NOW)
    _, untag = run(store, exp, [{"E": "b@x.com", "T": "Blue"}], ok, "r2", NOW + 60)
    # each tag with when this export first sent it: the removal step keeps a link AC made before then
    assert untag == {"a@x.com": [["segment:vip", NOW], ["red", NOW], ["blue", NOW]], "b@x.com": [["red", NOW]]}
    assert stored_tags(store) == {"a@x.com": ("u", ""),
                                  "b@x.com": ("", f'[["segment:vip",{NOW}],["Blue",{NOW + 60}]]')}


def test_another_export_s_unknown_first_send_time_is_no_help():
    """A peer state written before times were kept says 0 (not known) for its tags: that must not make this
    export's own time 0 (which would count every link of the tag as its own; second review of issue 18)."""
    assert stamp_tags("", '["vip"]', 500, {"vip": 0}) == '[["vip",500]]'
    assert stamp_tags("", '["VIP"]', 500, {"vip": 200}) == '[["VIP",200]]'  # a peer sent it first
    assert stamp_tags('[["vip",100]]', '["vip"]', 500, {"vip": 50}) == '[["vip",100]]'  # ours already


def test_a_fold_stamps_each_part_with_its_own_time(tmp_path):
    """Two plans that never committed are folded in together: each contact's new tags take the time of the
    part that sent them, and a contact both plans sent takes the older plan's (AC keeps its older link).
    The fold used to give every contact the earliest part's time (second review of issue 18)."""
    import asyncio

    from worker.run.plans import LEGACY, PlanHead
    from worker.run.settle import settle

    exp = export(tags=["segment:vip"], tag_field="T", max_removal_fraction=1.0)
    store = open_store(tmp_path.as_uri())
    synced, version = SyncedState.load(store, "exports/x/synced")
    plans = [[f"p{i}@example.com" for i in range(0, 12)], [f"p{i}@example.com" for i in range(8, 20)]]
    expected: dict[str, int] = {}
    heads = []
    for n, people in enumerate(plans):
        book = Runbook(store, exp.name, f"run-{n}")
        planner = Planner(Mapper(exp), synced, unsubscribe_leavers=True, readmit=True, manage_tags=True,
                          max_contacts=3)  # batches of 3: each part sends its own
        for part in planner.plan(pages([{"E": e, "F": "v", "T": "a"} for e in people], 4)):
            book.put_part(part)
            for b in part.batches:
                book.record_final(BatchOutcome(b.number, f"b{b.number}", "completed", {}, {}))
        for k, key in enumerate(sorted(store.list(book.keys.plan))):  # each part its own time
            header = orjson.loads(store.get(key).split(b"\n", 1)[0])
            header["planned_at"] = at = 1000 * (n + 1) + 10 * k
            store.put(key, orjson.dumps(header) + b"\n")
            for b in header["batches"]:
                for email in b["emails"]:
                    expected[email] = min(expected.get(email, at), at)
        heads.append(PlanHead(exp.name, f"run-{n}", LEGACY, synced.base, made_at=float(n)))
    assert len({at for at in expected.values()}) > 2, "the parts must have several times for this to show"

    def no_request():
        raise AssertionError("a fold of final batches with no tags to remove sends nothing")

    assert asyncio.run(settle(store, exp.name, exp.list_id, heads, synced, version, no_request))
    stored = stored_tags(store)
    assert {e: tags for e, (_, tags) in stored.items()} == {
        e: f'[["segment:vip",{at}],["a",{at}]]' for e, at in expected.items()}
