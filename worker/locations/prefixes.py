"""Which locations events may name: ``[worker] snapshot_prefixes``, normalised as locations are.

A prefix is always a folder: ``s3://cdp-exports`` means the whole bucket, ``file:///data/segments`` the
folder /data/segments (``config check`` says so), so neither admits a sibling that merely starts with
the same characters. Prefixes are made by ``locate`` when the config is loaded and event locations by
``locate`` when the event arrives: both sides were decoded, normalised and (local paths) resolved the
same way before the comparison, which is on kind, root and whole segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from worker.locations.location import Location, LocationError, locate, show_uri


class OutsidePrefixes(LocationError):
    """A well-formed location outside every allowed prefix.

    ``str()`` is what the publisher may read (the DLQ reason): the URI as sent, credentials masked, and
    the fix. ``detail`` is for the worker's own log only: what the URI means once decoded, normalised and
    its links resolved, and the allowed prefixes. Why apart: whoever can publish an event must not learn
    the worker's configuration or its filesystem's links by probing with events.
    """

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class Prefixes:
    """The allowed prefixes (None: every location is allowed, which the worker warns about at start)."""

    allowed: tuple[Location, ...] | None

    @classmethod
    def parse(cls, raw: Sequence[str] | None) -> Prefixes:
        """The config's strings as folders; LocationError for one that names nothing."""
        return cls(None if raw is None else tuple(locate(p).as_folder() for p in raw))

    def admit(self, uri: str) -> Location:
        """The location ``uri`` means, if it may be read; else LocationError or OutsidePrefixes saying why."""
        location = locate(uri)
        if self.allowed is None or any(location.is_under(p) for p in self.allowed):
            return location
        raise OutsidePrefixes(
            f"snapshot URI {show_uri(uri, 300)!r} is outside the snapshot prefixes this worker reads (compared "
            "once decoded and normalised); publish snapshots under an allowed prefix, or ask the worker's "
            "operators to add one (its log names them)",
            f"it means {show_uri(location.uri, 300)!r}; [worker] snapshot_prefixes: "
            f"{', '.join(show_uri(p.uri) for p in self.allowed)}")


def prefix_note(raw: str) -> str | None:
    """What ``config check`` says of one prefix when it is taken otherwise than it reads; else None."""
    folder = locate(raw).as_folder()
    if folder.uri == raw:
        return None
    if not raw.endswith("/"):
        sibling = (f"s3://{folder.root}-other/" if folder.kind == "s3" and not folder.segments
                   else folder.uri.rstrip("/") + "-other")
        return (f"snapshot_prefixes: {show_uri(raw)!r} has no trailing slash; it is taken as the folder {folder.uri} "
                f"(locations inside it, not {sibling})")
    return f"snapshot_prefixes: {show_uri(raw)!r} is taken as {folder.uri} (decoded, normalised, links resolved)"
