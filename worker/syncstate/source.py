"""Where a loaded synced state's entries are read back from: its shards in the store, or memory.

Why a source and not a list: the planner keeps only key columns in memory (``KeyIndex``); the few
places that need emails (leavers, the commit's merge) stream them from here, one shard at a time, in
key order. A state in the older v1 format, or one built in a test, is held as one in-memory block.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

import numpy as np

from worker.state import StateError, StateStore
from worker.syncstate.index import FLAG_CODE, KeyIndex
from worker.syncstate.keys import I64, email_keys
from worker.syncstate.manifest import HEADER_V1, Manifest, SyncedFormatError
from worker.syncstate.shard import Block, decode_columns, decode_emails, decode_shard, decode_tag_numbers

#: (email, fingerprint as hex ("" for none), flag text, since as text ("" for none)): the v1 line's fields.
TextEntry = tuple[str, str, str, str]


class ShardMissing(StateError):
    """A shard the manifest lists is gone: the state was replaced by a newer commit while it was read.

    Its own type so that each reader says what that means for it (a run is planned again against the new
    state; a verify's findings are void: ``worker.run.verify``).
    """


class Source(ABC):
    """The entries of one synced state, in key order."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def blocks(self) -> Iterator[Block]:
        """Every entry, in key order, a block (a shard) at a time."""

    @abstractmethod
    def fill(self, index: KeyIndex) -> None:
        """Copy the key, fingerprint, flag and since columns into ``index`` (allocated for len(self) entries)."""

    @abstractmethod
    def emails_at(self, positions: I64) -> Iterator[tuple[int, str]]:
        """(position, email) for ascending positions in key order."""


class MemorySource(Source):
    """Entries held as one block (a v1 state being migrated, or a test's)."""

    def __init__(self, block: Block) -> None:
        self.block = block

    def __len__(self) -> int:
        return len(self.block)

    def blocks(self) -> Iterator[Block]:
        if len(self.block):
            yield self.block

    def fill(self, index: KeyIndex) -> None:
        b = self.block
        index.hi[:], index.lo[:], index.fp[:], index.flag[:], index.since[:] = b.hi, b.lo, b.fp, b.flag, b.since
        if b.tags is not None and any(b.tags):
            sets: dict[str, int] = {"": 0}
            numbers = np.array([sets.setdefault(t, len(sets)) for t in b.tags], dtype=np.uint32)
            index.set_tags(0, numbers, list(sets))

    def emails_at(self, positions: I64) -> Iterator[tuple[int, str]]:
        emails = self.block.emails
        for p in positions.tolist():
            yield p, emails[p]


class StoreSource(Source):
    """The shards a v2 manifest lists, read from the store when asked (never all at once)."""

    def __init__(self, store: StateStore, manifest: Manifest) -> None:
        self.store = store
        self.manifest = manifest
        self._ranges: list[tuple[str, int, int]] = []  # (shard key, first position, end position)
        at = 0
        for shard in manifest.shards:
            if shard.key and shard.entries:
                self._ranges.append((shard.key, at, at + shard.entries))
                at += shard.entries

    def __len__(self) -> int:
        return self.manifest.entries

    def _get(self, key: str) -> bytes:
        data = self.store.get(key)
        if data is None:
            raise ShardMissing(f"synced state shard {self.store.uri(key)} is missing: a newer commit replaced the "
                               f"synced state while it was being read (or the store lost the shard); read it again")
        return data

    def blocks(self) -> Iterator[Block]:
        for key, start, end in self._ranges:
            block = decode_shard(self._get(key), self.store.uri(key))
            _check_count(key, len(block), end - start)
            yield block

    def fill(self, index: KeyIndex) -> None:
        for key, start, end in self._ranges:
            data, where = self._get(key), self.store.uri(key)
            hi, lo, fp, flag, since = decode_columns(data, where)
            _check_count(key, len(hi), end - start)
            index.hi[start:end], index.lo[start:end], index.fp[start:end], index.flag[start:end] = hi, lo, fp, flag
            index.since[start:end] = since
            tags = decode_tag_numbers(data, where)
            if tags is not None:
                index.set_tags(start, *tags)

    def emails_at(self, positions: I64) -> Iterator[tuple[int, str]]:
        wanted = positions.tolist()
        i = 0
        for key, start, end in self._ranges:
            if i >= len(wanted):
                return
            if wanted[i] >= end:
                continue
            emails = decode_emails(self._get(key), self.store.uri(key))
            while i < len(wanted) and wanted[i] < end:
                yield wanted[i], emails[wanted[i] - start]
                i += 1


def _check_count(key: str, got: int, expected: int) -> None:
    if got != expected:
        raise SyncedFormatError(f"synced state shard {key} holds {got} entries, its manifest says {expected}")


def fingerprint_value(fp: str) -> int:
    """A stored fingerprint (16 hex digits) as a number; 0 for none, or for one that is not hex (resent)."""
    if not fp:
        return 0
    try:
        return int(fp, 16) & 0xFFFF_FFFF_FFFF_FFFF
    except ValueError:
        return 0


def block_of(entries: Iterable[TextEntry]) -> Block:
    """Entries in any order as one block in key order (ties of a shared key ordered by email)."""
    emails: list[str] = []
    fps: list[int] = []
    flags: list[int] = []
    sinces: list[int] = []
    for email, fp, flag, since in entries:
        code = FLAG_CODE.get(flag)
        if code is None:
            raise SyncedFormatError(f"synced state entry has an unknown flag {flag!r}")
        emails.append(email)
        fps.append(fingerprint_value(fp))
        flags.append(code)
        sinces.append(int(since) if since else 0)
    hi, lo = email_keys(emails)
    order = np.lexsort((lo, hi))
    hi, lo = hi[order], lo[order]
    ordered = [emails[i] for i in order.tolist()]
    tie = np.flatnonzero((hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1])).tolist()
    if tie:  # equal keys (a collision): order that run by email, so the order never depends on input order
        position = order.tolist()
        for i in tie:
            j = i + 1
            while j > 0 and hi[j] == hi[j - 1] and lo[j] == lo[j - 1] and ordered[j] < ordered[j - 1]:
                ordered[j], ordered[j - 1] = ordered[j - 1], ordered[j]
                position[j], position[j - 1] = position[j - 1], position[j]
                j -= 1
        order = np.array(position, dtype=np.int64)
    return Block(hi, lo, np.array(fps, dtype=np.uint64)[order], np.array(flags, dtype=np.uint8)[order],
                 np.array(sinces, dtype=np.uint32)[order], ordered)


def parse_v1(data: bytes) -> tuple[str, Iterator[TextEntry]]:
    """The run id and the entries of a v1 state: ``email<TAB>fp<TAB>flag[<TAB>since]`` lines after a header."""
    head, _, body = data.partition(b"\n")
    if not head.startswith(HEADER_V1):
        raise SyncedFormatError("synced state has an unknown format (expected a segment-export v1 header)")
    run_id = head[len(HEADER_V1):].decode().strip().removeprefix("run=")

    def entries() -> Iterator[TextEntry]:
        for number, line in enumerate(body.decode().splitlines(), 2):
            cols = line.split("\t")
            if len(cols) < 3:
                raise SyncedFormatError(f"synced state v1, line {number}: expected email, fingerprint and flag")
            yield cols[0], cols[1], cols[2], cols[3] if len(cols) > 3 else ""

    return run_id, entries()
