"""Issue 15's follow-ups (a hostile review of the run protocol), each reproduced against the simulator.

1. A run that crashed after its manifest swap, resumed after more commits than the manifest remembers
   (``RECENT``): it knows its commit from its ``committed`` record, ends with its counts and sends nothing.
2. ``segment-export sync`` that died after its commit: the same command finds that run (its commit is the
   state's, it has no completion record) and finishes it, instead of starting a new run over its records.
3. A store error after the manifest swap never ends in ``export.failed``: the delivery ends ``committed`` and
   the next one records the completion (the walker's "store fails" cases walk every such write).
5. The plan format is part of the plan id: a worker of another version (another ``PLAN_FORMAT``) finds a plan
   interrupted mid-run, folds it in and plans afresh; it never resumes it.
4. Two refreshes with the same ``occurred_at``: whichever committed, the other is ordered after or before it
   by refresh id, the same way on every replica (a late duplicate of equal time is stale, or it is not,
   whatever the order they arrive in).

The public engine, real stores and the simulator over HTTP (the helpers of ``test_reviewer_sequences``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.run.walker.test_reviewer_sequences import (
    Crash,
    base_and_refreshes,
    config,
    expected,
    fingerprints_of,
    first_names,
    interrupted_after_two_batches,
    run,
    sim,
    snapshot,
    spec,
    synced_fingerprints,
)
from worker.events.instants import refresh_after
from worker.run import engine as engine_module
from worker.run import plans
from worker.run.direct import direct_spec
from worker.run.plans import PlanHead, PlanKey
from worker.state import FileStore, StateError
from worker.syncstate.manifest import RECENT

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


# ------------------------------------------------------------------------------------------ 5


def test_the_plan_format_is_part_of_the_plan_id(monkeypatch: pytest.MonkeyPatch) -> None:
    key = PlanKey("base", "snapshot", "shape")
    before = key.id
    monkeypatch.setattr(plans, "PLAN_FORMAT", plans.PLAN_FORMAT + 1)
    assert key.id != before


def test_a_worker_of_another_plan_format_folds_the_interrupted_plan_in(tmp_path: Path, sim,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """r1 is interrupted after two accepted batches by a worker of one plan format; a worker of the next one
    takes the delivery over. It must not resume the plan (it would read its records its own way): it folds
    the plan in (its accepted batches polled to the end) and plans afresh, and the list is exact."""
    url, simc = sim
    cfg = config(url, (tmp_path / "state").as_uri())
    store = FileStore(tmp_path / "state")
    _, r1 = base_and_refreshes(tmp_path, cfg, store)
    s1 = spec(cfg, r1, "r1", "2026-12-01T11:00:00Z")
    interrupted_after_two_batches(cfg, store, s1)
    [old] = [PlanHead.decode(store.get(k) or b"") for k in store.list("exports/vip/plans/")]

    folded: list[list[str]] = []
    real_settle = engine_module.settle

    async def watched(store_: object, export: str, list_id: int, heads: list[PlanHead], *args: object) -> bool:
        folded.append([h.plan for h in heads])
        return await real_settle(store_, export, list_id, heads, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "settle", watched)
    monkeypatch.setattr(plans, "PLAN_FORMAT", plans.PLAN_FORMAT + 1)  # the upgraded worker
    resumed = run(cfg, store, s1)
    assert resumed.exit_code == 0, resumed.event and resumed.event.get("error")
    assert folded == [[old.plan]], f"the plan of the other format was not folded in: {folded}"
    assert first_names(simc) == expected(range(2000), "v1")
    assert synced_fingerprints(store) == fingerprints_of(cfg, range(2000), "v1")


# ------------------------------------------------------------------------------------------ 1 and 3


class FailsAtCompletion(FileStore):
    """A folder store that fails (``StateError``) or dies (``Crash``) at the run's completion record, once."""

    def __init__(self, root: Path, how: type[BaseException]) -> None:
        super().__init__(root)
        self.how: type[BaseException] | None = how

    def put_if_absent(self, key: str, data: bytes) -> bool:
        if key.endswith("/completed") and self.how is not None:
            how, self.how = self.how, None
            raise how(f"cannot write {key}: the store failed")
        return super().put_if_absent(key, data)


def bulk_posts(simc) -> int:  # type: ignore[no-untyped-def]
    return sum(r["method"] == "POST" and r["path"].endswith("/import/bulk_import") for r in simc.requests())


