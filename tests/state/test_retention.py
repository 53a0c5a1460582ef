"""Retention (``worker.run.retention.prune``): old runs go, whole; live runs, the kept run and markers stay.

On a folder, record times are set with ``os.utime`` (a run of 40 days ago is a file of 40 days ago);
on S3, where LastModified cannot be set, the clock is moved instead (``now``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from worker.run.retention import DAY, prune
from worker.state import FileStore, StateError, StateStore

NOW = time.time()
MARKERS = ["exports/vip/synced", "exports/vip/last_snapshot", "exports/vip/last_refresh", "exports/vip/lease"]


def run_keys(run_id: str, export: str = "vip") -> list[str]:
    base = f"exports/{export}/runs/{run_id}"
    return [f"{base}/plan/part-00000", f"{base}/batches/00000.accepted", f"{base}/batches/00000.final",
            f"{base}/failures.jsonl", f"{base}/failures.csv", f"{base}/completed", f"{base}/published"]


def write(store: StateStore, keys: list[str]) -> None:
    for key in keys:
        store.put(key, key.encode())


def age(store: FileStore, keys: list[str], days: float) -> None:
    """Make the records look written ``days`` ago."""
    when = NOW - days * DAY
    for key in keys:
        os.utime(os.path.join(store.root, *key.split("/")), (when, when))


@pytest.fixture
def files(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "state")


def test_old_runs_go_whole_and_everything_else_stays(files: FileStore) -> None:
    old, older, live, kept = run_keys("old"), run_keys("older"), run_keys("live"), run_keys("just-committed")
    other_export = run_keys("old", export="other")
    segment = ["segments/vip-customers/latest"]
    stray = ["exports/vip/runs/README"]  # not inside a run folder: not a run's record
    everything = [*old, *older, *live, *kept, *other_export, *segment, *stray, *MARKERS]
    write(files, everything)
    age(files, everything, 400)  # markers, other exports and strays are old too: still never touched
    age(files, old, 31)
    age(files, live[:-1], 45)
    age(files, live[-1:], 1)  # one fresh record: the run is still in progress
    report = prune(files, ["vip"], 30, now=NOW, keep_run="just-committed")

    assert [(r.export, r.run_id, r.keys) for r in report.removed] == [("vip", "old", 7), ("vip", "older", 7)]
    assert report.kept == 2 and report.removed_keys == 14
    assert files.list("") == sorted(set(everything) - set(old) - set(older))
    assert report.removed[0].last_modified == pytest.approx(NOW - 31 * DAY)
    summary = report.as_dict()
    assert summary["removed_runs"] == 2 and summary["kept_runs"] == 2 and summary["dry_run"] is False
    assert summary["cutoff"].endswith("Z") and summary["runs"][0]["run_id"] == "old"


def test_the_cutoff_is_the_retention(files: FileStore) -> None:
    young, old = run_keys("young"), run_keys("old")
    write(files, young + old)
    age(files, young, 2.9)
    age(files, old, 3.1)
    assert [r.run_id for r in prune(files, ["vip"], 3, now=NOW).removed] == ["old"]
    assert [r.run_id for r in prune(files, ["vip"], 0.5, now=NOW).removed] == ["young"]  # fractions of days work
    assert files.list("") == []


def test_dry_run_reports_and_removes_nothing(files: FileStore) -> None:
    old = run_keys("old")
    write(files, old + MARKERS)
    age(files, old, 90)
    before = files.list_modified("")
    report = prune(files, ["vip"], 30, now=NOW, dry_run=True)
    assert report.dry_run and [r.run_id for r in report.removed] == ["old"] and report.removed_keys == 7
    assert files.list_modified("") == before
    assert prune(files, ["vip"], 30, now=NOW).removed_keys == 7  # the same, for real


def test_only_the_named_exports(files: FileStore) -> None:
    vip, other = run_keys("r1"), run_keys("r1", export="other")
    write(files, vip + other)
    age(files, vip + other, 60)
    prune(files, ["other"], 30, now=NOW)
    assert files.list("") == sorted(vip)


class FailingDeletes(FileStore):
    """A folder store whose storage fails after ``allowed`` deletes (a disk or network going away)."""

    allowed = 3

    def delete(self, key: str) -> None:
        if self.allowed == 0:
            raise StateError(f"cannot delete {self.uri(key)}: input/output error")
        self.allowed -= 1
        super().delete(key)


def test_a_prune_cut_short_leaves_the_run_reading_as_done_and_the_next_one_finishes(tmp_path: Path) -> None:
    store = FailingDeletes(tmp_path / "state")
    old = run_keys("old")
    write(store, old)
    age(store, old, 60)
    with pytest.raises(StateError, match="input/output error"):
        prune(store, ["vip"], 30, now=NOW)
    left = store.list("")
    assert len(left) == 4 and "exports/vip/runs/old/completed" in left  # `completed` goes last
    store.allowed = 100
    assert prune(store, ["vip"], 30, now=NOW).removed_keys == 4
    assert store.list("") == []


@pytest.mark.parametrize("days", [0, -1, float("nan"), float("inf"), True])
def test_a_retention_that_is_not_a_positive_number_is_refused(files: FileStore, days: float) -> None:
    with pytest.raises(ValueError, match="retention_days must be a number > 0"):
        prune(files, ["vip"], days)


def test_on_s3_by_last_modified(store: StateStore) -> None:
    """Both backends (the ``store`` fixture); S3's times cannot be set, so the clock moves instead."""
    first, second = run_keys("first"), run_keys("second")
    write(store, first + second + MARKERS)
    now = time.time()
    assert prune(store, ["vip"], 30, now=now + 29 * DAY).removed == []
    report = prune(store, ["vip"], 30, now=now + 31 * DAY, keep_run="second")
    assert [r.run_id for r in report.removed] == ["first"] and report.kept == 1
    assert store.list("") == sorted(second + MARKERS)


def test_a_run_with_a_plan_open_on_the_current_state_is_kept(files: FileStore) -> None:
    """Its batches may have reached ActiveCampaign: the next run folds them in from its records (issue 15), so
    they outlive the retention period; a run whose plan was folded in already goes, registration and all."""
    from worker.contacts.synced import base_of
    from worker.run.plans import PlanKey, register

    write(files, MARKERS)
    base = base_of(files.get("exports/vip/synced"))
    open_run, folded = run_keys("open"), run_keys("folded")
    write(files, open_run + folded)
    live = register(files, "vip", "open", PlanKey(base, "snapshot", "shape"))
    gone = register(files, "vip", "folded", PlanKey("an-earlier-state", "snapshot", "shape"))
    age(files, open_run + folded, 45)
    report = prune(files, ["vip"], 30, now=NOW)
    assert [r.run_id for r in report.removed] == ["folded"]
    assert files.list("exports/vip/plans/") == [live.key] and gone.key != live.key
    assert set(open_run) <= set(files.list("exports/vip/runs/"))
