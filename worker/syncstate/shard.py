"""Blocks of stored entries, and their encoding as one shard object of the state store.

A shard holds the entries of one key range, sorted by key, as columns::

    segment-export shard v2\\n            (v3 when any entry carries tags)
    header: entries (u64), bytes of the flags section (u32), bytes of the emails section (u32)
            [v3: bytes of the tags section (u32)]
    hi, lo, fp      entries x 8 bytes each, little-endian (random bits: stored as they are)
    flags section   zlib(flag codes, 1 byte each, then since, 4 bytes each, little-endian)
    emails section  zlib(the emails, UTF-8, one per line)
    [v3: tags section  zlib(a tag-set number per entry, u32 little-endian, then the distinct tag sets as one
                           JSON array of strings; number 0 is "" = no tags)]

Why columns: loading the state for a run needs the keys, fingerprints and flags only; those are read
with ``np.frombuffer``, no per-entry Python work, and the emails are not even decompressed. The emails
are read when they are needed (leavers, the commit's merge).

Tags (v3): the tags this export added to the contact (``remove_tags``), as one string per entry (a JSON
array of names, "" for none). Few distinct sets exist (the export's tags plus tag_field values), so a
shard stores each set once and a number per entry; loading the numbers is one ``np.frombuffer``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson

from worker.syncstate.index import U8
from worker.syncstate.keys import U64

U32 = npt.NDArray[np.uint32]
MAGIC = b"segment-export shard v2\n"
MAGIC_V3 = b"segment-export shard v3\n"  # with a tags section
_HEAD = struct.Struct("<QII")
_HEAD_V3 = struct.Struct("<QIII")
_LE64, _LE32 = np.dtype("<u8"), np.dtype("<u4")
#: zlib level of the emails: 6 packs them about 2.5 times at a few dozen MB/s; the state is written once a run.
EMAIL_LEVEL = 6


class ShardFormatError(ValueError):
    """A shard object that is not what the manifest says (truncated, or not a shard)."""


#: An entry's tags: a JSON array of names, or "" for none.
Tags = str


@dataclass
class Block:
    """Entries in key order: (hi, lo) key, fingerprint, flag code, ``since`` (unix seconds, 0 if none), email,
    and the entry's tags (``tags[i]``; ``tags`` None: no entry of the block has any)."""

    hi: U64
    lo: U64
    fp: U64
    flag: U8
    since: U32
    emails: list[str]
    tags: list[Tags] | None = None

    def __len__(self) -> int:
        return len(self.hi)

    @classmethod
    def empty(cls) -> Block:
        return cls(np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, np.uint8),
                   np.empty(0, np.uint32), [])

    def tag_list(self) -> list[Tags]:
        """``tags`` with None spelled out ("" for every entry)."""
        return self.tags if self.tags is not None else [""] * len(self)

    def slice(self, start: int, end: int) -> Block:
        return Block(self.hi[start:end], self.lo[start:end], self.fp[start:end], self.flag[start:end],
                     self.since[start:end], self.emails[start:end],
                     None if self.tags is None else self.tags[start:end])

    @classmethod
    def concat(cls, blocks: list[Block]) -> Block:
        if not blocks:
            return cls.empty()
        if len(blocks) == 1:
            return blocks[0]
        tags = None if all(b.tags is None for b in blocks) else [t for b in blocks for t in b.tag_list()]
        return cls(np.concatenate([b.hi for b in blocks]), np.concatenate([b.lo for b in blocks]),
                   np.concatenate([b.fp for b in blocks]), np.concatenate([b.flag for b in blocks]),
                   np.concatenate([b.since for b in blocks]), [e for b in blocks for e in b.emails], tags)


def encode_shard(block: Block) -> bytes:
    """The shard of ``block``: v2, or v3 when an entry carries tags."""
    n = len(block)
    flags = zlib.compress(block.flag.astype(np.uint8).tobytes() + block.since.astype(_LE32).tobytes(), 6)
    emails = zlib.compress("\n".join(block.emails).encode(), EMAIL_LEVEL)
    columns = (block.hi.astype(_LE64).tobytes(), block.lo.astype(_LE64).tobytes(), block.fp.astype(_LE64).tobytes())
    if block.tags is None or not any(block.tags):
        return b"".join((MAGIC, _HEAD.pack(n, len(flags), len(emails)), *columns, flags, emails))
    sets: dict[Tags, int] = {"": 0}
    numbers = np.fromiter((sets.setdefault(t, len(sets)) for t in block.tags), dtype=_LE32, count=n)
    tags = zlib.compress(numbers.tobytes() + orjson.dumps(list(sets)), 6)
    return b"".join((MAGIC_V3, _HEAD_V3.pack(n, len(flags), len(emails), len(tags)), *columns, flags, emails, tags))


