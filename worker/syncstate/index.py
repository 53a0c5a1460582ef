"""The stored state in memory while a run plans: sorted key columns, and the new keys a run meets.

Why columns and not a dict: per contact the planner needs the key, the fingerprint of what was sent and
the flag; as numpy columns that is 25 bytes a contact (a CPython dict of tuples is over 200), and a
whole page is looked up with one ``searchsorted``. The emails stay in the store, read back only for
leavers and for the commit (``worker.syncstate.source``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from worker.syncstate.keys import I64, U64, find

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
Mask = npt.NDArray[np.bool_]

#: Flag codes in the columns (the stored state's flags "", "s" and "u", see worker.contacts.synced).
SUBSCRIBED, SKIPPED, UNSUBSCRIBED = 0, 1, 2
FLAG_CODE = {"": SUBSCRIBED, "s": SKIPPED, "u": UNSUBSCRIBED}
FLAG_TEXT = ("", "s", "u")


@dataclass
class KeyIndex:
    """The stored entries' keys (sorted by (hi, lo)), fingerprints and flag codes (read-only once loaded).

    ``shared`` maps the emails of entries that share their key with another entry to their positions
    (filled by the loader; empty unless two stored emails collide): those are told apart by email.
    """

    hi: U64
    lo: U64
    fp: U64
    flag: U8
    since: U32  # when this export unsubscribed the entry (flag UNSUBSCRIBED), unix seconds; else 0
    shared: dict[str, int] = field(default_factory=dict)
    _shared_firsts: set[int] = field(default_factory=set, repr=False)
    #: Each entry's tags as a number into ``tag_sets`` (None: no entry has tags); ``tag_sets[0]`` is "".
    tag: U32 | None = None
    tag_sets: list[str] = field(default_factory=lambda: [""])
    _tag_numbers: dict[str, int] = field(default_factory=lambda: {"": 0}, repr=False)

    @classmethod
    def allocate(cls, n: int) -> KeyIndex:
        """Columns for ``n`` entries, filled in place by the loader (one allocation, no concatenation)."""
        return cls(np.empty(n, np.uint64), np.empty(n, np.uint64), np.empty(n, np.uint64), np.empty(n, np.uint8),
                   np.empty(n, np.uint32))

    def __len__(self) -> int:
        return len(self.hi)

    def find(self, qhi: U64, qlo: U64) -> I64:
        """Position of each key, or -1 for keys not stored (the first entry of a shared key)."""
        return find(self.hi, self.lo, qhi, qlo)

    def lookup(self, qhi: U64, qlo: U64, emails: list[str]) -> I64:
        """Position of each email's entry, or -1: by key, and by email where stored entries share a key."""
        found = find(self.hi, self.lo, qhi, qlo)
        if self.shared:
            firsts = self._shared_firsts
            for i in np.flatnonzero(found >= 0).tolist():
                if int(found[i]) in firsts:
                    found[i] = self.shared.get(emails[i], -1)
        return found

    def share(self, emails_at: Callable[[I64], Iterable[tuple[int, str]]]) -> None:
        """Find entries that share a key and learn their emails (``emails_at`` reads them back)."""
        if len(self.hi) < 2:
            return
        same = np.flatnonzero((self.hi[1:] == self.hi[:-1]) & (self.lo[1:] == self.lo[:-1]))
        if len(same):
            positions = np.union1d(same, same + 1).astype(np.int64)
            self.shared = {email: position for position, email in emails_at(positions)}
            self._shared_firsts = set(positions.tolist())  # where ``find`` lands for a shared key

    def subscribed(self) -> int:
        return int(np.count_nonzero(self.flag == SUBSCRIBED))

    def set_tags(self, start: int, numbers: U32, sets: list[str]) -> None:
        """Entries ``start..`` carry tag sets ``sets[numbers[i]]`` (a shard's own numbering, 0 = none)."""
        if self.tag is None:
            self.tag = np.zeros(len(self), dtype=np.uint32)
        known = self._tag_numbers
        remap = np.array([known.setdefault(t, len(known)) for t in sets], dtype=np.uint32)
        if len(known) > len(self.tag_sets):
            self.tag_sets = list(known)
        self.tag[start:start + len(numbers)] = remap[numbers]

    def tags_at(self, position: int) -> str:
        """The tags of the entry at ``position`` ("" for none): a JSON array of names."""
        return "" if self.tag is None else self.tag_sets[int(self.tag[position])]


class SeenKeys:
    """The keys a run met that are not in the stored state: its dedupe set for new emails.

    Sorted runs of (hi, lo) columns in levels: a page's keys make a run of level 0, and ``FANOUT`` runs
    of one level are merged into one run of the next (one stable sort of their concatenation, which
    numpy's timsort does as a merge), so each key is copied about log8(n / page) times in all: 16
    bytes a key, plus the runs being merged. In front of the runs, a bitmap of the keys' top bits (at
    most 1 bit in 8 set) answers "certainly not met" for most new keys without searching: a cold run
    of a million new emails asks it a million times.
    """

    FANOUT = 8
    _MIN_BITS = 20

    def __init__(self) -> None:
        self._levels: list[list[tuple[U64, U64]]] = []
        self._count = 0
        self._bits = self._MIN_BITS
        self._filter = np.zeros(1 << (self._bits - 3), dtype=np.uint8)

    def __len__(self) -> int:
        return self._count

    def _runs(self) -> list[tuple[U64, U64]]:
        return [run for level in self._levels for run in level]

    def _slots(self, hi: U64) -> tuple[U64, npt.NDArray[np.uint8]]:
        slot = hi >> np.uint64(64 - self._bits)
        return slot >> np.uint64(3), np.left_shift(np.uint8(1), (slot & np.uint64(7)).astype(np.uint8))

    def _mark(self, hi: U64) -> None:
        byte, bit = self._slots(hi)
        np.bitwise_or.at(self._filter, byte, bit)

    def contains(self, hi: U64, lo: U64) -> Mask:
        found = np.zeros(len(hi), dtype=np.bool_)
        if not self._count:
            return found
        byte, bit = self._slots(hi)
        maybe = np.flatnonzero(self._filter[byte] & bit)
        if len(maybe):
            qhi, qlo = hi[maybe], lo[maybe]
            hit = np.zeros(len(maybe), dtype=np.bool_)
            for rh, rl in self._runs():
                hit |= find(rh, rl, qhi, qlo) >= 0
            found[maybe] = hit
        return found

    def add(self, hi: U64, lo: U64) -> None:
        """Add keys that are not in the set yet (and not repeated among themselves)."""
        if not len(hi):
            return
        self._count += len(hi)
        if self._count << 3 > 1 << self._bits:  # keep at most 1 bit in 8 set: rebuild a larger bitmap
            while self._count << 3 > 1 << self._bits:
                self._bits += 2
            self._filter = np.zeros(1 << (self._bits - 3), dtype=np.uint8)
            for rh, _ in self._runs():
                self._mark(rh)
        self._mark(hi)
        order = np.argsort(hi)
        run = (hi[order], lo[order])
        level = 0
        while True:
            if level == len(self._levels):
                self._levels.append([])
            runs = self._levels[level]
            runs.append(run)
            if len(runs) < self.FANOUT:
                return
            all_hi = np.concatenate([h for h, _ in runs])
            order = np.argsort(all_hi, kind="stable")  # sorted runs: timsort merges them
            run = (all_hi[order], np.concatenate([lw for _, lw in runs])[order])
            self._levels[level] = []
            level += 1
