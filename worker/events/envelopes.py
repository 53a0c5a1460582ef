"""Event envelopes: the JSON that goes on the wire between upstream, the workers and downstream.

Why typed (TypedDict) and built here: every producer (the command line, the worker's continuations, the
engine's completion events) builds its event with one of these functions, so a field is spelled once
and mypy checks the readers. The JSON Schemas in ``schemas/`` remain the contract on the wire
(``worker.events.schemas`` validates against them); these types mirror them and a test keeps the two in
step.

Completion events carry counts and URIs only: never API keys, hostnames or profile data (emails go to
the failure report in the state store, which the event points to).
"""

# No ``from __future__ import annotations`` here: TypedDict must see NotRequired[...] as an object, not a
# string, to know which keys are optional (``__required_keys__``) on Python 3.11.
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Literal, NotRequired, TypedDict

COUNT_KEYS = ("profiles", "invalid", "duplicates", "added", "updated", "unchanged", "removed", "failed", "skipped")

class SnapshotRef(TypedDict):
    """Where a segment's members were written (``snapshot`` in segment.refreshed / export.requested)."""

    uri: str
    format: NotRequired[Literal["jsonl", "csv", "parquet"]]  # absent: the readers decide by the parts' names
    compression: NotRequired[Literal["none", "gzip"]]
    profile_count: NotRequired[int]


class SegmentRef(TypedDict):
    id: str
    name: NotRequired[str]


class SegmentRefreshed(TypedDict):
    """``segment.refreshed`` v1: a refresh wrote the segment's members to ``snapshot``."""

    type: Literal["segment.refreshed"]
    version: Literal[1]
    id: str
    occurred_at: str
    segment: SegmentRef
    refresh_id: str
    snapshot: SnapshotRef


class ExportRequested(TypedDict):
    """``export.requested`` v1: run one export now (on demand, or a worker's continuation of a run)."""

    type: Literal["export.requested"]
    version: Literal[1]
    id: str
    occurred_at: str
    export: str
    full: NotRequired[bool]
    snapshot: NotRequired[SnapshotRef]
    dry_run: NotRequired[bool]
    allow_mass_removal: NotRequired[bool]  # this run only; never on segment.refreshed
    attempt: NotRequired[int]  # >= 1: which attempt of a run retried after a transient failure
    run_id: NotRequired[str]  # continuations
    refresh_id: NotRequired[str]
    refreshed_at: NotRequired[str]
    segment: NotRequired[SegmentRef]
    continuation: NotRequired[int]
    request_id: NotRequired[str]  # a continuation of a requested run: the id of the request that started it


class Counts(TypedDict):
    profiles: int
    invalid: int
    duplicates: int
    added: int
    updated: int
    unchanged: int
    removed: int
    failed: int
    skipped: int


class ErrorInfo(TypedDict):
    code: str
    message: str


class DriftInfo(TypedDict):
    """The drift check's finding (``drift`` in export.completed): ActiveCampaign's subscribed count against
    the synced state's; ``missing`` + ``unexpected`` is the drift (``unexpected`` only on an owned list)."""

    list_subscribed: int
    synced_subscribed: int
    missing: int
    unexpected: int
    owns_list: bool


class TagsInfo(TypedDict):
    """Managed tags (``tags`` in export.completed): contacts that lost tags this export added, and links removed."""

    contacts: int
    removed: int


