"""The manifest: the one small object that says which shards make up an export's synced state.

Stored at ``exports/<export>/synced`` (where format v1 kept the whole state)::

    #segment-export synced v2
    {"run_id": ..., "generation": ..., "bits": 3, "entries": ..., "subscribed": ..., "skipped": ...,
     "unsubscribed": ..., "shards": [{"key": ... or null, "entries": ...}, ...], "committed": {...},
     "refresh": {"refresh_id": ..., "occurred_at": ...}, "recent": [{"run_id": ..., "counts": ..., ...}]}

Why a manifest: a commit writes the new shards under a fresh generation first, then swaps this one
object with compare-and-swap (``replace_if_unchanged``): readers see the old state or the new one, never
a mix, on a folder and on S3 alike. Shard ``i`` holds the keys whose top ``bits`` bits are ``i``, in
key order, so the shards in manifest order are the whole state in key order. ``committed`` holds the
counts and failure report of the run that wrote it, so a run that crashed after its commit but before
recording its completion ends with the same counts without planning again; ``recent`` keeps the same for
the runs that committed before it (the last ``RECENT``), so such a run still finds its commit after
another run committed on top of it.

``refresh`` is the newest refresh (id and instant) whose run committed into this state: stale detection
reads it, so recording the refresh is part of the commit itself (one compare-and-swap), not a second
write that a crash could skip. A commit that only folds other runs' outcomes in (``worker.run.settle``)
keeps the run, the counts and the refresh of the state it started from.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

HEADER_V1 = b"#segment-export synced v1"
HEADER_V2 = b"#segment-export synced v2"
#: Earlier commits a manifest remembers (run id, counts, failure report), newest first.
RECENT = 16


class SyncedFormatError(ValueError):
    """The stored synced state is not in a format this version reads."""


@dataclass(frozen=True)
class ShardRef:
    key: str | None  # None: no entry falls in this range, nothing stored
    entries: int


@dataclass(frozen=True)
class Committed:
    """What the run that wrote the state reported: its event's counts and its failure report."""

    counts: dict[str, int]
    failures_uri: str


@dataclass(frozen=True)
class Refresh:
    """A refresh of the segment: its id and when upstream made it (RFC 3339; '' when not known)."""

    refresh_id: str
    occurred_at: str


@dataclass(frozen=True)
class Commit:
    """One run's commit as an earlier manifest recorded it."""

    run_id: str
    committed: Committed


@dataclass(frozen=True)
class Manifest:
    run_id: str
    generation: str
    bits: int
    shards: list[ShardRef]
    subscribed: int = 0
    skipped: int = 0
    unsubscribed: int = 0
    committed: Committed | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys written by newer versions, kept as they are
    refresh: Refresh | None = None
    recent: tuple[Commit, ...] = ()

    def committed_by(self, run_id: str) -> Committed | None:
        """What run ``run_id`` committed, if this state or one of the ``recent`` before it is its commit."""
        if run_id == self.run_id and self.committed is not None:
            return self.committed
        return next((c.committed for c in self.recent if c.run_id == run_id), None)

    def lineage(self) -> tuple[Commit, ...]:
        """The commits a manifest written on top of this one remembers: this one's, then ``recent``."""
        head = (Commit(self.run_id, self.committed),) if self.committed is not None else ()
        return (head + self.recent)[:RECENT]

    @property
    def entries(self) -> int:
        return sum(s.entries for s in self.shards)

    def shard_keys(self) -> list[str]:
        return [s.key for s in self.shards if s.key]

    def encode(self) -> bytes:
        body = {**self.extra, "run_id": self.run_id, "generation": self.generation, "bits": self.bits,
                "entries": self.entries, "subscribed": self.subscribed, "skipped": self.skipped,
                "unsubscribed": self.unsubscribed, "shards": [asdict(s) for s in self.shards],
                "committed": asdict(self.committed) if self.committed else None,
                "refresh": asdict(self.refresh) if self.refresh else None,
                "recent": [{"run_id": c.run_id, **asdict(c.committed)} for c in self.recent]}
        return HEADER_V2 + b"\n" + orjson.dumps(body) + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> Manifest:
        head, _, body = data.partition(b"\n")
        if head.strip() != HEADER_V2:
            raise SyncedFormatError("synced state manifest has an unknown format (expected a segment-export v2 "
                                    "header)")
        try:
            raw = orjson.loads(body)
            shards = [ShardRef(s["key"], int(s["entries"])) for s in raw.pop("shards")]
            committed = raw.pop("committed", None)
            refresh = raw.pop("refresh", None)
            recent = raw.pop("recent", None) or []
            known = {k: raw.pop(k) for k in ("run_id", "generation", "bits", "subscribed", "skipped",
                                             "unsubscribed")}
            raw.pop("entries", None)
            manifest = cls(str(known["run_id"]), str(known["generation"]), int(known["bits"]), shards,
                           int(known["subscribed"]), int(known["skipped"]), int(known["unsubscribed"]),
                           Committed(dict(committed["counts"]), str(committed["failures_uri"])) if committed
                           else None, raw,
                           Refresh(str(refresh["refresh_id"]), str(refresh["occurred_at"])) if refresh else None,
                           tuple(Commit(str(c["run_id"]), Committed(dict(c["counts"]), str(c["failures_uri"])))
                                 for c in recent))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SyncedFormatError(f"synced state manifest is damaged ({exc})") from None
        if len(shards) != 1 << manifest.bits:
            raise SyncedFormatError(f"synced state manifest lists {len(shards)} shards for {manifest.bits} bits")
        return manifest


def version_of(data: bytes) -> int:
    """1 or 2: which format the bytes stored at the synced key are in; SyncedFormatError otherwise."""
    if data.startswith(HEADER_V2):
        return 2
    if data.startswith(HEADER_V1):
        return 1
    raise SyncedFormatError("synced state has an unknown format (expected a segment-export v1 or v2 header)")
