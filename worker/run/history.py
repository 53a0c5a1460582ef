"""Run history for ops: what the state store says about recent runs (``segment-export runs``).

Why from the store: every run leaves its records there already (``worker.run.runbook``): the completion
event of a finished run (``completed``), the failure event of a failed attempt (``failed``, written here
by the engine), and the plan and batch records of a run that has not ended. Reading them needs no
broker, no metrics backend and no log search, and works for every replica's runs alike.

A run's status: its completion event's (``succeeded``, ``partial``), ``failed`` when its last attempt
failed and none completed it, and ``unfinished`` when it has records but no end (in progress,
interrupted, waiting for a retry, or abandoned for a newer refresh).
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from worker.events.instants import try_instant
from worker.run.runbook import RunKeys, runs_prefix
from worker.state import StateStore

log = logging.getLogger("segment_export.history")

FAILED = "failed"  # the record of a failed attempt, beside ``completed`` in the run's folder
TOP_REASONS = 10
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800, "": 86_400}


def record_failure(store: StateStore, keys: RunKeys, event: dict[str, Any] | Any) -> None:
    """Keep a failed attempt's ``export.failed`` event with the run's records (the latest attempt wins).

    Best effort: the store may be what failed; the run's outcome does not depend on this record.
    """
    try:
        store.put(f"{keys.run}{FAILED}", orjson.dumps(event))
    except Exception as exc:
        log.warning("run %s: failure record not written: %s", event.get("run_id"), exc)


def parse_since(text: str) -> float:
    """``7d``, ``12h``, ``30m``, ``90s``, ``2w`` or a number of days -> seconds."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"--since {text!r}: expected a duration like 7d, 12h, 30m or 2w")
    return float(found.group(1)) * _UNIT[found.group(2)]


@dataclass
class RunRecord:
    """One run as ``runs`` shows it."""

    export: str
    run_id: str
    status: str
    updated_at: float  # unix time of its newest record
    event: dict[str, Any] | None = None  # its completion (or last failure) event

    @property
    def when(self) -> float:
        """When it ended (or last did something): the order of the listing."""
        finished = try_instant((self.event or {}).get("finished_at"))
        return finished.timestamp() if finished is not None else self.updated_at

    def as_dict(self) -> dict[str, Any]:
        """The ``runs --json`` form (schemas/runs.json)."""
        event = self.event or {}
        out: dict[str, Any] = {"run_id": self.run_id, "export": self.export, "status": self.status,
                               "updated_at": _iso(self.updated_at)}
        for key in ("refresh_id", "counts", "started_at", "finished_at", "duration_seconds", "attempt", "error",
                    "failures_uri", "drift", "tags"):
            if key in event:
                out[key] = event[key]
        if self.status != "unfinished":
            out.setdefault("attempt", 1)
        return out


def list_runs(store: StateStore, exports: list[str], *, since_seconds: float | None = None,
              now: float | None = None) -> list[RunRecord]:
    """The exports' runs, newest first; with ``since_seconds`` only those that ended (or moved) since then."""
    now = time.time() if now is None else now
    found: list[RunRecord] = []
    for export in exports:
        prefix = runs_prefix(export)
        folders: dict[str, dict[str, float]] = {}
        for key, mtime in store.list_modified(prefix):
            run_id, sep, rest = key[len(prefix):].partition("/")
            if sep:
                folders.setdefault(run_id, {})[rest] = mtime
        for run_id, records in folders.items():
            record = _record(store, export, run_id, records)
            if record is not None and (since_seconds is None or record.when >= now - since_seconds):
                found.append(record)
    found.sort(key=lambda r: r.when, reverse=True)
    return found


def find_run(store: StateStore, exports: list[str], run_id: str) -> RunRecord | None:
    """One run by its id, in whichever of the exports holds it."""
    for export in exports:
        prefix = f"{runs_prefix(export)}{run_id}/"
        records = {key[len(prefix):]: mtime for key, mtime in store.list_modified(prefix)}
        if records:
            return _record(store, export, run_id, records)
    return None


def failure_reasons(store: StateStore, record: RunRecord, top: int = TOP_REASONS) -> tuple[int, list[dict[str, Any]]]:
    """(failure records, the ``top`` most frequent (stage, reason) with their counts) of a run's report."""
    data = store.get(f"{RunKeys(record.export, record.run_id).failures_jsonl}")
    if not data:
        return 0, []
    reasons: Counter[tuple[str, str]] = Counter()
    total = 0
    for line in data.splitlines():
        if not line.strip():
            continue
        rec = orjson.loads(line)
        reasons[(str(rec.get("stage", "")), str(rec.get("reason", "")))] += 1
        total += 1
    return total, [{"stage": stage, "reason": reason, "count": count}
                   for (stage, reason), count in reasons.most_common(top)]


def _record(store: StateStore, export: str, run_id: str, records: dict[str, float]) -> RunRecord | None:
    updated = max(records.values())
    for name in ("completed", FAILED):
        if name in records:
            data = store.get(f"{runs_prefix(export)}{run_id}/{name}")
            if data is not None:
                event = orjson.loads(data)
                return RunRecord(export, run_id, str(event.get("status", name)), updated, event)
    return RunRecord(export, run_id, "unfinished", updated)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
