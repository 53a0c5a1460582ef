"""The commit's streaming merge: old shards + this run's changes -> the shards of a new generation.

Why streaming: a run that changed 1% of ten million contacts must not hold the old and the new state
at once. The changes (one per contact the run sent or forgot) are partitioned by key range as they
arrive and spilled to a temporary folder once they pass ``MEMORY_LIMIT``; then each key range is
built in turn from the old entries of that range (read shard by shard, in key order) and that range's
changes, sorted. Memory holds one range: about ``SHARD_TARGET`` entries.

Changes are matched to old entries by key *and* email, so two emails that share a key (see
``worker.syncstate.keys``) stay two exact entries. For one email the last change wins.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import shutil
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from worker.state import StateStore
from worker.syncstate.index import FLAG_CODE, SKIPPED, SUBSCRIBED, UNSUBSCRIBED
from worker.syncstate.keys import email_key, find, split_keys
from worker.syncstate.manifest import Committed, Manifest, ShardRef
from worker.syncstate.shard import Block, encode_shard
from worker.syncstate.source import Source

#: Entries per shard the state aims at: a shard is a few MB, and one key range is what a merge holds.
SHARD_TARGET = 1 << 17
MAX_BITS = 12
#: Changes held in memory before they are spilled to the temporary folder.
MEMORY_LIMIT = 32 << 20
DELETE = 3
_REC = struct.Struct(">16sQBIH")  # key, fingerprint, flag code (or DELETE), since, email length; then the email

#: One change: (key, email, flag code or DELETE, fingerprint, since).
Change = tuple[bytes, str, int, int, int]


def bits_for(entries: int) -> int:
    """How many top key bits split a state of about ``entries`` entries into shards of ~SHARD_TARGET."""
    bits = 0
    while bits < MAX_BITS and entries > SHARD_TARGET << bits:
        bits += 1
    return bits


class Changes:
    """A commit's changes to the stored entries, partitioned by the top ``bits`` bits of their key."""

    def __init__(self, bits: int, *, memory_limit: int | None = None) -> None:
        if not 0 <= bits <= MAX_BITS:
            raise ValueError(f"bits must be 0..{MAX_BITS}, got {bits}")
        self.bits = bits
        self.count = 0
        self._limit = MEMORY_LIMIT if memory_limit is None else memory_limit
        self._held = 0
        self._buffers: dict[int, bytearray] = {}
        self._folder: str | None = None

    def __enter__(self) -> Changes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set(self, email: str, fp: int, flag: str, since: int = 0) -> None:
        """The entry of ``email`` becomes (fp, flag, since)."""
        self._add(email, FLAG_CODE[flag], fp, since)

    def delete(self, email: str) -> None:
        """``email`` is forgotten (no entry)."""
        self._add(email, DELETE, 0, 0)

    def _add(self, email: str, code: int, fp: int, since: int) -> None:
        key = email_key(email)
        raw = email.encode()
        part = (key[0] << 8 | key[1]) >> (16 - self.bits) if self.bits else 0
        buf = self._buffers.get(part)
        if buf is None:
            buf = self._buffers[part] = bytearray()
        buf += _REC.pack(key, fp, code, since, len(raw))
        buf += raw
        self._held += _REC.size + len(raw)
        self.count += 1
        if self._held > self._limit:
            self._spill()

    def _path(self, part: int) -> str:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="segment-export-changes-")
        return os.path.join(self._folder, f"{part:05d}")

    def _spill(self) -> None:
        for part, buf in self._buffers.items():
            with open(self._path(part), "ab") as file:
                file.write(buf)
        self._buffers.clear()
        self._held = 0

    def partition(self, part: int) -> list[Change]:
        """The changes of one key range, sorted by (key, email), the last one of each email only."""
        data = b""
        if self._folder is not None:
            with contextlib.suppress(FileNotFoundError), open(self._path(part), "rb") as file:
                data = file.read()
        data += bytes(self._buffers.pop(part, b""))
        changes: list[Change] = []
        at, size, unpack = 0, _REC.size, _REC.unpack_from
        while at < len(data):
            key, fp, code, since, length = unpack(data, at)
            at += size
            changes.append((key, data[at:at + length].decode(), code, fp, since))
            at += length
        changes.sort(key=lambda c: (c[0], c[1]))  # stable: for one email, arrival order is kept
        last: list[Change] = []
        for c in changes:
            if last and last[-1][0] == c[0] and last[-1][1] == c[1]:
                last[-1] = c
            else:
                last.append(c)
        return last

    def close(self) -> None:
        self._buffers.clear()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


class _Cursor:
    """Reads a source's blocks in key order and hands out the entries below a bound, range by range."""

    def __init__(self, blocks: Iterator[Block]) -> None:
        self._blocks = blocks
        self._block: Block | None = None
        self._at = 0

    def take_below(self, bound: int | None) -> Block:
        parts: list[Block] = []
        while True:
            if self._block is None or self._at >= len(self._block):
                self._block, self._at = next(self._blocks, None), 0
                if self._block is None:
                    return Block.concat(parts)
            b = self._block
            end = len(b) if bound is None else int(np.searchsorted(b.hi, np.uint64(bound)))
            if end > self._at:
                parts.append(b.slice(self._at, end))
                self._at = end
            if self._at < len(b):
                return Block.concat(parts)


