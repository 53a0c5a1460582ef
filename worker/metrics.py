"""Prometheus metrics (prefix ``segment_export_``, base units, ``_total`` counters).

Labels have bounded cardinality: event type, outcome, export name, endpoint, status code, reason
class. Never an email, an event id or a key.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
