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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson

from worker.state import StateStore
from worker.syncstate.index import FLAG_CODE, SKIPPED, SUBSCRIBED, U8, UNSUBSCRIBED
from worker.syncstate.keys import U64, email_keys, find
from worker.syncstate.manifest import Commit, Committed, Manifest, Refresh, ShardRef
from worker.syncstate.shard import U32, Block, encode_shard
from worker.syncstate.source import Source

#: Entries per shard the state aims at: a shard is a few MB, and one key range is what a merge holds.
SHARD_TARGET = 1 << 17
MAX_BITS = 12
#: Changes held in memory before they are spilled to the temporary folder.
MEMORY_LIMIT = 32 << 20
#: Changes gathered before they are split by key range (one sort per this many, not one per batch).
_PENDING = 1 << 16
DELETE = 3  # the flag code of a change that forgets the email
_CHUNK = struct.Struct("<QQQ")  # a spilled chunk: entries, bytes of its emails and tags; then columns, emails, tags


def bits_for(entries: int) -> int:
    """How many top key bits split a state of about ``entries`` entries into shards of ~SHARD_TARGET."""
    bits = 0
    while bits < MAX_BITS and entries > SHARD_TARGET << bits:
        bits += 1
    return bits


@dataclass
class ChangeBlock:
    """Changes as columns: key, fingerprint, flag code (or DELETE), since, email, and the entry's new tags
    (``tags[i]`` None, or ``tags`` None: the entry keeps the tags it has); in arrival order or, from
    ``Changes.partition``, sorted by (key, email) with one change per email."""

    hi: U64
    lo: U64
    fp: U64
    code: U8
    since: U32
    emails: list[str]
    tags: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.hi)

    def take(self, rows: npt.NDArray[np.int64]) -> ChangeBlock:
        picked = rows.tolist()
        return ChangeBlock(self.hi[rows], self.lo[rows], self.fp[rows], self.code[rows], self.since[rows],
                           [self.emails[i] for i in picked],
                           None if self.tags is None else [self.tags[i] for i in picked])

    def tag_list(self) -> list[str | None]:
        return self.tags if self.tags is not None else [None] * len(self)

    @classmethod
    def concat(cls, blocks: list[ChangeBlock]) -> ChangeBlock:
        if len(blocks) == 1:
            return blocks[0]
        tags = None if all(b.tags is None for b in blocks) else [t for b in blocks for t in b.tag_list()]
        return cls(np.concatenate([b.hi for b in blocks]) if blocks else np.empty(0, np.uint64),
                   np.concatenate([b.lo for b in blocks]) if blocks else np.empty(0, np.uint64),
                   np.concatenate([b.fp for b in blocks]) if blocks else np.empty(0, np.uint64),
                   np.concatenate([b.code for b in blocks]) if blocks else np.empty(0, np.uint8),
                   np.concatenate([b.since for b in blocks]) if blocks else np.empty(0, np.uint32),
                   [e for b in blocks for e in b.emails], tags)

    def encode(self) -> bytes:
        emails = "\n".join(self.emails).encode()
        tags = orjson.dumps(self.tags) if self.tags is not None else b""
        return b"".join((_CHUNK.pack(len(self), len(emails), len(tags)), self.hi.astype("<u8").tobytes(),
                         self.lo.astype("<u8").tobytes(), self.fp.astype("<u8").tobytes(),
                         self.code.astype(np.uint8).tobytes(), self.since.astype("<u4").tobytes(), emails, tags))

    @classmethod
    def decode_all(cls, data: bytes) -> list[ChangeBlock]:
        blocks, at = [], 0
        while at < len(data):
            n, size, tags_size = _CHUNK.unpack_from(data, at)
            at += _CHUNK.size
            cols = []
            for dtype, width in (("<u8", 8), ("<u8", 8), ("<u8", 8), ("u1", 1), ("<u4", 4)):
                cols.append(np.frombuffer(data, dtype=dtype, count=n, offset=at))
                at += width * n
            emails = data[at:at + size].decode().split("\n") if n else []
            at += size
            tags = orjson.loads(data[at:at + tags_size]) if tags_size else None
            at += tags_size
            blocks.append(cls(cols[0].astype(np.uint64), cols[1].astype(np.uint64), cols[2].astype(np.uint64),
                              cols[3].astype(np.uint8), cols[4].astype(np.uint32), emails, tags))
        return blocks


