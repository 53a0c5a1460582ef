"""Plans have an identity, and the registry of open plans says which are live (worker.run.plans)."""

from __future__ import annotations

from pathlib import Path

from worker.run.plans import LEGACY, PlanKey, live_plans, register
from worker.state import FileStore


def test_a_plan_id_changes_with_its_base_its_snapshot_and_its_shape() -> None:
    key = PlanKey("base", "snapshot", "shape")
    assert key.id == PlanKey("base", "snapshot", "shape").id
    assert len({key.id, PlanKey("other", "snapshot", "shape").id, PlanKey("base", "other", "shape").id,
                PlanKey("base", "snapshot", "other").id}) == 4


def test_only_plans_made_against_the_current_state_are_live(tmp_path: Path) -> None:
    """A plan made against an earlier state was folded in by the commit that replaced that state: its
    registration is garbage and goes at the next look."""
    store = FileStore(tmp_path)
    register(store, "vip", "run-a", PlanKey("base-1", "s", "x"))
    b = register(store, "vip", "run-b", PlanKey("base-2", "s", "x"))
    live = live_plans(store, "vip", "base-2", "run-c")
    assert [(h.run_id, h.plan, h.base) for h in live] == [("run-b", b.plan, "base-2")]
    assert store.list("exports/vip/plans/") == [b.key]


def test_records_of_a_run_made_before_plans_are_adopted_once(tmp_path: Path) -> None:
    """A run in progress when the worker was upgraded left its records at runs/<run>/plan and batches/: it
    adopts them as a plan against the state it finds (what it assumed then), and never again after a commit."""
    store = FileStore(tmp_path)
    store.put("exports/vip/runs/run-a/plan/part-00000", b"{}\n")
    store.put("exports/vip/runs/run-a/batches/00000.accepted", b"{}")
    [head] = live_plans(store, "vip", "base-1", "run-a")
    assert (head.run_id, head.plan, head.base) == ("run-a", LEGACY, "base-1")
    assert live_plans(store, "vip", "base-1", "run-a") == [head]  # the same registration, not a second one
    assert live_plans(store, "vip", "base-1", "run-b") == [head]  # others see it too
    assert live_plans(store, "vip", "base-2", "run-a") == []  # folded in by the commit to base-2: not again
    assert store.list("exports/vip/plans/") == [head.key]  # kept while its records are there
    store.delete("exports/vip/runs/run-a/plan/part-00000")
    store.delete("exports/vip/runs/run-a/batches/00000.accepted")
    assert live_plans(store, "vip", "base-2", "run-a") == []
    assert store.list("exports/vip/plans/") == []
