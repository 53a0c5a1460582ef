"""Lifecycle hooks: the core announces what happens; metrics and logs listen.

Why (dramatiq's middleware): the engine and the worker loop stay about their job, and everything
that observes them (Prometheus, progress lines) hangs off these calls. A subscriber overrides only
the hooks it needs; ``HookBus`` calls every subscriber in order and logs and ignores a subscriber
that raises, so a metrics bug never stops a run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from worker.run.types import Progress, RunResult, RunSpec

log = logging.getLogger("segment_export.hooks")


class Hooks:
    """Every hook, doing nothing. Subclass and override what you observe."""

    # runs (engine)
    def run_started(self, spec: RunSpec) -> None: ...
    def run_progress(self, progress: Progress) -> None: ...
    def run_finished(self, spec: RunSpec, result: RunResult, seconds: float) -> None: ...
    def request_answered(self, endpoint: str, status: int, seconds: float) -> None: ...
    def guard_tripped(self, export: str) -> None: ...
    def readmission(self, export: str, result: str) -> None: ...
    def limiter_degraded(self, connection: str, degraded: bool) -> None: ...
    def lease_lost(self, export: str) -> None: ...
    def list_drift(self, export: str, contacts: int, expected: int) -> None: ...
    def tags_removed(self, export: str, count: int) -> None: ...

    # deliveries (worker)
    def delivery_settled(self, event_type: str, outcome: str) -> None: ...
    def delivery_dead_lettered(self, event_type: str, reason_class: str) -> None: ...
    def notification_ignored(self, reason: str) -> None: ...
    def settle_failed(self, action: str) -> None: ...
    def visibility_not_extended(self, lapsed: bool) -> None: ...
    def deliveries_stuck(self, count: int) -> None: ...
    def run_continued(self, export: str) -> None: ...
    def run_retried(self, export: str) -> None: ...
    def lease_busy(self, export: str) -> None: ...
    def event_published(self, event: Mapping[str, Any], first_time: bool) -> None: ...


class HookBus(Hooks):
    """Calls each subscriber's hook in turn; a subscriber that raises is logged and skipped."""

    def __init__(self, *subscribers: Hooks) -> None:
        self.subscribers = [s for s in subscribers if s is not None]

    def add(self, subscriber: Hooks) -> None:
        self.subscribers.append(subscriber)

    def _emit(self, name: str, *args: Any) -> None:
        for sub in self.subscribers:
            try:
                getattr(sub, name)(*args)
            except Exception:
                log.exception("hook %s of %s failed (ignored)", name, type(sub).__name__)


def _relay(name: str) -> Any:
    def hook(self: HookBus, *args: Any) -> None:
        self._emit(name, *args)

    hook.__name__ = name
    return hook


for _name in [n for n in vars(Hooks) if not n.startswith("_")]:
    setattr(HookBus, _name, _relay(_name))
