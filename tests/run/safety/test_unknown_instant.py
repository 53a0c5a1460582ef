"""Issue 15, review 2: a run that knows no refresh instant must not record "now" as the newest refresh.

``export.requested`` with a snapshot and no ``refreshed_at`` (``segment-export request --snapshot``) and the
command line's ``sync`` run with no instant. Before the fix the engine recorded the refresh as made *now*
(in the manifest and ``last_refresh``), so a genuine refresh made before the request and delivered after it
was skipped as stale and the list kept the requested, older snapshot. Now such a run keeps the refresh
recorded before it, and the newer refresh is synced.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.e2e.conftest import Sim
from tests.run.safety.support import direct_config
from tests.run.safety.test_instants import run
from worker.contacts.samples import make_segment, write_jsonl
from worker.contacts.synced import SyncedState
from worker.events.envelopes import now_iso
from worker.run.runbook import RunKeys
from worker.settings import load_config
from worker.state import open_store


def test_a_run_without_an_instant_keeps_the_recorded_refresh(tmp_path: Path, sim: Sim) -> None:
    config = direct_config(tmp_path, sim)
    store = open_store(load_config(str(config)).worker.state_url)
    keys = RunKeys("vip", "-")
    a, b = make_segment(range(50)), make_segment(range(10, 60), versions={20: 1})
    snap_a = write_jsonl(tmp_path / "snap" / "a.jsonl", a.profiles)
    snap_b = write_jsonl(tmp_path / "snap" / "b.jsonl", b.profiles)
    assert run(config, snap_a, "r1", "2026-11-30T09:00:00Z").event["status"] == "succeeded"
    r2_at = now_iso()  # the newer refresh is made now ...
    last = store.get(keys.last_refresh)

    requested = run(config, snap_a, "requested-ev1", None)  # a re-sync of r1, no instant known
    assert requested.event is not None and requested.event["status"] == "succeeded"
    assert store.get(keys.last_refresh) == last
    refresh = SyncedState.load(store, keys.synced)[0].refresh
    assert refresh is not None and (refresh.refresh_id, refresh.occurred_at) == ("r1", "2026-11-30T09:00:00Z")

    late = run(config, snap_b, "r2", r2_at)  # ... and delivered after the request
    assert not late.stale and late.event is not None and late.event["status"] == "succeeded"
    sim.assert_list_exact(3, b.expected)
    assert orjson.loads(store.get(keys.last_refresh))["refresh_id"] == "r2"
