"""What a run is and how it ends: its spec, its result, its progress and its error codes.

Why a module of its own: the engine, the checks before a run, the dry run, the worker and the command
line all speak these types; keeping them apart from the engine keeps those modules from importing each
other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from worker.activecampaign.errors import ActiveCampaignError
from worker.events.envelopes import CompletionEvent
from worker.settings import ConfigError, Export
from worker.snapshot import SnapshotError, SnapshotRules
from worker.state import StateError

EXIT_OK, EXIT_FAILED, EXIT_PARTIAL = 0, 1, 3


class RunError(Exception):
    """A run-level failure with a stable code for the ``export.failed`` event."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class RunSpec:
    """What to run: one export applied to one snapshot."""

    export: Export
    snapshot_uri: str
    refresh_id: str
    run_id: str
    full: bool = False
    snapshot_format: str | None = None
    snapshot_compression: str | None = None
    occurred_at: str | None = None  # when upstream refreshed the segment: orders refreshes for staleness
    allow_mass_removal: bool = False  # this run only: the removal guard does not stop it
    attempt: int = 1  # which attempt of a run retried after transient failures (events and logs carry it)
    snapshot_prefixes: tuple[str, ...] | None = None  # [worker] snapshot_prefixes: where listed files may be
    #: The service admitted ``snapshot_uri`` (canonical, checked against ``snapshot_prefixes``): the run
    #: reads exactly that place and fails if a link on its path now leads elsewhere (no check-then-read gap).
    snapshot_admitted: bool = False

    def snapshot_rules(self) -> SnapshotRules:
        """What the export and the worker ask of the snapshot beyond its URI (``worker.snapshot.layouts``)."""
        return SnapshotRules(require_marker=self.export.require_marker, entity=self.export.snapshot_entity,
                             prefixes=self.snapshot_prefixes, exact=self.snapshot_admitted)


@dataclass
class Progress:
    """Live counters for a TTY progress line, a log milestone or a gauge."""

    export: str = ""
    run_id: str = ""
    profiles_read: int = 0
    batches_planned: int = 0
    batches_sent: int = 0
    batches_confirmed: int = 0
    contacts_sent: int = 0
    in_flight: int = 0  # accepted by AC, not yet final (resumed ones included)
    started: float = field(default_factory=time.monotonic)
    logged: float = 0.0  # when the last milestone was logged


@dataclass
class RunResult:
    """How a run ended. ``event`` is None when there is nothing to publish (interrupted, stale)."""

    event: CompletionEvent | None
    exit_code: int
    replayed: bool = False  # the run had completed before; this is its recorded event
    interrupted: bool = False  # stopped at a checkpoint on request; run it again (same run id) to go on
    stale: bool = False  # a newer refresh of the segment has already been synced for this export
    transient: bool = False  # failed for a reason a later attempt may not meet (the event is export.failed)
    busy: bool = False  # another run of the export holds its lease: nothing was done, run it again later
    lease_lost: bool = False  # interrupted because the lease was lost (another replica may have taken over)
    committed: bool = False  # interrupted after its commit: only its completion record is missing (run it again)

    @property
    def outcome(self) -> str:
        if self.busy:
            return "lease_busy"
        if self.interrupted:
            return "interrupted"
        if self.stale:
            return "stale"
        if self.replayed:
            return "duplicate"
        return self.event["status"] if self.event else "unknown"


class RunInterrupted(Exception):
    """Raised inside a run when its stop event was set; the run's records let it resume."""


class RunStale(Exception):
    """Raised inside a run whose refresh is older than one already committed for its export."""


def error_code(exc: BaseException) -> str:
    """A stable, low-cardinality code for ``export.failed``'s ``error.code``."""
    if isinstance(exc, ActiveCampaignError):
        return f"activecampaign_{exc.code}"
    if isinstance(exc, RunError):
        return exc.code
    if isinstance(exc, SnapshotError):
        return exc.code
    if isinstance(exc, StateError):
        return "state_store"
    if isinstance(exc, ConfigError):
        return "config"
    return "internal"


def is_transient(exc: BaseException) -> bool:
    """Worth retrying later: AC or storage unreachable, overloaded or slow; never a refusal or bad input."""
    if isinstance(exc, ActiveCampaignError | RunError | SnapshotError):
        return exc.transient
    return isinstance(exc, StateError | OSError)


def exit_code_for(status: str) -> int:
    return {"succeeded": EXIT_OK, "partial": EXIT_PARTIAL}.get(status, EXIT_FAILED)
