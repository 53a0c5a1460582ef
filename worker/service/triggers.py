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

Object keys are literal: ``vip//two/_SUCCESS``, ``vip/./two/_SUCCESS`` and ``vip/x/../two/_SUCCESS`` are
other objects than ``vip/two/_SUCCESS``, in other "folders". ``locate`` normalises such a path into
another one, so a marker whose key is not already in that normal form is refused (LocationError, acked
and counted as ``bad_location``): read as a location it would name another folder's parts.

Azure: Event Grid names the storage account (``abfss://container@account...``); an ``az://container/``
trigger means the worker's own account (as ``az://`` locations do), so it matches a blob of that account
only, and the snapshot is written in the form of the trigger that matched, which is the form the
``snapshot_prefixes`` are written in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from worker.events.notifications import ObjectNote
from worker.locations import Location, LocationError, LocationGlob, compile_glob, locate
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
        location = locate(note.uri)
        if "/".join(location.segments) != note.key:
            raise LocationError(f"the object key {note.key[:300]!r} holds an empty, '.' or '..' segment; keys are "
                                "literal, so its folder cannot be read as a snapshot (it would name another "
                                "folder): write the export under a path without '//', '/./' or '/../'")
        forms = [location]
        if location.kind == "az" and (own := self._own_account_form(location)) is not None:
            forms.append(own)
        found: dict[str, Location] = {}
        for name, glob in self.globs:
            for form in forms:
                if name not in found and glob.matches(form):
                    found[name] = form
        refresh_id = refresh_id_for(location, note.token)  # one write, one id, whichever form matched
        return [Refresh(s, snapshot_of(form), refresh_id, note.occurred_at, location.uri)
                for s, form in found.items()]

    def _own_account_form(self, location: Location) -> Location | None:
        """``az://container/path`` for a blob of the worker's own storage account, else None."""
        if not any(glob.pattern.startswith("az://") for _, glob in self.globs):
            return None
        container, _, account = location.root.partition("@")
        if not account or account != own_account():
            return None
        return Location("az", container, location.segments, location.folder)


def own_account() -> str | None:
    """The storage account of the worker's Azure credentials (None without them or the azure extra)."""
    from worker.clients.azure import AzureUnavailable, blob_service

    try:
        return str(blob_service().account_name)
    except AzureUnavailable:
        return None


def snapshot_of(marker: Location) -> str:
    """The snapshot a marker announces: its folder for ``_SUCCESS``-style names, else the object itself."""
    if marker.segments and marker.segments[-1].startswith("_"):
        return Location(marker.kind, marker.root, marker.segments[:-1], True).uri
    return marker.uri


def refresh_id_for(marker: Location, token: str) -> str:
    """``object-`` and a digest of the marker's location and which write it was (sequencer or eTag)."""
    return "object-" + hashlib.sha256(f"{marker.uri}\0{token}".encode()).hexdigest()[:40]
