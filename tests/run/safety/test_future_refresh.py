"""Issue 15, review 3: a refresh dated in the future must never hold every genuine refresh off.

The worker refuses such an event (``future_refresh``: ``tests/e2e/test_malformed.py``). A refresh recorded with
such an instant before that check existed (or by ``sync`` of a direct run given one) orders nothing, so the
next genuine refresh is not stale: it is synced and replaces the record. Before the fix a refresh dated 2099
made every later one stale (no event, the list stuck) until that date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.conftest import Sim
from tests.run.safety.support import direct_config
from tests.run.safety.test_instants import run
from worker.contacts.samples import make_segment, write_jsonl
from worker.events.instants import MAX_FUTURE_SKEW, refresh_after, too_far_ahead


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_too_far_ahead_allows_clock_skew_only() -> None:
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    assert not too_far_ahead(_iso(now + MAX_FUTURE_SKEW), now)  # skew between clocks is fine
    assert too_far_ahead(_iso(now + MAX_FUTURE_SKEW + timedelta(seconds=1)), now)
    assert not too_far_ahead("2026-11-30T09:00:00Z", now) and not too_far_ahead("not a time", now)
    assert not refresh_after("2099-12-31T23:59:59Z", "r-2099", "2026-11-30T09:00:00Z", "r-0900")


def test_a_recorded_future_refresh_does_not_brick_the_export(tmp_path: Path, sim: Sim) -> None:
    config = direct_config(tmp_path, sim)
    a, b = make_segment(range(50)), make_segment(range(10, 60), versions={20: 1})
    snap_a = write_jsonl(tmp_path / "snap" / "a.jsonl", a.profiles)
    snap_b = write_jsonl(tmp_path / "snap" / "b.jsonl", b.profiles)
    assert run(config, snap_a, "r-2099", "2099-12-31T23:59:59Z").event["status"] == "succeeded"

    result = run(config, snap_b, "r-genuine", "2026-11-30T09:00:00Z")
    assert not result.stale and result.event is not None and result.event["status"] == "succeeded"
    sim.assert_list_exact(3, b.expected)
    # the genuine refresh is now the one to beat: an older one is stale
    assert run(config, snap_a, "r-older", "2026-11-30T08:00:00Z").stale
    sim.assert_list_exact(3, b.expected)
