"""Must-show 3: a duplicate event and a stale refresh.

The same segment.refreshed published twice (back to back, and again after the run completed) syncs once:
no extra bulk imports, exactly one export.completed for the run id. An older refresh (earlier
``occurred_at``) arriving after a newer one has synced does nothing: no bulk import, no completion event,
the list keeps the newer refresh's contents.
"""

from __future__ import annotations

from tests.e2e.conftest import refreshed, run_id_for, write_config
from worker.contacts.samples import evolve, make_segment, write_jsonl


def _segments(tmp_path):
    ids = list(range(2000))
    older = make_segment(ids, seed=3)
    kept, versions, _, _ = evolve(ids, changed=0.1, removed=0.05, new=0.05, next_id=2000)
    newer = make_segment(kept, versions=versions, seed=3)
    snap_old = write_jsonl(tmp_path / "snap" / "old.jsonl", older.profiles)
    snap_new = write_jsonl(tmp_path / "snap" / "new.jsonl", newer.profiles)
    return older, newer, snap_old, snap_new


def test_same_event_twice_back_to_back_syncs_once(tmp_path, sim, broker, workers):
    """Both copies are in the worker at once (prefetch > 1): one sync, one export.completed."""
    _, newer, _, snap_new = _segments(tmp_path)
    worker = workers(write_config(tmp_path, sim, broker))
    event = refreshed(snap_new, refresh_id="refresh-new", occurred_at="2026-11-28T12:00:00.000Z")
    broker.publish(event)
    broker.publish(event)  # the very same message again (at-least-once upstream)
    broker.wait_completions(1, 90, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)
    run_id = run_id_for("vip", "refresh-new")
    done = broker.completions()
    assert len(sim.bulk_posts(None)) == -(-len(newer.expected) // 250)  # synced once
    sim.assert_list_exact(3, newer.expected)
    assert [e["run_id"] for e in done] == [run_id], f"{len(done)} export.completed for one run: {done}"
    assert done[0]["counts"]["added"] == len(newer.expected)
    assert broker.read_dead() == []
    assert worker.alive()


def test_redelivery_after_completion_and_stale_refresh_do_nothing(tmp_path, sim, broker, workers):
    _older, newer, snap_old, snap_new = _segments(tmp_path)
    worker = workers(write_config(tmp_path, sim, broker))
    new_event = refreshed(snap_new, refresh_id="refresh-new", occurred_at="2026-11-28T12:00:00.000Z")
    broker.publish(new_event)
    broker.wait_completions(1, 90, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)
    run_id = run_id_for("vip", "refresh-new")
    assert [e["run_id"] for e in broker.completions()] == [run_id]
    sim.assert_list_exact(3, newer.expected)
    posts = len(sim.bulk_posts(None))
    assert posts == -(-len(newer.expected) // 250)

    # the same message again, after the run completed: recognised, not re-run, not re-announced
    broker.publish(new_event)
    broker.wait_idle(60, check=worker.assert_alive)
    assert len(broker.completions()) == 1
    assert len(sim.bulk_posts(None)) == posts

    # an older refresh arriving late: stale, nothing happens
    stale = refreshed(snap_old, refresh_id="refresh-old", occurred_at="2026-11-28T11:00:00.000Z")
    broker.publish(stale)
    broker.wait_idle(60, check=worker.assert_alive)
    broker.read_events()
    assert [e for e in broker.events if e.get("run_id") == run_id_for("vip", "refresh-old")] == []
    assert [e["run_id"] for e in broker.events] == [run_id], broker.events
    assert len(sim.bulk_posts(None)) == posts
    sim.assert_list_exact(3, newer.expected)
    assert broker.read_dead() == []
    assert worker.alive()
