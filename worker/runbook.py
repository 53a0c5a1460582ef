"""Run bookkeeping: run ids and where a run's records live in the state store.

Why one module: the key layout and the run ids are a contract between the engine (which writes the
records), the worker (which derives run ids from events), the command line (which derives them from a
snapshot) and ``state prune`` (which removes old ones). Spelling them once keeps those in step.

Layout under ``exports/<export>/``::

    synced                        the committed state (see worker.synced)
    last_snapshot                 the segment's newest known snapshot, for export.requested without one
    last_refresh                  the newest refresh synced (stale detection)
    runs/<run_id>/plan/part-NNNNN the diff of one snapshot page, written once
    runs/<run_id>/batches/NNNNN.accepted|.final
    runs/<run_id>/failures.jsonl|.csv   the failure report
    runs/<run_id>/completed       the completion event (put-if-absent)
    runs/<run_id>/published       the event was confirmed by the broker
"""

from __future__ import annotations

import hashlib
import re


def run_id_for(export: str, refresh_id: str) -> str:
    """The worker's run id: stable, path-safe and readable; one export + refresh is always one run."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", refresh_id)[:48].strip("-.") or "refresh"
    digest = hashlib.blake2b(f"{export}\0{refresh_id}".encode(), digest_size=6).hexdigest()
    return f"{slug}-{digest}"


def sync_run_id(export: str, identity: str, base_run: str, full: bool) -> str:
    """The command line's run id: same export, same snapshot content, same committed base -> same run.

    A re-run after a crash resumes instead of starting over; after a commit the base changes, so the
    next sync is a new run.
    """
    digest = hashlib.blake2b(f"{export}\0{identity}\0{base_run}\0{int(full)}".encode(), digest_size=10)
    return f"sync-{digest.hexdigest()}"


def export_prefix(export: str) -> str:
    return f"exports/{export}/"


def runs_prefix(export: str) -> str:
    return f"exports/{export}/runs/"


class RunKeys:
    """Where one run's records live in the state store."""

    def __init__(self, export: str, run_id: str) -> None:
        self.export = export_prefix(export)
        self.run = f"{self.export}runs/{run_id}/"
        self.synced = f"{self.export}synced"
        self.completed = f"{self.run}completed"
        self.plan = f"{self.run}plan/"
        self.batches = f"{self.run}batches/"
        self.published = f"{self.run}published"
        self.last_refresh = f"{self.export}last_refresh"
        self.last_snapshot = f"{self.export}last_snapshot"
        self.failures_jsonl = f"{self.run}failures.jsonl"
        self.failures_csv = f"{self.run}failures.csv"

    def part(self, n: int) -> str:
        return f"{self.plan}part-{n:05d}"

    def accepted(self, n: int) -> str:
        return f"{self.batches}{n:05d}.accepted"

    def final(self, n: int) -> str:
        return f"{self.batches}{n:05d}.final"
