"""Retention: remove run records and failure reports older than ``[worker] retention_days``.

Why: a run's records (plan parts, batch records, the failure report) hold contact data; nothing of
it may outlive the retention period. The engine prunes an export after each commit, and
``segment-export state prune`` does it on demand (or from cron).

What is removed: everything under ``exports/<export>/runs/<run_id>/`` of a run whose *newest* record is
older than the cutoff, and the run's plan registrations (``exports/<export>/plans/<run_id>.*``); likewise
verify reports (``exports/<export>/verify/<id>/``: they list emails). A run
still in progress writes records as it goes, so it always has a recent one and is kept whole; so is
``keep_run`` (the run just committed), and so is a run with a plan still open on the current synced state
(it may have sent batches: the next run of the export folds them in from these records,
``worker.run.settle``). Nothing else is ever touched: the export's ``synced``, ``last_snapshot``,
``last_refresh`` and ``lease`` stay.

Within a run, ``completed`` is removed last: if pruning stops half-way, the run still reads as done
(a late redelivery re-publishes at most) rather than as a half-planned run to resume; the next prune
finishes it, since what is left keeps its old times.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from worker.contacts.synced import base_of
from worker.run.plans import PlanHead
from worker.run.runbook import RunKeys, export_prefix, plans_prefix, runs_prefix
from worker.state import StateStore

DAY = 86_400.0


@dataclass(frozen=True)
class PrunedRun:
    """A run whose records were (or, in a dry run, would be) removed."""

    export: str
    run_id: str
    keys: int
    last_modified: float  # unix time of its newest record


@dataclass
class PruneReport:
    retention_days: float
    cutoff: float  # unix time: runs whose newest record is older than this are removed
    dry_run: bool
    exports: list[str]
    removed: list[PrunedRun] = field(default_factory=list)
    kept: int = 0  # runs younger than the cutoff, or the run to keep

    @property
    def removed_keys(self) -> int:
        return sum(r.keys for r in self.removed)

    def as_dict(self) -> dict[str, Any]:
        """The summary ``state prune`` prints (JSON-ready)."""
        return {
            "dry_run": self.dry_run,
            "retention_days": self.retention_days,
            "cutoff": _iso(self.cutoff),
            "exports": self.exports,
            "removed_runs": len(self.removed),
            "removed_keys": self.removed_keys,
            "kept_runs": self.kept,
            "runs": [{"export": r.export, "run_id": r.run_id, "keys": r.keys, "last_modified": _iso(r.last_modified)}
                     for r in self.removed],
        }


def prune(store: StateStore, exports: list[str], retention_days: float, *, now: float | None = None,
          dry_run: bool = False, keep_run: str | None = None) -> PruneReport:
    """Remove (or with ``dry_run`` only report) the runs of ``exports`` older than ``retention_days``.

    Blocking (call it in a thread from async code); a storage failure raises StateError, and what was
    removed before it stays removed (pruning again finishes the job).
    """
    if isinstance(retention_days, bool) or not (isinstance(retention_days, int | float)
                                                and math.isfinite(retention_days) and retention_days > 0):
        raise ValueError(f"retention_days must be a number > 0, got {retention_days!r}")
    now = time.time() if now is None else now
    report = PruneReport(retention_days, now - retention_days * DAY, dry_run, list(exports))
    for export in exports:
        registered, live = _plans(store, export)
        folders = {**_runs(store, runs_prefix(export)), **_runs(store, f"{export_prefix(export)}verify/")}
        for run_id, records in folders.items():
            newest = max(mtime for _, mtime in records)
            if run_id == keep_run or newest >= report.cutoff or run_id in live:
                report.kept += 1
                continue
            if not dry_run:
                for key in sorted((k for k, _ in records), key=lambda k: (k.endswith(("/completed", "/committed")), k)):
                    store.delete(key)
                for key in registered.get(run_id, ()):
                    store.delete(key)
            report.removed.append(PrunedRun(export, run_id, len(records), newest))
    return report


def _plans(store: StateStore, export: str) -> tuple[dict[str, list[str]], set[str]]:
    """The export's plan registrations by run id, and the runs with a plan open on the current state."""
    base = base_of(store.get(RunKeys(export, "-").synced))
    registered: dict[str, list[str]] = {}
    live: set[str] = set()
    for key in store.list(plans_prefix(export)):
        data = store.get(key)
        if data is None:
            continue
        head = PlanHead.decode(data)
        registered.setdefault(head.run_id, []).append(key)
        if head.base == base:
            live.add(head.run_id)
    return registered, live


def _runs(store: StateStore, prefix: str) -> dict[str, list[tuple[str, float]]]:
    """The records under ``prefix`` by folder (run id; keys straight under it, in no folder, are left alone)."""
    runs: dict[str, list[tuple[str, float]]] = {}
    for key, mtime in store.list_modified(prefix):
        run_id, sep, _ = key[len(prefix):].partition("/")
        if sep:
            runs.setdefault(run_id, []).append((key, mtime))
    return runs


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