def test_a_store_error_after_the_commit_never_fails_the_run(tmp_path: Path, sim) -> None:
    """r1 commits; the completion record's write fails (S3 down for that request) on the run's last attempt.
    Before, the run ended ``export.failed`` (transient, so the worker's last attempt published it) though the
    list and the state were committed. Now the delivery ends ``committed`` (no event: the worker retries it)
    and the next delivery records and reports the commit's counts, sending nothing."""
    url, simc = sim
    cfg = config(url, (tmp_path / "state").as_uri())
    store = FileStore(tmp_path / "state")
    base = snapshot(tmp_path, "base", range(40), "v0")
    assert run(cfg, store, spec(cfg, base, "r-base", "2026-12-01T08:00:00Z")).exit_code == 0
    s1 = spec(cfg, snapshot(tmp_path, "r1", range(5, 45), "v1"), "r1", "2026-12-01T11:00:00Z")
    first = run(cfg, FailsAtCompletion(tmp_path / "state", StateError), s1)
    assert first.event is None and first.committed and first.interrupted, first.outcome
    posts = bulk_posts(simc)
    again = run(cfg, store, s1)
    assert again.event is not None and again.event["status"] == "succeeded", again.outcome
    assert again.event["counts"]["added"] == 5 and again.event["counts"]["updated"] == 35
    assert bulk_posts(simc) == posts, "the run's batches were sent again"
    assert first_names(simc) == expected(range(5, 45), "v1")


def test_a_run_that_crashed_after_its_commit_knows_it_after_the_manifest_forgot_it(tmp_path: Path, sim) -> None:
    """r1 dies right before its completion record; then more refreshes commit than the manifest remembers
    (``RECENT``). r1's next delivery must still end with r1's counts and send nothing. Before, the manifest
    no longer named r1's commit: the run was taken for a stale refresh and its commit never had a completion
    event."""
    url, simc = sim
    cfg = config(url, (tmp_path / "state").as_uri())
    store = FileStore(tmp_path / "state")
    base = snapshot(tmp_path, "base", range(40), "v0")
    assert run(cfg, store, spec(cfg, base, "r-base", "2026-12-01T08:00:00Z")).exit_code == 0
    s1 = spec(cfg, snapshot(tmp_path, "r1", range(5, 45), "v1"), "r1", "2026-12-01T11:00:00Z")
    with pytest.raises(Crash):
        run(cfg, FailsAtCompletion(tmp_path / "state", Crash), s1)
    newer = snapshot(tmp_path, "newer", range(5, 45), "v1")
    for n in range(RECENT + 1):
        assert run(cfg, store, spec(cfg, newer, f"r2-{n}", f"2026-12-01T12:{n:02d}:00Z")).exit_code == 0
    posts = bulk_posts(simc)
    resumed = run(cfg, store, s1)
    assert not resumed.stale, "the committed run was taken for a stale refresh: its commit has no event"
    assert resumed.event is not None and resumed.event["status"] == "succeeded", resumed.outcome
    assert resumed.event["counts"]["added"] == 5 and resumed.event["counts"]["updated"] == 35
    assert bulk_posts(simc) == posts
    assert first_names(simc) == expected(range(5, 45), "v1")


# ------------------------------------------------------------------------------------------ 2


def test_the_same_sync_finishes_a_sync_that_died_after_its_commit(tmp_path: Path, sim) -> None:
    """``sync`` of r1 dies right before its completion record. Its commit changed the base its run id is
    derived from, so before, running the same command again started a new run: the crashed run's completion
    was never recorded and its plan records were left behind. Now the same command is the same run: it ends
    with r1's counts, sends nothing and removes its plan records; the command after that is a new run."""
    url, simc = sim
    cfg = config(url, (tmp_path / "state").as_uri())
    store = FileStore(tmp_path / "state")
    export = cfg.exports["vip"]
    assert run(cfg, store, direct_spec(store, export, snapshot(tmp_path, "base", range(40), "v0"))).exit_code == 0
    r1 = snapshot(tmp_path, "r1", range(5, 45), "v1")
    crashed = direct_spec(store, export, r1)
    with pytest.raises(Crash):
        run(cfg, FailsAtCompletion(tmp_path / "state", Crash), crashed)

    again = direct_spec(store, export, r1)
    assert again.run_id == crashed.run_id, "the same command started a new run over the crashed run's records"
    posts = bulk_posts(simc)
    done = run(cfg, store, again)
    assert done.event is not None and done.event["status"] == "succeeded" and not done.replayed, done.outcome
    assert done.event["counts"]["added"] == 5 and done.event["counts"]["updated"] == 35
    assert bulk_posts(simc) == posts
    assert store.list(f"exports/vip/runs/{crashed.run_id}/plans/") == []
    assert store.get(f"exports/vip/runs/{crashed.run_id}/completed") is not None

    after = direct_spec(store, export, r1)  # completed: the next sync is a new run, with nothing to send
    assert after.run_id != crashed.run_id
    assert run(cfg, store, after).event["counts"]["unchanged"] == 40  # type: ignore[index]
    assert bulk_posts(simc) == posts and first_names(simc) == expected(range(5, 45), "v1")
