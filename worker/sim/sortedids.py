"""A sorted set of integer ids, so paging a list's members by id never scans the whole list.

Contacts get increasing ids, so the common insert (a new contact subscribing) is an append; moving an
existing contact between subscribed and unsubscribed is a memmove, which stays cheap at a million ids.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence


class SortedIds:
    """Ascending unique ints with O(log n) membership, append-fast insert and index-based slicing."""

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        self._ids: list[int] = []

    def add(self, value: int) -> None:
        ids = self._ids
        if not ids or ids[-1] < value:
            ids.append(value)
            return
        pos = bisect_left(ids, value)
        if pos == len(ids) or ids[pos] != value:
            ids.insert(pos, value)

    def discard(self, value: int) -> None:
        ids = self._ids
        pos = bisect_left(ids, value)
        if pos < len(ids) and ids[pos] == value:
            del ids[pos]

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int):
            return False
        pos = bisect_left(self._ids, value)
        return pos < len(self._ids) and self._ids[pos] == value

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[int]:
        return iter(self._ids)

    @property
    def ids(self) -> Sequence[int]:
        """The backing sequence (read-only by convention) for bisect-based paging."""
        return self._ids


def page(ids: Sequence[int], *, id_greater: int | None, offset: int, limit: int,
         descending: bool = False) -> tuple[list[int], int]:
    """One page of an ascending id sequence: (ids on the page, total matching before offset/limit).

    Works on any ascending Sequence that supports len() and indexing, including `range`, so the
    "all contacts" case (ids are contiguous; contacts are never deleted) costs nothing to build.
    """
    start = bisect_right(ids, id_greater) if id_greater is not None else 0
    total = len(ids) - start
    if descending:
        hi = len(ids) - offset
        lo = max(start, hi - limit)
        return ([ids[i] for i in range(hi - 1, lo - 1, -1)] if hi > start else []), total
    lo = start + offset
    hi = min(len(ids), lo + limit)
    return [ids[i] for i in range(lo, hi)], total
