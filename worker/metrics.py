"""Prometheus metrics (prefix ``segment_export_``, base units, ``_total`` counters).

Labels have bounded cardinality: event type, outcome, export name, endpoint, status code, reason
class. Never an email, an event id or a key.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily

from worker import __version__

EVENTS = Counter("segment_export_events_consumed_total", "Messages consumed from the requests queue",
                 ["type", "outcome"])
DEAD_LETTERED = Counter("segment_export_dead_lettered_total", "Messages sent to the dead-letter queue",
                        ["reason"])
RUNS = Counter("segment_export_runs_total", "Export runs that ended, by status", ["export", "status"])
RUNS_IN_PROGRESS = Gauge("segment_export_runs_in_progress", "Export runs executing now")
RUN_DURATION = Histogram("segment_export_run_duration_seconds", "Wall time of a run, start to commit",
                         ["export"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200))
CONTINUATIONS = Counter("segment_export_continuations_total",
                        "Runs handed on through a continuation message (unacked bound, shutdown)", ["export"])

# ---------------------------------------------------------------------------------- ActiveCampaign
AC_REQUESTS = Counter("segment_export_ac_requests_total",
                      "ActiveCampaign API requests by endpoint and status code (0 = network error)",
                      ["endpoint", "status"])
AC_LATENCY = Histogram("segment_export_ac_request_duration_seconds", "ActiveCampaign API request latency",
                       ["endpoint"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
AC_RATE_LIMITED = Counter("segment_export_ac_rate_limited_total", "HTTP 429 answers received from ActiveCampaign",
                          ["endpoint"])
PROFILES = Counter("segment_export_profiles_total", "Profiles handled by finished runs, by outcome",
                   ["export", "outcome"])
LAST_SUCCESS = Gauge("segment_export_last_success_timestamp_seconds",
                     "Unix time of the export's last succeeded (or partial) run", ["export"])
RUN_STARTED = Gauge("segment_export_run_started_timestamp_seconds",
                    "Unix time the export's run executing now started (absent when none runs)", ["export"])
INFO = Info("segment_export_worker", "Worker build and broker kind")

PROFILE_OUTCOMES = ("added", "updated", "unchanged", "removed", "invalid", "failed", "skipped")


def observe_request(endpoint: str, status: int, seconds: float) -> None:
    """The engine's ``on_request`` hook: one call per HTTP exchange with ActiveCampaign."""
    endpoint = endpoint[:64]  # labels come from the client's fixed endpoint names; bounded anyway
    AC_REQUESTS.labels(endpoint, str(status)).inc()
    AC_LATENCY.labels(endpoint).observe(seconds)
    if status == 429:
        AC_RATE_LIMITED.labels(endpoint).inc()


def record_run(event: dict[str, Any], *, now: float | None = None) -> None:
    """Profiles by outcome and the last-success time, from a first-time completion event."""
    export = event["export"]
    counts = event.get("counts") or {}
    for outcome in PROFILE_OUTCOMES:
        if counts.get(outcome):
            PROFILES.labels(export, outcome).inc(counts[outcome])
    if event.get("status") in ("succeeded", "partial"):
        LAST_SUCCESS.labels(export).set(time.time() if now is None else now)


def set_info(broker_kind: str) -> None:
    INFO.info({"version": __version__, "broker": broker_kind})


class _LimiterWait:
    """Seconds spent waiting for the rate budget, summed over an engine's limiters at scrape time."""

    def __init__(self) -> None:
        self.engines: list[Any] = []

    def collect(self) -> Iterator[CounterMetricFamily]:
        total = 0.0
        for engine in self.engines:
            total += sum(lim.waited_seconds for lim in list(engine._limiters.values()))
        fam = CounterMetricFamily("segment_export_rate_limit_wait_seconds",
                                  "Time spent waiting for the ActiveCampaign rate budget")
        fam.add_metric([], total)
        yield fam


_WAIT = _LimiterWait()
REGISTRY.register(_WAIT)


def watch_engine(engine: Any) -> None:
    """Expose the engine's limiter wait time (``segment_export_rate_limit_wait_seconds_total``)."""
    if engine not in _WAIT.engines:
        _WAIT.engines.append(engine)


def write_run_file(path: str, engine: Any, event: dict[str, Any] | None) -> None:
    """``segment-export sync --metrics-file``: the run's metrics in the text format (for a textfile
    collector or a push), written atomically so a collector never reads half a file."""
    import os

    from prometheus_client import write_to_textfile

    watch_engine(engine)
    if event is not None:
        RUNS.labels(event["export"], event["status"]).inc()
        if event.get("duration_seconds") is not None:
            RUN_DURATION.labels(event["export"]).observe(float(event["duration_seconds"]))
        record_run(event)
    write_to_textfile(os.fspath(path), REGISTRY)


def run_started(export: str) -> None:
    RUNS_IN_PROGRESS.inc()
    RUN_STARTED.labels(export).set(time.time())


def run_ended(export: str) -> None:
    RUNS_IN_PROGRESS.dec()
    with contextlib.suppress(KeyError):
        RUN_STARTED.remove(export)


BATCHES_IN_FLIGHT = Gauge("segment_export_bulk_batches_in_flight",
                          "Bulk-import batches accepted by ActiveCampaign and not yet final", ["export"])


def observe_progress(progress: Any) -> None:
    """Engine progress hook: batches in flight per export (one run per export at a time per worker)."""
    BATCHES_IN_FLIGHT.labels(progress.export).set(progress.in_flight)
