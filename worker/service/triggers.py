"""Triggers: which segment refresh an announced object means, and the run's refresh id and snapshot.

Why here (the service) and not in the events: the events say what storage announced (``worker.events.
notifications``); the config's ``[segments.ID] triggers`` decide what it means to us. An object is
located by ``worker.locations.locate`` (decoded once, normalised) before any glob sees it, and the
snapshot it marks is admitted by the worker against ``snapshot_prefixes`` like an event's own URI.

- The snapshot: the marker's folder when the marker's name starts with ``_`` (Spark's and Hadoop's
  ``_SUCCESS``: the parts beside it), else the object itself (a manifest, a CDM ``model.json`` or a
  single-file snapshot), as a location string the snapshot readers interpret.
- The refresh id: a digest of the marker's canonical location and the write's token (S3's sequencer, or
  its eTag where a store gives no sequencer). A notification delivered twice (or through two routes)
  names the same write, so it is the same refresh and the same run id: a duplicate run, never a second
  sync. A marker written again is a new write (a new sequencer), so a new refresh.
- ``occurred_at`` is the notification's event time, so the stale check keeps working.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from worker.events.notifications import ObjectNote
from worker.locations import Location, LocationGlob, compile_glob, locate
from worker.settings import Segment

IGNORED_REASONS = ("test_event", "deleted", "not_created", "no_trigger", "bad_location")
"""Why an announced object started nothing: a bounded set, safe as a metrics label."""


@dataclass(frozen=True)
class Refresh:
    """A segment refresh an object announced: the run's inputs."""

    segment: str
    snapshot_uri: str
    refresh_id: str
    occurred_at: str
    marker: str
    """The canonical location of the announcing object (for logs)."""


class Triggers:
    """The config's triggers, compiled once."""

    def __init__(self, segments: Mapping[str, Segment]) -> None:
        self.globs: list[tuple[str, LocationGlob]] = [
            (seg.name, compile_glob(pattern)) for seg in segments.values() for pattern in seg.triggers]

    def __bool__(self) -> bool:
        return bool(self.globs)

    def refreshes(self, note: ObjectNote) -> list[Refresh]:
        """Every segment whose triggers match the (created) object; LocationError if it names no place."""
        if note.store != "s3":  # triggers are s3:// globs until the locations and readers know Azure (issue 16)
            return []
        location = locate(note.uri)
        segments = list(dict.fromkeys(name for name, glob in self.globs if glob.matches(location)))
        if not segments:
            return []
        snapshot = snapshot_of(location)
        refresh_id = refresh_id_for(location, note.token)
        return [Refresh(s, snapshot, refresh_id, note.occurred_at, location.uri) for s in segments]


def snapshot_of(marker: Location) -> str:
    """The snapshot a marker announces: its folder for ``_SUCCESS``-style names, else the object itself."""
    if marker.segments and marker.segments[-1].startswith("_"):
        return Location(marker.kind, marker.root, marker.segments[:-1], True).uri
    return marker.uri


def refresh_id_for(marker: Location, token: str) -> str:
    """``object-`` and a digest of the marker's location and which write it was (sequencer or eTag)."""
    return "object-" + hashlib.sha256(f"{marker.uri}\0{token}".encode()).hexdigest()[:40]
