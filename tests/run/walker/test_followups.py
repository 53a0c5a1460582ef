"""Issue 15's follow-ups (a hostile review of the run protocol), each reproduced against the simulator.

4. Two refreshes with the same ``occurred_at``: whichever committed, the other is ordered after or before it
   by refresh id, the same way on every replica (a late duplicate of equal time is stale, or it is not,
   whatever the order they arrive in).

The public engine, real stores and the simulator over HTTP (the helpers of ``test_reviewer_sequences``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.run.walker.test_reviewer_sequences import config, expected, first_names, run, sim, snapshot, spec
from worker.events.instants import refresh_after
from worker.state import FileStore

__all__ = ["sim"]  # the simulator fixture, shared with the reviewer's sequences

SAME_TIME = "2026-12-01T11:00:00Z"


# ------------------------------------------------------------------------------------------ 4


@pytest.mark.parametrize(("a", "b", "after"), [
    (("2026-12-01T11:00:00Z", "r-a"), ("2026-12-01T10:00:00Z", "r-z"), True),  # the instant decides first
    (("2026-12-01T11:00:00Z", "r-b"), ("2026-12-01T11:00:00Z", "r-a"), True),  # equal instants: the id
    (("2026-12-01T11:00:00Z", "r-a"), ("2026-12-01T13:00:00+02:00", "r-b"), False),  # same instant, other text
    (("2026-12-01T11:00:00Z", "r-a"), ("2026-12-01T11:00:00Z", "r-a"), False),  # never after itself
    ((None, "r-b"), ("2026-12-01T11:00:00Z", "r-a"), False),  # an unknown instant orders nothing
])
def test_refreshes_are_ordered_by_instant_then_by_refresh_id(a: tuple[str | None, str], b: tuple[str, str],
                                                             after: bool) -> None:
    assert refresh_after(a[0], a[1], b[0], b[1]) is after


@pytest.mark.parametrize("order", [("r-b", "r-a"), ("r-a", "r-b")])
def test_a_refresh_of_the_same_instant_arriving_second_is_ordered_by_its_id(tmp_path: Path, sim,
                                                                            order: tuple[str, str]) -> None:
    """r-a and r-b were both made at 11:00 with different members. Whatever order they arrive in, r-b (the
    greater id) is the newest: r-a after r-b is stale (nothing sent, the list stays r-b's); r-b after r-a
    runs. Before, r-a after r-b ran and put its members on the list, so the outcome depended on the order in
    which a replica happened to see them."""
    url, simc = sim
    cfg = config(url, (tmp_path / "state").as_uri())
    store = FileStore(tmp_path / "state")
    base = snapshot(tmp_path, "base", range(40), "v0")
    assert run(cfg, store, spec(cfg, base, "r-base", "2026-12-01T08:00:00Z")).exit_code == 0
    uris = {"r-a": snapshot(tmp_path, "r-a", range(0, 40), "va"), "r-b": snapshot(tmp_path, "r-b", range(5, 45), "vb")}
    first, second = order
    assert run(cfg, store, spec(cfg, uris[first], first, SAME_TIME)).exit_code == 0
    late = run(cfg, store, spec(cfg, uris[second], second, SAME_TIME))
    assert late.stale is (second == "r-a"), late.outcome
    assert first_names(simc) == expected(range(5, 45), "vb")