class Changes:
    """A commit's changes to the stored entries, partitioned by the top ``bits`` bits of their key.

    Changes arrive a batch at a time (``add``: columns, hashed here), are split by key range every
    ``_PENDING`` changes, and spilled to a temporary folder (one file per range) past ``MEMORY_LIMIT``.
    """

    def __init__(self, bits: int, *, memory_limit: int | None = None) -> None:
        if not 0 <= bits <= MAX_BITS:
            raise ValueError(f"bits must be 0..{MAX_BITS}, got {bits}")
        self.bits = bits
        self.count = 0
        self._limit = MEMORY_LIMIT if memory_limit is None else memory_limit
        self._pending: list[ChangeBlock] = []
        self._pending_count = 0
        self._parts: dict[int, list[ChangeBlock]] = {}
        self._held = 0
        self._folder: str | None = None

    def __enter__(self) -> Changes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set(self, email: str, fp: int, flag: str, since: int = 0, tags: str | None = None) -> None:
        """The entry of ``email`` becomes (fp, flag, since), with ``tags`` (None: the tags it has)."""
        self.add([email], [fp], [FLAG_CODE[flag]], [since], None if tags is None else [tags])

    def delete(self, email: str) -> None:
        """``email`` is forgotten (no entry)."""
        self.add([email], [0], [DELETE], [0])

    def add(self, emails: list[str], fps: Sequence[int] | U64, codes: Sequence[int] | U8,
            sinces: Sequence[int] | U32, tags: Sequence[str | None] | None = None) -> None:
        """Changes for ``emails``: flag code (``FLAG_CODE`` values, or DELETE), fingerprint and since each,
        and the tags each entry now carries (None, or a None item: the entry keeps its tags)."""
        if not emails:
            return
        hi, lo = email_keys(emails)
        self._pending.append(ChangeBlock(hi, lo, np.asarray(fps, dtype=np.uint64), np.asarray(codes, dtype=np.uint8),
                                         np.asarray(sinces, dtype=np.uint32), list(emails),
                                         None if tags is None or not any(t is not None for t in tags) else list(tags)))
        self._pending_count += len(emails)
        self.count += len(emails)
        if self._pending_count >= _PENDING:
            self._split()

    def _split(self) -> None:
        """Move the pending changes into their key ranges (arrival order kept within each)."""
        if not self._pending:
            return
        block = ChangeBlock.concat(self._pending)
        self._pending, self._pending_count = [], 0
        part = block.hi >> np.uint64(64 - self.bits) if self.bits else np.zeros(len(block), np.uint64)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(1 << self.bits, dtype=np.uint64), side="right")
        start = 0
        for p, end in enumerate(bounds.tolist()):
            if end > start:
                self._parts.setdefault(p, []).append(block.take(order[start:end]))
            start = end
        self._held += len(block) * 48 + sum(len(e) for e in block.emails)
        if block.tags is not None:
            self._held += sum(len(t) for t in block.tags if t)
        if self._held > self._limit:
            self._spill()

    def _path(self, part: int) -> str:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="segment-export-changes-")
        return os.path.join(self._folder, f"{part:05d}")

    def _spill(self) -> None:
        for part, blocks in self._parts.items():
            with open(self._path(part), "ab") as file:
                for b in blocks:
                    file.write(b.encode())
        self._parts.clear()
        self._held = 0

    def partition(self, part: int) -> ChangeBlock:
        """The changes of one key range, sorted by (key, email), the last one of each email only."""
        self._split()
        blocks: list[ChangeBlock] = []
        if self._folder is not None:
            with contextlib.suppress(FileNotFoundError), open(self._path(part), "rb") as file:
                blocks = ChangeBlock.decode_all(file.read())
        blocks.extend(self._parts.pop(part, []))
        if not blocks:
            return ChangeBlock.concat([])
        block = ChangeBlock.concat(blocks)
        order = np.lexsort((np.arange(len(block)), block.lo, block.hi))  # by key, then arrival
        block = block.take(order)
        same = (block.hi[1:] == block.hi[:-1]) & (block.lo[1:] == block.lo[:-1])
        if not same.any():
            return block
        # a key met more than once: one email changed twice (the last wins), or emails sharing a key
        order = np.arange(len(block))
        starts = [*np.flatnonzero(np.concatenate(([True], ~same))).tolist(), len(block)]
        for a, b in itertools.pairwise(starts):
            if b - a > 1:
                last = {block.emails[r]: r for r in range(a, b)}  # rows are in arrival order here
                chosen = sorted(last.values(), key=lambda r: block.emails[r])
                order[a:b] = -1
                order[a:a + len(chosen)] = chosen
        return block.take(order[order >= 0])

    def close(self) -> None:
        self._pending.clear()
        self._parts.clear()
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


