"""Emails that share a key (forced here with a weak hash; with BLAKE2s a 1e-25 event at ten million):
lookups and merges stay exact per email, and a collision never unsubscribes anyone who should stay."""

from __future__ import annotations

import hashlib
import tempfile
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.syncstate.support import export, run_once, stored
from worker.contacts.plan import REMOVE
from worker.state import open_store
from worker.syncstate import keys as keys_module
from worker.syncstate import merge as merge_module
from worker.syncstate.index import SeenKeys
from worker.syncstate.keys import email_keys, find, first_occurrences
from worker.syncstate.merge import DELETE, Changes, apply
from worker.syncstate.shard import Block


class _Weak:
    """A 'hash' with 2 bits of entropy in ``hi`` and 1 in ``lo``: emails collide all the time."""

    def __init__(self, data: bytes) -> None:
        self._d = hashlib.sha256(data).digest()

    def digest(self) -> bytes:
        return bytes([0, 0, 0, 0, 0, 0, 0, self._d[0] & 3]) + bytes(7) + bytes([self._d[1] & 1]) + bytes(16)


@pytest.fixture
def weak_keys():
    with mock.patch.object(keys_module, "_blake2s", _Weak):
        yield


def test_find_scans_a_run_of_equal_hi_for_the_right_lo():
    hi = np.array([1, 5, 5, 5, 9], dtype=np.uint64)
    lo = np.array([0, 7, 3, 8, 0], dtype=np.uint64)  # equal hi: any order
    got = find(hi, lo, np.array([5, 5, 5, 9, 4], dtype=np.uint64), np.array([3, 8, 4, 0, 0], dtype=np.uint64))
    assert got.tolist() == [2, 3, -1, 4, -1]


def test_first_occurrences_by_whole_key():
    hi = np.array([1, 1, 2, 1, 1], dtype=np.uint64)
    lo = np.array([0, 1, 0, 0, 1], dtype=np.uint64)
    assert first_occurrences(hi, lo).tolist() == [True, True, True, False, False]


@given(st.lists(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=30), max_size=12))
def test_seen_keys_is_a_set(pages):
    seen, model = SeenKeys(), set()
    for page in pages:
        page = list(dict.fromkeys(page))  # the planner adds keys not repeated among themselves
        hi = np.array([h for h, _ in page], dtype=np.uint64) << np.uint64(62)
        lo = np.array([lw for _, lw in page], dtype=np.uint64)
        assert seen.contains(hi, lo).tolist() == [k in model for k in page]
        new = [i for i, k in enumerate(page) if k not in model]
        seen.add(hi[new], lo[new])
        model.update(page)
        assert len(seen) == len(model)


def test_a_shared_key_keeps_one_exact_entry_per_email(weak_keys):
    emails = [f"user{i}@example.com" for i in range(30)]
    hi, lo = email_keys(emails)
    assert len(set(zip(hi.tolist(), lo.tolist(), strict=True))) < 10  # the weak hash does collide
    with Changes(0) as changes:
        for i, e in enumerate(emails):
            changes.set(e, i + 1, "")
        block = apply(Block.empty(), changes.partition(0))
    assert sorted(block.emails) == sorted(emails) and len(block) == 30
    keys = list(zip(block.hi.tolist(), block.lo.tolist(), block.emails, strict=True))
    assert keys == sorted(keys)  # (key, email) order
    with Changes(0) as changes:
        changes.delete(emails[3])
        changes.set(emails[4], 99, "s")
        changes.set("new@example.com", 7, "")
        updated = apply(block, changes.partition(0))
    entries = {e: (fp, flag) for e, fp, flag in zip(updated.emails, updated.fp.tolist(), updated.flag.tolist(),
                                                    strict=True)}
    assert emails[3] not in entries and entries[emails[4]] == (99, 1) and entries["new@example.com"] == (7, 0)
    assert all(entries[e] == (i + 1, 0) for i, e in enumerate(emails) if i not in (3, 4))
    assert DELETE == 3


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          deadline=None)
@given(runs=st.lists(st.lists(st.integers(0, 24), max_size=30), min_size=1, max_size=4),
       fail=st.sampled_from(["none", "some"]))
def test_collisions_never_unsubscribe_someone_who_stays(weak_keys, runs, fail):
    exp = export(max_removal_fraction=1.0)
    with tempfile.TemporaryDirectory() as folder, mock.patch.object(merge_module, "SHARD_TARGET", 3):
        store = open_store(f"file://{folder}")
        for n, people in enumerate(runs):
            before = stored(store, exp)
            rows = [{"E": f"p{i}@example.com", "F": f"r{n % 2}"} for i in people]
            present = {f"p{i}@example.com" for i in people}

            def outcome(email: str, op: str) -> str:
                return "failed" if fail == "some" and hash(email) % 5 == 0 else "ok"

            ran = run_once(store, exp, rows, outcome, run_id=f"run-{n}")
            removed = {e for e, op in ran.sent if op == REMOVE}
            assert not removed & present, "an email in the segment was unsubscribed"
            assert all(before[e][1] == "" for e in removed), "unsubscribed one that was not ours to"
            # the merge is exact per email, whatever the keys: each outcome lands on its own email
            after = stored(store, exp)
            expected = dict(before)
            for e in ran.dropped:
                expected.pop(e, None)
            for e, op in ran.sent:
                if outcome(e, op) == "failed":
                    continue
                expected[e] = ("", "u", "1700000000") if op == REMOVE else (ran.fingerprints[e], "", "")
            assert after == expected
