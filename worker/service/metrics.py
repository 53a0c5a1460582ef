"""Prometheus metrics (prefix ``segment_export_``, base units, ``_total`` counters), fed by hooks.

Every metric is updated here, in ``MetricsHooks``, a subscriber of the engine's and the worker's
lifecycle hooks (``worker.run.hooks``): the core announces what happened and never imports Prometheus.
Labels have bounded cardinality: event type, outcome, export or connection name, endpoint, status
code, reason class, action. Never an email, an event id, a hostname or a key.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, Info, generate_latest
from prometheus_client.core import CounterMetricFamily

from worker import __version__
from worker.run.hooks import Hooks

if TYPE_CHECKING:
    from worker.run.engine import Engine
    from worker.run.types import Progress, RunResult, RunSpec

EVENTS = Counter("segment_export_events_consumed_total", "Messages consumed from the requests queue",
                 ["type", "outcome"])
DEAD_LETTERED = Counter("segment_export_dead_lettered_total", "Messages sent to the dead-letter queue",
                        ["reason"])
NOTIFICATIONS_IGNORED = Counter(
    "segment_export_notifications_ignored_total",
    "Objects an upstream notification announced that started no run, acked (never dead-lettered): test_event, "
    "deleted, not_created, no_trigger (under no segment's triggers), bad_location", ["reason"])
INGRESS_REQUESTS = Counter(
    "segment_export_ingress_requests_total",
    "Requests to the ingress's POST /events (and its handshakes) by outcome: accepted, unauthorized, too_large, "
    "invalid, unavailable (the broker did not confirm), validation (a webhook handshake)", ["outcome"])
INGRESS_EVENTS = Counter("segment_export_ingress_events_total",
                         "Events the ingress published to the requests queue, by kind", ["kind"])
SETTLE_FAILURES = Counter("segment_export_settle_failures_total",
                          "Deliveries that could not be settled the way the worker tried (ack, requeue, "
                          "dead_letter, defer); the broker redelivers them", ["action"])
VISIBILITY_FAILURES = Counter("segment_export_visibility_extension_failures_total",
                              "SQS visibility extensions (heartbeats) that failed; lapsed=true: for longer than "
                              "the visibility timeout, so the delivery's runs stopped sending", ["lapsed"])
DELIVERIES_STUCK = Gauge("segment_export_deliveries_stuck",
                         "Deliveries held longer than their bound without being settled (/readyz fails)")
RUNS = Counter("segment_export_runs_total", "Export runs that ended, by status", ["export", "status"])
RUN_FAILURES = Counter("segment_export_run_failures_total",
                       "Runs that ended in export.failed, by the event's error code (snapshot_unreadable, "
                       "removal_guard, ...)", ["export", "code"])
RUNS_IN_PROGRESS = Gauge("segment_export_runs_in_progress", "Export runs executing now")
RUN_DURATION = Histogram("segment_export_run_duration_seconds", "Wall time of a run, start to commit",
                         ["export"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200))
CONTINUATIONS = Counter("segment_export_continuations_total",
                        "Runs handed on through a continuation message (unacked bound, shutdown)", ["export"])
RETRIES = Counter("segment_export_run_retries_total",
                  "Transient run failures retried later as a delayed continuation", ["export"])
GUARD_TRIPS = Counter("segment_export_removal_guard_trips_total",
                      "Runs refused by the removal guard (they would have unsubscribed too much of the list)",
                      ["export"])
READMISSIONS = Counter("segment_export_readmissions_total",
                       "Re-entering contacts this export had unsubscribed: re-subscribed, or kept out because "
                       "they unsubscribed themselves", ["export", "result"])
LEASE_BUSY = Counter("segment_export_lease_busy_total",
                     "Requests put back with a delay because another replica holds the export's lease", ["export"])
LEASES_LOST = Counter("segment_export_leases_lost_total", "Runs that lost their export lease and stopped sending",
                      ["export"])
LIST_DRIFT = Gauge("segment_export_list_drift_contacts",
                   "Contacts by which the list's subscribed count in ActiveCampaign differs from the export's synced "
                   "state after its last run (missing ones; on an owned list also unexpected ones)", ["export"])
LIST_DRIFT_RATIO = Gauge("segment_export_list_drift_ratio",
                         "segment_export_list_drift_contacts as a share of the export's synced subscribed contacts",
                         ["export"])
LIST_DRIFT_CHECKED = Gauge("segment_export_list_drift_checked_timestamp_seconds",
                           "Unix time of the export's last drift check on this replica (the alert reads the "
                           "drift of the replica that checked last)", ["export"])
TAGS_REMOVED = Counter("segment_export_tags_removed_total",
                       "Tags this export had added and removed again (leavers, changed tag_field values)", ["export"])
LIMITER_DEGRADED = Gauge("segment_export_limiter_degraded",
                         "1 while the connection's shared (Redis) rate limiter has fallen back to its local share",
                         ["connection"])

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
BATCHES_IN_FLIGHT = Gauge("segment_export_bulk_batches_in_flight",
                          "Bulk-import batches accepted by ActiveCampaign and not yet final", ["export"])
INFO = Info("segment_export_worker", "Worker build and broker kind")

PROFILE_OUTCOMES = ("added", "updated", "unchanged", "removed", "invalid", "failed", "skipped")


def observe_request(endpoint: str, status: int, seconds: float) -> None:
    """One HTTP exchange with ActiveCampaign."""
    endpoint = endpoint[:64]  # labels come from the client's fixed endpoint names; bounded anyway
    AC_REQUESTS.labels(endpoint, str(status)).inc()
    AC_LATENCY.labels(endpoint).observe(seconds)
    if status == 429:
        AC_RATE_LIMITED.labels(endpoint).inc()


def record_run(event: Mapping[str, Any], *, now: float | None = None) -> None:
    """Runs, profiles by outcome and the last-success time, from a first-time completion event."""
    export = event["export"]
    RUNS.labels(export, event["status"]).inc()
    if event["status"] == "failed":
        RUN_FAILURES.labels(export, (event.get("error") or {}).get("code", "unknown")).inc()
    counts = event.get("counts") or {}
    for outcome in PROFILE_OUTCOMES:
        if counts.get(outcome):
            PROFILES.labels(export, outcome).inc(counts[outcome])
    if event.get("status") in ("succeeded", "partial"):
        LAST_SUCCESS.labels(export).set(time.time() if now is None else now)


def set_info(broker_kind: str) -> None:
    INFO.info({"version": __version__, "broker": broker_kind})


class MetricsHooks(Hooks):
    """The Prometheus subscriber: every metric above is updated from a hook, nowhere else."""

    def run_started(self, spec: RunSpec) -> None:
        RUNS_IN_PROGRESS.inc()
        RUN_STARTED.labels(spec.export.name).set(time.time())

    def run_progress(self, progress: Progress) -> None:
        BATCHES_IN_FLIGHT.labels(progress.export).set(progress.in_flight)

    def run_finished(self, spec: RunSpec, result: RunResult, seconds: float) -> None:
        RUNS_IN_PROGRESS.dec()
        with contextlib.suppress(KeyError):
            RUN_STARTED.remove(spec.export.name)
        if result.event is not None and not result.replayed:
            RUN_DURATION.labels(spec.export.name).observe(seconds)

    def request_answered(self, endpoint: str, status: int, seconds: float) -> None:
        observe_request(endpoint, status, seconds)

    def guard_tripped(self, export: str) -> None:
        GUARD_TRIPS.labels(export).inc()

    def readmission(self, export: str, result: str) -> None:
        READMISSIONS.labels(export, result).inc()

    def limiter_degraded(self, connection: str, degraded: bool) -> None:
        LIMITER_DEGRADED.labels(connection).set(1 if degraded else 0)

    def lease_lost(self, export: str) -> None:
        LEASES_LOST.labels(export).inc()

    def list_drift(self, export: str, contacts: int, expected: int) -> None:
        LIST_DRIFT.labels(export).set(contacts)
        LIST_DRIFT_RATIO.labels(export).set(contacts / max(expected, 1))
        LIST_DRIFT_CHECKED.labels(export).set(time.time())

    def tags_removed(self, export: str, count: int) -> None:
        TAGS_REMOVED.labels(export).inc(count)

    def lease_busy(self, export: str) -> None:
        LEASE_BUSY.labels(export).inc()

    def delivery_settled(self, event_type: str, outcome: str) -> None:
        EVENTS.labels(event_type, outcome).inc()

    def delivery_dead_lettered(self, event_type: str, reason_class: str) -> None:
        DEAD_LETTERED.labels(reason_class).inc()
        EVENTS.labels(event_type, "dead_lettered").inc()

    def notification_ignored(self, reason: str) -> None:
        NOTIFICATIONS_IGNORED.labels(reason).inc()

    def settle_failed(self, action: str) -> None:
        SETTLE_FAILURES.labels(action).inc()

    def visibility_not_extended(self, lapsed: bool) -> None:
        VISIBILITY_FAILURES.labels("true" if lapsed else "false").inc()

    def deliveries_stuck(self, count: int) -> None:
        DELIVERIES_STUCK.set(count)

    def run_continued(self, export: str) -> None:
        CONTINUATIONS.labels(export).inc()

    def run_retried(self, export: str) -> None:
        RETRIES.labels(export).inc()

    def event_published(self, event: Mapping[str, Any], first_time: bool) -> None:
        if first_time:
            record_run(event)


class _LimiterWait:
    """Seconds spent waiting for the rate budget, summed over the watched engines' limiters at scrape time."""

    def __init__(self) -> None:
        self.engines: list[Engine] = []

    def collect(self) -> Iterator[CounterMetricFamily]:
        total = sum(lim.waited_seconds for engine in list(self.engines) for lim in engine.limiters())
        fam = CounterMetricFamily("segment_export_rate_limit_wait_seconds",
                                  "Time spent waiting for the ActiveCampaign rate budget")
        fam.add_metric([], total)
        yield fam


_WAIT = _LimiterWait()
REGISTRY.register(_WAIT)


def watch_engine(engine: Engine) -> None:
    """Expose the engine's limiter wait time (``segment_export_rate_limit_wait_seconds_total``)."""
    if engine not in _WAIT.engines:
        _WAIT.engines.append(engine)


def write_run_file(path: str, engine: Engine, event: Mapping[str, Any] | None) -> None:
    """``segment-export sync --metrics-file``: the run's metrics in the text format (for a textfile
    collector or a push), written atomically so a collector never reads half a file."""
    from prometheus_client import write_to_textfile

    watch_engine(engine)
    if event is not None:
        record_run(event)
    write_to_textfile(os.fspath(path), REGISTRY)


def exposition() -> tuple[bytes, str]:
    """The registry in Prometheus' text format, and its content type (for a /metrics handler)."""
    return generate_latest(), CONTENT_TYPE_LATEST.split(";")[0]