class CompletionEvent(TypedDict):
    """``export.completed`` (status succeeded/partial) or ``export.failed`` (status failed, with ``error``)."""

    type: Literal["export.completed", "export.failed"]
    version: Literal[1]
    id: str
    run_id: str
    export: str
    segment: SegmentRef
    refresh_id: str
    connection: str
    list_id: int
    status: str
    counts: Counts
    started_at: str
    finished_at: str
    duration_seconds: float
    failures_uri: NotRequired[str]
    error: NotRequired[ErrorInfo]
    attempt: NotRequired[int]
    drift: NotRequired[DriftInfo]
    tags: NotRequired[TagsInfo]
    leavers_deleted: NotRequired[int]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def snapshot_ref(uri: str, fmt: str | None = None, compression: str | None = None) -> SnapshotRef:
    """A snapshot reference; format and compression follow the file name unless given (folders: jsonl)."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    fmt = fmt or ("parquet" if name.endswith(".parquet") else "csv" if ".csv" in name else "jsonl")
    if fmt not in ("jsonl", "csv", "parquet") or compression not in (None, "none", "gzip"):
        raise ValueError(f"snapshot format must be jsonl, csv or parquet and compression none or gzip, "
                         f"got {fmt!r} and {compression!r}")
    ref: SnapshotRef = {"uri": uri, "format": "parquet" if fmt == "parquet" else "csv" if fmt == "csv" else "jsonl"}
    if compression == "none":
        ref["compression"] = "none"
    elif compression == "gzip" or name.endswith(".gz"):
        ref["compression"] = "gzip"
    return ref


def refreshed_event(segment: str, snapshot: SnapshotRef, refresh_id: str | None = None) -> SegmentRefreshed:
    """A ``segment.refreshed`` event as ``segment-export publish`` sends it (a new refresh id unless given)."""
    return {"type": "segment.refreshed", "version": 1, "id": new_id(), "occurred_at": now_iso(),
            "segment": {"id": segment}, "refresh_id": refresh_id or f"refresh-{new_id()}", "snapshot": snapshot}


def requested_event(export: str, *, full: bool = False, snapshot: SnapshotRef | None = None,
                    allow_mass_removal: bool = False) -> ExportRequested:
    """An on-demand ``export.requested`` event; ``allow_mass_removal`` appears only when set (an override)."""
    event: ExportRequested = {"type": "export.requested", "version": 1, "id": new_id(), "occurred_at": now_iso(),
                              "export": export, "full": full}
    if snapshot is not None:
        event["snapshot"] = snapshot
    if allow_mass_removal:
        event["allow_mass_removal"] = True
    return event


def completion_event(*, run_id: str, export: str, segment: str, refresh_id: str, connection: str, list_id: int,
                     status: str, counts: Mapping[str, int], started_at: str, finished_at: str,
                     duration_seconds: float, failures_uri: str | None = None,
                     error: Mapping[str, str] | None = None, attempt: int | None = None,
                     drift: Mapping[str, int | bool] | None = None,
                     tags: Mapping[str, int] | None = None, leavers_deleted: int | None = None) -> CompletionEvent:
    """An ``export.completed`` (succeeded/partial) or ``export.failed`` event, version 1.

    ``attempt`` (>= 1) is set by a worker that retried the run after transient failures; it is left out
    when None, so a first attempt's event looks exactly as before. ``drift`` (the drift check) and
    ``tags`` (managed tags) are optional too, present when the run measured or did them; so is
    ``leavers_deleted``: leavers ActiveCampaign no longer had, left out of the removal and forgotten.
    """
    event: CompletionEvent = {
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
        "counts": {
            "profiles": int(counts.get("profiles", 0)), "invalid": int(counts.get("invalid", 0)),
            "duplicates": int(counts.get("duplicates", 0)), "added": int(counts.get("added", 0)),
            "updated": int(counts.get("updated", 0)), "unchanged": int(counts.get("unchanged", 0)),
            "removed": int(counts.get("removed", 0)), "failed": int(counts.get("failed", 0)),
            "skipped": int(counts.get("skipped", 0)),
        },
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_seconds": round(duration_seconds, 3),
    }
    if failures_uri:
        event["failures_uri"] = failures_uri
    if error:
        event["error"] = {"code": error["code"], "message": error["message"]}
    if attempt is not None:
        if attempt < 1:
            raise ValueError(f"attempt must be >= 1, got {attempt}")
        event["attempt"] = attempt
    if drift is not None:
        event["drift"] = {"list_subscribed": int(drift["list_subscribed"]),
                          "synced_subscribed": int(drift["synced_subscribed"]), "missing": int(drift["missing"]),
                          "unexpected": int(drift["unexpected"]), "owns_list": bool(drift["owns_list"])}
    if tags is not None:
        event["tags"] = {"contacts": int(tags["contacts"]), "removed": int(tags["removed"])}
    if leavers_deleted is not None:
        event["leavers_deleted"] = int(leavers_deleted)
    return event