def is_shard(data: bytes) -> bool:
    return data.startswith((MAGIC, MAGIC_V3))


def _sections(data: bytes, where: str) -> tuple[int, memoryview, bytes, bytes, bytes]:
    """(entries, columns, flags section, emails section, tags section (b"" in v2))."""
    if data.startswith(MAGIC_V3) and len(data) >= len(MAGIC_V3) + _HEAD_V3.size:
        n, flags_len, emails_len, tags_len = _HEAD_V3.unpack_from(data, len(MAGIC_V3))
        start = len(MAGIC_V3) + _HEAD_V3.size
    elif data.startswith(MAGIC) and len(data) >= len(MAGIC) + _HEAD.size:
        n, flags_len, emails_len = _HEAD.unpack_from(data, len(MAGIC))
        tags_len, start = 0, len(MAGIC) + _HEAD.size
    else:
        raise ShardFormatError(f"{where} is not a synced-state shard")
    columns_end = start + 24 * n
    emails_end = columns_end + flags_len + emails_len
    if len(data) != emails_end + tags_len:
        raise ShardFormatError(f"{where} is truncated or damaged ({len(data)} bytes, header says "
                               f"{emails_end + tags_len})")
    view = memoryview(data)
    return (n, view[start:columns_end], data[columns_end:columns_end + flags_len],
            data[columns_end + flags_len:emails_end], data[emails_end:])


def decode_tag_numbers(data: bytes, where: str) -> tuple[U32, list[Tags]] | None:
    """Each entry's tag-set number and the shard's distinct tag sets (0 is ""); None for a shard without tags."""
    n, _, _, _, tags_z = _sections(data, where)
    if not tags_z:
        return None
    try:
        raw = zlib.decompress(tags_z)
        sets = orjson.loads(raw[4 * n:])
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise ShardFormatError(f"{where}: damaged tags section ({exc})") from None
    numbers = np.frombuffer(raw, dtype=_LE32, count=n).astype(np.uint32, copy=False)
    if not isinstance(sets, list) or not sets or sets[0] != "" or (n and int(numbers.max()) >= len(sets)):
        raise ShardFormatError(f"{where}: damaged tags section (tag-set numbers out of range)")
    return numbers, [str(t) for t in sets]


def decode_tags(data: bytes, where: str) -> list[Tags] | None:
    got = decode_tag_numbers(data, where)
    if got is None:
        return None
    numbers, sets = got
    return [sets[i] for i in numbers.tolist()]


def decode_columns(data: bytes, where: str) -> tuple[U64, U64, U64, U8, U32]:
    """hi, lo, fp, flag and since of a shard, without decompressing its emails."""
    n, columns, flags_z, _, _ = _sections(data, where)
    cols = np.frombuffer(columns, dtype=_LE64).reshape(3, n)
    try:
        flags = zlib.decompress(flags_z)
    except zlib.error as exc:
        raise ShardFormatError(f"{where}: damaged flags section ({exc})") from None
    if len(flags) != 5 * n:
        raise ShardFormatError(f"{where}: flags section holds {len(flags)} bytes, expected {5 * n}")
    flag = np.frombuffer(flags, dtype=np.uint8, count=n)
    since = np.frombuffer(flags, dtype=_LE32, count=n, offset=n)
    native = {"dtype": np.uint64, "copy": False}  # views on little-endian machines: read-only, no copy
    return (cols[0].astype(**native), cols[1].astype(**native), cols[2].astype(**native), flag,
            since.astype(np.uint32, copy=False))


def decode_emails(data: bytes, where: str) -> list[str]:
    n, _, _, emails_z, _ = _sections(data, where)
    try:
        text = zlib.decompress(emails_z).decode()
    except (zlib.error, UnicodeDecodeError) as exc:
        raise ShardFormatError(f"{where}: damaged emails section ({exc})") from None
    emails = text.split("\n") if n else []
    if len(emails) != n:
        raise ShardFormatError(f"{where}: {len(emails)} emails for {n} entries")
    return emails


def decode_shard(data: bytes, where: str) -> Block:
    hi, lo, fp, flag, since = decode_columns(data, where)
    return Block(hi, lo, fp, flag, since, decode_emails(data, where), decode_tags(data, where))
