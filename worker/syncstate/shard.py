"""Blocks of stored entries, and their encoding as one shard object of the state store.

A shard holds the entries of one key range, sorted by key, as columns::

    segment-export shard v2\\n
    header: entries (u64), bytes of the flags section (u32), bytes of the emails section (u32)
    hi, lo, fp      entries x 8 bytes each, little-endian (random bits: stored as they are)
    flags section   zlib(flag codes, 1 byte each, then since, 4 bytes each, little-endian)
    emails section  zlib(the emails, UTF-8, one per line)

Why columns: loading the state for a run needs the keys, fingerprints and flags only; those are read
with ``np.frombuffer``, no per-entry Python work, and the emails are not even decompressed. The emails
are read when they are needed (leavers, the commit's merge).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.syncstate.index import U8
from worker.syncstate.keys import U64

U32 = npt.NDArray[np.uint32]
MAGIC = b"segment-export shard v2\n"
_HEAD = struct.Struct("<QII")
_LE64, _LE32 = np.dtype("<u8"), np.dtype("<u4")
#: zlib level of the emails: 6 packs them about 2.5 times at a few dozen MB/s; the state is written once a run.
EMAIL_LEVEL = 6


class ShardFormatError(ValueError):
    """A shard object that is not what the manifest says (truncated, or not a shard)."""


@dataclass
class Block:
    """Entries in key order: (hi, lo) key, fingerprint, flag code, ``since`` (unix seconds, 0 if none), email."""

    hi: U64
    lo: U64
    fp: U64
    flag: U8
    since: U32
    emails: list[str]

    def __len__(self) -> int:
        return len(self.hi)

    @classmethod
    def empty(cls) -> Block:
        return cls(np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, np.uint8),
                   np.empty(0, np.uint32), [])

    def slice(self, start: int, end: int) -> Block:
        return Block(self.hi[start:end], self.lo[start:end], self.fp[start:end], self.flag[start:end],
                     self.since[start:end], self.emails[start:end])

    @classmethod
    def concat(cls, blocks: list[Block]) -> Block:
        if not blocks:
            return cls.empty()
        if len(blocks) == 1:
            return blocks[0]
        return cls(np.concatenate([b.hi for b in blocks]), np.concatenate([b.lo for b in blocks]),
                   np.concatenate([b.fp for b in blocks]), np.concatenate([b.flag for b in blocks]),
                   np.concatenate([b.since for b in blocks]), [e for b in blocks for e in b.emails])


def encode_shard(block: Block) -> bytes:
    n = len(block)
    flags = zlib.compress(block.flag.astype(np.uint8).tobytes() + block.since.astype(_LE32).tobytes(), 6)
    emails = zlib.compress("\n".join(block.emails).encode(), EMAIL_LEVEL)
    return b"".join((MAGIC, _HEAD.pack(n, len(flags), len(emails)), block.hi.astype(_LE64).tobytes(),
                     block.lo.astype(_LE64).tobytes(), block.fp.astype(_LE64).tobytes(), flags, emails))


def _sections(data: bytes, where: str) -> tuple[int, memoryview, bytes, bytes]:
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + _HEAD.size:
        raise ShardFormatError(f"{where} is not a synced-state shard")
    n, flags_len, emails_len = _HEAD.unpack_from(data, len(MAGIC))
    start = len(MAGIC) + _HEAD.size
    columns_end = start + 24 * n
    if len(data) != columns_end + flags_len + emails_len:
        raise ShardFormatError(f"{where} is truncated or damaged ({len(data)} bytes, header says "
                               f"{columns_end + flags_len + emails_len})")
    view = memoryview(data)
    return (n, view[start:columns_end], data[columns_end:columns_end + flags_len],
            data[columns_end + flags_len:])


def decode_columns(data: bytes, where: str) -> tuple[U64, U64, U64, U8, U32]:
    """hi, lo, fp, flag and since of a shard, without decompressing its emails."""
    n, columns, flags_z, _ = _sections(data, where)
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
    n, _, _, emails_z = _sections(data, where)
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
    return Block(hi, lo, fp, flag, since, decode_emails(data, where))
