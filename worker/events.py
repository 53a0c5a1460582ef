"""Event envelopes: the JSON that goes on the wire between upstream, the workers and downstream.

Completion events carry counts and URIs only: never API keys, hostnames or profile data (emails go to
the failure report in the state store, which the event points to).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

COUNT_KEYS = ("profiles", "invalid", "duplicates", "added", "updated", "unchanged", "removed", "failed", "skipped")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def completion_event(*, run_id: str, export: str, segment: str, refresh_id: str, connection: str, list_id: int,
                     status: str, counts: dict[str, int], started_at: str, finished_at: str,
                     duration_seconds: float, failures_uri: str | None = None,
                     error: dict[str, str] | None = None) -> dict[str, Any]:
    """An ``export.completed`` (succeeded/partial) or ``export.failed`` event, version 1."""
    event: dict[str, Any] = {
        "type": "export.failed" if status == "failed" else "export.completed",
        "version": 1,
        "id": new_id(),
        "run_id": run_id,
        "export": export,
        "segment": {"id": segment},
        "refresh_id": refresh_id,
        "connection": connection,
        "list_id": list_id,
        "status": status,
        "counts": {k: int(counts.get(k, 0)) for k in COUNT_KEYS},
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_seconds": round(duration_seconds, 3),
    }
    if failures_uri:
        event["failures_uri"] = failures_uri
    if error:
        event["error"] = error
    return event