def apply(old: Block, changes: ChangeBlock) -> Block:
    """The entries of one key range after ``changes`` (from ``Changes.partition``): matched by key and email."""
    if not len(changes):
        return old
    found = find(old.hi, old.lo, changes.hi, changes.lo)
    for j in np.flatnonzero(found >= 0).tolist():  # the key is stored: is it this email's entry?
        p = int(found[j])
        if old.emails[p] != changes.emails[j]:
            found[j] = _same_email(old, p, changes.emails[j])
    deleting = changes.code == DELETE
    hit = found >= 0
    setting = hit & ~deleting
    fp, flag, since = old.fp.copy(), old.flag.copy(), old.since.copy()
    at = found[setting]
    # "Unsubscribed by this export since": when the entry already had a time and the change brings one too
    # (a removal sent again, a removal or re-entry whose outcome is unknown), the earlier one is kept, for
    # re-entry compares it with AC's record of the first unsubscription (worker.activecampaign.readmission).
    was, now = since[at], changes.since[setting]
    fp[at], flag[at] = changes.fp[setting], changes.code[setting]
    since[at] = np.where((was != 0) & (now != 0), np.minimum(was, now), now)
    tags: list[str] | None = None
    if old.tags is not None or changes.tags is not None:
        tags = list(old.tag_list())
        if changes.tags is not None:
            for j, p in zip(np.flatnonzero(setting).tolist(), at.tolist(), strict=True):
                given = changes.tags[j]
                if given is not None:
                    tags[p] = given
    gone = found[hit & deleting]
    if len(gone):
        keep = np.ones(len(old), dtype=np.bool_)
        keep[gone] = False
        kept = keep.tolist()
        base = Block(old.hi[keep], old.lo[keep], fp[keep], flag[keep], since[keep],
                     list(itertools.compress(old.emails, kept)),
                     None if tags is None else list(itertools.compress(tags, kept)))
    else:
        base = Block(old.hi, old.lo, fp, flag, since, old.emails, tags)
    new = np.flatnonzero(~hit & ~deleting)
    if not len(new):
        return _untagged(base)
    ins = changes.take(new)  # sorted by (key, email), as the changes are
    ins_tags = None if ins.tags is None else [t or "" for t in ins.tags]
    if not len(base):
        return _untagged(Block(ins.hi, ins.lo, ins.fp, ins.code, ins.since, ins.emails, ins_tags))
    pos = np.searchsorted(base.hi, ins.hi)
    n = len(base)
    for k in np.flatnonzero((pos < n) & (base.hi[np.minimum(pos, n - 1)] == ins.hi)).tolist():
        a, h, lw, email = int(pos[k]), int(ins.hi[k]), int(ins.lo[k]), ins.emails[k]  # a shared hi: place by
        while a < n and (int(base.hi[a]), int(base.lo[a]), base.emails[a]) < (h, lw, email):  # (key, email)
            a += 1
        pos[k] = a
    at_list = pos.tolist()
    emails = _merged(base.emails, at_list, ins.emails)
    merged_tags = None
    if base.tags is not None or ins_tags is not None:
        merged_tags = _merged(base.tag_list(), at_list, ins_tags if ins_tags is not None else [""] * len(ins))
    return _untagged(Block(np.insert(base.hi, pos, ins.hi), np.insert(base.lo, pos, ins.lo),
                           np.insert(base.fp, pos, ins.fp), np.insert(base.flag, pos, ins.code),
                           np.insert(base.since, pos, ins.since), emails, merged_tags))


def _merged(base: list[str], positions: list[int], inserted: list[str]) -> list[str]:
    """``base`` with ``inserted[k]`` placed before ``base[positions[k]]`` (positions ascending)."""
    out: list[str] = []
    prev = 0
    for a, item in zip(positions, inserted, strict=True):
        out.extend(base[prev:a])
        out.append(item)
        prev = a
    out.extend(base[prev:])
    return out


def _untagged(block: Block) -> Block:
    """A block whose entries carry no tags drops its tags column (stored as a v2 shard)."""
    if block.tags is not None and not any(block.tags):
        block.tags = None
    return block


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
                     committed: Committed | None, *, refresh: Refresh | None = None,
                     recent: tuple[Commit, ...] = ()) -> Written:
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
                        skipped=int(per_flag[SKIPPED]), unsubscribed=int(per_flag[UNSUBSCRIBED]), committed=committed,
                        refresh=refresh, recent=recent)
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
