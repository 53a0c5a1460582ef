"""Email keys: the 128-bit hash that stands for an email in memory, and lookups in sorted key arrays.

Why hashes: a set or dict of ten million email strings costs well over a gigabyte in CPython; two
``uint64`` columns cost 16 bytes a contact, sort and search in C (numpy), and need no email in memory.
The key of an email is the first 16 bytes of ``blake2s(email as UTF-8)`` (BLAKE2s-256, truncated), split
into ``hi`` (bytes 0-7) and ``lo`` (bytes 8-15), both big-endian, so ordering keys by ``(hi, lo)`` is
ordering the keys' bytes. Why BLAKE2s without parameters: it is collision-resistant like any BLAKE2, and
called without keyword arguments it costs about 0.6 us an email where ``blake2b(digest_size=16)`` costs
1 us: at 100,000 profiles a second that is 4% of the pipeline.

**Collision bound.** For n distinct emails the chance that any two share a key is at most
n(n-1)/2 / 2**128: about 1.5e-25 for ten million, 1.5e-27 for one million. Run every export of a
thousand customers daily for a thousand years at ten million contacts each and the chance of a
single collision anywhere stays below 1e-16. BLAKE2s has no known collisions, and finding one for a
128-bit truncation takes about 2**64 hash evaluations, so a crafted segment does not get there either.

**What a collision would do, and why it is safe anyway.** Where an email is *acted on*, the email
itself is used, never a key alone:

- the commit merges by key *and* email (``worker.syncstate.merge``): two emails with one key are stored
  as two entries, each with its own fingerprint and flag, so the stored state is always exact;
- stored entries that share a key are told apart by their emails, read back once when the state is
  loaded (``KeyIndex.lookup``): planning and the removal guard match them exactly;
- a leaver is a stored entry that no snapshot email matched, unsubscribed by its stored email. Every
  snapshot email that *is* a stored email matches that entry (by key, and by email where the key is
  shared), so a collision can only make an absent entry look present: it can hide a leaver for a
  run, never unsubscribe someone in the segment or someone this export did not subscribe;
- what a collision between a new email and another one (stored, or met earlier in the run) can do is
  take the new one for the other: it is sent as an update of the other's entry (then stored exactly),
  or counted a duplicate, or skipped when the other's entry is flagged; at worst a contact is not
  synced (reported as a duplicate or skipped) while the collision lasts.
"""

from __future__ import annotations

from hashlib import blake2s

import numpy as np
import numpy.typing as npt

KEY_BYTES = 16
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
_blake2s = blake2s
_BE = np.dtype(">u8")


def email_key(email: str) -> bytes:
    """The 16-byte key of one (normalized) email."""
    return _blake2s(email.encode()).digest()[:KEY_BYTES]


def split_keys(digests: bytes) -> tuple[U64, U64]:
    """(hi, lo) native uint64 columns from concatenated 16-byte keys."""
    pairs = np.frombuffer(digests, dtype=_BE).reshape(-1, 2)
    return pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)


def email_keys(emails: list[str]) -> tuple[U64, U64]:
    """(hi, lo) of each email, in order: one C hash call per email, then two array conversions."""
    b2s = _blake2s
    words = np.frombuffer(b"".join([b2s(e.encode()).digest() for e in emails]), dtype=_BE).reshape(-1, 4)
    return words[:, 0].astype(np.uint64), words[:, 1].astype(np.uint64)


def join_keys(hi: U64, lo: U64) -> bytes:
    """The 16-byte keys of (hi, lo) columns, concatenated (the inverse of ``split_keys``)."""
    pairs = np.empty((len(hi), 2), dtype=_BE)
    pairs[:, 0] = hi
    pairs[:, 1] = lo
    return pairs.tobytes()


def find(hi: U64, lo: U64, qhi: U64, qlo: U64) -> I64:
    """Position of each query key (qhi[i], qlo[i]) in the columns (sorted by hi), or -1 if absent.

    ``hi`` must be sorted; the order of equal ``hi`` values does not matter (such runs are a 2**-64
    event per pair and are scanned one by one).
    """
    n = len(hi)
    found = np.full(len(qhi), -1, dtype=np.int64)
    if n == 0 or len(qhi) == 0:
        return found
    at = np.searchsorted(hi, qhi)
    c = np.minimum(at, n - 1)
    same_hi = hi[c] == qhi
    hit = same_hi & (lo[c] == qlo)
    found[hit] = c[hit]
    for i in np.flatnonzero(same_hi & ~hit).tolist():  # another key with the same hi: scan its run
        j, h, want = int(c[i]) + 1, qhi[i], qlo[i]
        while j < n and hi[j] == h:
            if lo[j] == want:
                found[i] = j
                break
            j += 1
    return found


def first_occurrences(hi: U64, lo: U64) -> npt.NDArray[np.bool_]:
    """True where a key appears for the first time in these columns (in their order)."""
    n = len(hi)
    first = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return first
    order = np.lexsort((np.arange(n), lo, hi))  # by key, then by position: the first comes first
    h, lw = hi[order], lo[order]
    new = np.ones(n, dtype=np.bool_)
    new[1:] = (h[1:] != h[:-1]) | (lw[1:] != lw[:-1])
    first[order[new]] = True
    return first