def apply(old: Block, changes: list[Change]) -> Block:
    """The entries of one key range after ``changes`` (sorted by key and email, one per email)."""
    if not changes:
        return old
    ch_hi, ch_lo = split_keys(b"".join(c[0] for c in changes))
    found = find(old.hi, old.lo, ch_hi, ch_lo).tolist()
    fp, flag, since = old.fp.copy(), old.flag.copy(), old.since.copy()
    keep = np.ones(len(old), dtype=np.bool_)
    inserts: list[int] = []
    for j, (_, email, code, c_fp, c_since) in enumerate(changes):
        p = found[j]
        if p >= 0 and old.emails[p] != email:
            p = _same_email(old, p, email)
        if p < 0:
            if code != DELETE:
                inserts.append(j)
        elif code == DELETE:
            keep[p] = False
        else:
            fp[p], flag[p], since[p] = c_fp, code, c_since
    if keep.all():
        base = Block(old.hi, old.lo, fp, flag, since, old.emails)
    else:
        base = Block(old.hi[keep], old.lo[keep], fp[keep], flag[keep], since[keep],
                     list(itertools.compress(old.emails, keep.tolist())))
    if not inserts:
        return base
    ins = [changes[j] for j in inserts]
    ihi, ilo = ch_hi[inserts], ch_lo[inserts]
    at = np.searchsorted(base.hi, ihi).tolist()
    n = len(base)
    for k, c in enumerate(ins):  # a shared key (or hi) in the old entries: place the email in (key, email) order
        a, h, lw = at[k], int(ihi[k]), int(ilo[k])
        while a < n and (int(base.hi[a]), int(base.lo[a]), base.emails[a]) < (h, lw, c[1]):
            a += 1
        at[k] = a
    emails: list[str] = []
    prev = 0
    for a, c in zip(at, ins, strict=True):
        emails.extend(base.emails[prev:a])
        emails.append(c[1])
        prev = a
    emails.extend(base.emails[prev:])
    return Block(np.insert(base.hi, at, ihi), np.insert(base.lo, at, ilo),
                 np.insert(base.fp, at, np.array([c[3] for c in ins], dtype=np.uint64)),
                 np.insert(base.flag, at, np.array([c[2] for c in ins], dtype=np.uint8)),
                 np.insert(base.since, at, np.array([c[4] for c in ins], dtype=np.uint32)), emails)


def _same_email(old: Block, p: int, email: str) -> int:
    """The position of ``email`` in the run of entries sharing the key at ``p``, or -1."""
    h, lw = old.hi[p], old.lo[p]
    while p < len(old) and old.hi[p] == h and old.lo[p] == lw:
        if old.emails[p] == email:
            return p
        p += 1
    return -1


def shards_prefix(export_prefix: str) -> str:
    """Where an export's shards live: ``exports/<export>/shards/<generation>/<range>``."""
    return f"{export_prefix}shards/"


def new_generation() -> str:
    """A fresh generation name: unique (two attempts of one commit never share one), sortable by time."""
    return f"{int(time.time()):010x}-{secrets.token_hex(4)}"


@dataclass
class Written:
    manifest: Manifest
    bytes: int


def write_generation(store: StateStore, export_prefix: str, old: Source, changes: Changes, run_id: str,
                     committed: Committed | None) -> Written:
    """Write the merged entries as a new generation of shards (not yet visible) and return its manifest."""
    generation = new_generation()
    prefix = f"{shards_prefix(export_prefix)}{generation}/"
    cursor = _Cursor(old.blocks())
    parts = 1 << changes.bits
    shards: list[ShardRef] = []
    per_flag = np.zeros(3, dtype=np.int64)
    written = 0
    for part in range(parts):
        bound = None if part == parts - 1 else (part + 1) << (64 - changes.bits)
        block = apply(cursor.take_below(bound), changes.partition(part))
        if not len(block):
            shards.append(ShardRef(None, 0))
            continue
        key = f"{prefix}{part:05d}"
        data = encode_shard(block)
        store.put(key, data)
        written += len(data)
        shards.append(ShardRef(key, len(block)))
        per_flag += np.bincount(block.flag, minlength=3)[:3]
    manifest = Manifest(run_id, generation, changes.bits, shards, subscribed=int(per_flag[SUBSCRIBED]),
                        skipped=int(per_flag[SKIPPED]), unsubscribed=int(per_flag[UNSUBSCRIBED]), committed=committed)
    return Written(manifest, written)


def drop_generation(store: StateStore, manifest: Manifest) -> None:
    """Delete the shards of a generation that is no longer (or never became) the current one."""
    for key in manifest.shard_keys():
        store.delete(key)


def sweep_orphans(store: StateStore, export_prefix: str, current: str, *, older_than: float) -> int:
    """Delete generations other than ``current`` whose newest shard is older than ``older_than`` (unix time).

    Orphans are left by commits that wrote shards and then lost the swap or crashed. The age keeps a
    commit that is writing its shards right now (another worker, after a lost lease) out of harm's way.
    """
    prefix = shards_prefix(export_prefix)
    generations: dict[str, list[tuple[str, float]]] = {}
    for key, mtime in store.list_modified(prefix):
        generation, sep, _ = key[len(prefix):].partition("/")
        if sep and generation != current:
            generations.setdefault(generation, []).append((key, mtime))
    removed = 0
    for records in generations.values():
        if max(m for _, m in records) < older_than:
            for key, _ in records:
                store.delete(key)
            removed += 1
    return removed
