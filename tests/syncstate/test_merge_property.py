"""The streaming commit against a dict model: several runs of adds, updates, leavers, skips, re-entries
and failures, planned by the real planner and merged into sharded generations (many small shards, spilled
changes), always equal to what the documented rules give with every entry in memory."""

from __future__ import annotations

import hashlib
import tempfile
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.syncstate.support import export, model_run, run_once, stored
from worker.state import open_store
from worker.syncstate import merge as merge_module

PEOPLE = [f"p{i}@example.com" for i in range(40)]
OUTCOMES = ("ok", "ok", "ok", "failed", "skipped")


def outcome_chooser(seed: int):
    def outcome_for(email: str, op: str) -> str:
        digest = hashlib.blake2s(f"{seed}:{email}:{op}".encode()).digest()
        return OUTCOMES[digest[0] % len(OUTCOMES)]
    return outcome_for


snapshot = st.lists(st.tuples(st.sampled_from(PEOPLE), st.integers(0, 2)), max_size=45)
run_plan = st.tuples(snapshot, st.integers(0, 10_000), st.booleans())


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(runs=st.lists(run_plan, min_size=1, max_size=5), readmit=st.booleans(), keep=st.booleans(),
       shard_target=st.sampled_from([2, 5, 1 << 17]), spill=st.booleans())
def test_runs_match_the_dict_model(runs, readmit, keep, shard_target, spill):
    exp = export(readmit=readmit, on_leave="keep" if keep else "unsubscribe", max_removal_fraction=1.0)
    model: dict = {}
    with tempfile.TemporaryDirectory() as folder, \
            mock.patch.object(merge_module, "SHARD_TARGET", shard_target), \
            mock.patch.object(merge_module, "MEMORY_LIMIT", 64 if spill else 1 << 20):
        store = open_store(f"file://{folder}")
        for n, (people, seed, full) in enumerate(runs):
            rows = [{"E": email.upper() if version == 2 else email, "F": f"v{version}"} for email, version in people]
            choose = outcome_chooser(seed)
            expected, expected_sends = model_run(model, exp, rows, choose, full=full)
            ran = run_once(store, exp, rows, choose, run_id=f"run-{n}", full=full)
            assert set(ran.sent) == expected_sends
            assert len(ran.sent) == len(expected_sends), "a contact sent twice in one run"
            assert stored(store, exp) == expected
            model = expected
        keys = store.list("exports/x/")
        assert not [k for k in keys if "/runs/" in k and ("/plan/" in k or "/batches/" in k)]
        generations = {k.split("/")[3] for k in keys if k.startswith("exports/x/shards/")}
        assert len(generations) <= 1, "old generations were left behind"
