"""The stored state in memory while a run plans: sorted key columns, and the new keys a run meets.

Why columns and not a dict: per contact the planner needs the key, the fingerprint of what was sent and
the flag; as numpy columns that is 25 bytes a contact (a CPython dict of tuples is over 200), and a
whole page is looked up with one ``searchsorted``. The emails stay in the store, read back only for
leavers and for the commit (``worker.syncstate.source``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from worker.syncstate.keys import I64, U64, find

U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

#: Flag codes in the columns (the stored state's flags "", "s" and "u", see worker.synced).
SUBSCRIBED, SKIPPED, UNSUBSCRIBED = 0, 1, 2
FLAG_CODE = {"": SUBSCRIBED, "s": SKIPPED, "u": UNSUBSCRIBED}
FLAG_TEXT = ("", "s", "u")


@dataclass
class KeyIndex:
    """The stored entries' keys (sorted by (hi, lo)), fingerprints and flag codes (read-only once loaded)."""

    hi: U64
    lo: U64
    fp: U64
    flag: U8

    @classmethod
    def allocate(cls, n: int) -> KeyIndex:
        """Columns for ``n`` entries, filled in place by the loader (one allocation, no concatenation)."""
        return cls(np.empty(n, np.uint64), np.empty(n, np.uint64), np.empty(n, np.uint64), np.empty(n, np.uint8))

    def __len__(self) -> int:
        return len(self.hi)

    def find(self, qhi: U64, qlo: U64) -> I64:
        """Position of each key, or -1 for keys not stored."""
        return find(self.hi, self.lo, qhi, qlo)

    def subscribed(self) -> int:
        return int(np.count_nonzero(self.flag == SUBSCRIBED))


class SeenKeys:
    """The keys a run met that are not in the stored state: its dedupe set for new emails.

    A few sorted runs of (hi, lo) columns, each larger than the next (a binary counter): adding a
    page's keys appends a run and merges it into the one before while that one is not larger
    (``np.insert``), so each key is
    copied about log2(n / page) times in all, and a lookup is one ``searchsorted`` per run. 16 bytes a
    key, plus the run being merged.
    """

    def __init__(self) -> None:
        self._runs: list[tuple[U64, U64]] = []

    def __len__(self) -> int:
        return sum(len(h) for h, _ in self._runs)

    def contains(self, hi: U64, lo: U64) -> Mask:
        found = np.zeros(len(hi), dtype=np.bool_)
        for rh, rl in self._runs:
            found |= find(rh, rl, hi, lo) >= 0
        return found

    def add(self, hi: U64, lo: U64) -> None:
        """Add keys that are not in the set yet (and not repeated among themselves)."""
        if not len(hi):
            return
        order = np.argsort(hi, kind="stable")
        self._runs.append((hi[order], lo[order]))
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= len(self._runs[-1][0]):
            bh, bl = self._runs.pop()
            ah, al = self._runs.pop()
            at = np.searchsorted(ah, bh)
            self._runs.append((np.insert(ah, at, bh), np.insert(al, at, bl)))
