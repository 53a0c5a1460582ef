"""Read -> map -> validate -> dedupe -> diff -> batch: the run's plan, produced one page at a time.

The planner is pure (no I/O of its own): it consumes snapshot pages and yields ``PlanPart``s that the
engine writes to the state store and hands to the sender while reading goes on. Why streaming: the
first bulk request leaves after the first page, so reading a million profiles overlaps with the 40
minutes of sending instead of preceding it; and memory holds one page, not the snapshot.

Determinism matters: a resumed run re-plans the same snapshot against the same (uncommitted) synced
state and must get the same batches with the same numbers, so nothing here depends on time,
randomness or hash order.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from worker.mapping import Mapper
from worker.snapshot import Page
from worker.synced import SKIPPED, UNSUBSCRIBED, Entry

MAX_CONTACTS = 250
MAX_BODY_BYTES = 399_999
_BODY_OVERHEAD = len(b'{"contacts":[]}')

ADD, UPDATE, REMOVE = "a", "u", "r"
#: A contact this export unsubscribed (it left the segment) that is back: re-subscribed through
#: contactLists when its unsubscription was not the person's own, then sent like an update.
READMIT = "m"


def tune_gc() -> None:
    """Raise the cyclic GC's first threshold for a process that plans runs.

    The planner allocates and keeps (for the length of a batch) hundreds of thousands of small
    dicts and lists; at CPython's default threshold of 700 allocations the collector rescans them
    constantly, which cost about a fifth of the pipeline's time in measurements. Nothing here makes
    reference cycles, so collecting less often costs no memory worth counting.
    """
    if gc.get_threshold()[0] < 50_000:
        gc.set_threshold(50_000, 20, 100)


@dataclass(slots=True)
class PlannedBatch:
    """One bulk-import request: contacts[i] is emails[i]; ops[i] says why it is sent."""

    number: int
    emails: list[str] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    ops: list[str] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    size: int = _BODY_OVERHEAD - 1  # bytes of {"contacts":[...]} once the first comma is not needed

    def to_record(self) -> dict[str, Any]:
        return {"n": self.number, "ops": "".join(self.ops), "emails": self.emails, "fps": self.fingerprints,
                "contacts": self.contacts}

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> PlannedBatch:
        return cls(rec["n"], rec["emails"], rec["fps"], list(rec["ops"]), rec["contacts"])


@dataclass(slots=True)
class Counts:
    """What the plan found; the engine adds the send outcomes to make the event's counts."""

    profiles: int = 0
    invalid: int = 0
    duplicates: int = 0
    unchanged: int = 0
    skipped: int = 0  # known from earlier runs to be unsubscribed in ActiveCampaign; not resent
    to_add: int = 0
    to_readmit: int = 0  # left, were unsubscribed by this export, and came back
    to_update: int = 0
    to_remove: int = 0
    dropped: int = 0  # leavers forgotten without a call (on_leave = "keep", or skipped ones)

    def add(self, other: Counts) -> None:
        for name in self.__slots__:  # type: ignore[attr-defined]
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


@dataclass(slots=True)
class PlanPart:
    """Everything planned from one snapshot page (or the leavers, at the end)."""

    number: int
    batches: list[PlannedBatch]
    invalid: list[tuple[str, int, str | None, str]]  # (source, line, email if any, reason)
    dropped: list[str]  # emails to forget from the synced state without sending anything
    skipped: list[str]  # emails known to be unsubscribed in ActiveCampaign: counted, reported, not sent
    counts: Counts
    kept_out: list[str] = field(default_factory=list)  # re-entering, unsubscribed by us, readmit is off


class Planner:
    """Diffs pages against the synced state and packs what changed into batches."""

    def __init__(self, mapper: Mapper, synced: dict[str, Entry], *, full: bool = False,
                 unsubscribe_leavers: bool = True, readmit: bool = True, max_contacts: int = MAX_CONTACTS,
                 max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.mapper = mapper
        self.synced = synced
        self.full = full
        self.unsubscribe_leavers = unsubscribe_leavers
        self.readmit = readmit
        self.max_contacts = max_contacts
        self.max_body_bytes = max_body_bytes
        self.seen: set[str] = set()
        self.totals = Counts()
        self._next_batch = 0
        self._open = self._new_batch()
        self._open_readmit: PlannedBatch | None = None  # re-entries travel in batches of their own
        self._ready: list[PlannedBatch] = []

    def _new_batch(self) -> PlannedBatch:
        batch = PlannedBatch(self._next_batch)
        self._next_batch += 1
        return batch

    def _push(self, email: str, fp: str, op: str, contact: dict[str, Any], nbytes: int) -> None:
        readmit = op == READMIT
        batch = self._open_readmit if readmit else self._open
        if batch is None or (batch.contacts and (len(batch.contacts) >= self.max_contacts
                                                 or batch.size + 1 + nbytes > self.max_body_bytes)):
            if batch is not None:
                self._ready.append(batch)
            batch = self._new_batch()
            if readmit:
                self._open_readmit = batch
            else:
                self._open = batch
        if _BODY_OVERHEAD + nbytes > self.max_body_bytes:
            raise ValueError(f"one contact serializes to {nbytes} bytes, over the bulk import limit")
        batch.emails.append(email)
        batch.fingerprints.append(fp)
        batch.ops.append(op)
        batch.contacts.append(contact)
        batch.size += 1 + nbytes

    def plan_page(self, number: int, page: Page) -> PlanPart:
        """Plan one snapshot page; batches not yet full stay open for the next page."""
        counts = Counts(profiles=len(page.rows) + len(page.errors), invalid=len(page.errors))
        invalid: list[tuple[str, int, str | None, str]] = [(page.source, ln, None, why) for ln, why in page.errors]
        skipped: list[str] = []
        kept_out: list[str] = []
        seen, synced, full, mapper, push = self.seen, self.synced, self.full, self.mapper, self._push
        map_ = mapper.map
        seen_add, synced_get = seen.add, synced.get
        for line, profile in page.rows:
            m = map_(profile)
            if m.__class__ is str:
                counts.invalid += 1
                raw = profile.get(mapper.export.mapping["email"])
                invalid.append((page.source, line, raw if isinstance(raw, str) else None, m))
                continue
            email = m.email
            if email in seen:
                counts.duplicates += 1
                continue
            seen_add(email)
            old = synced_get(email)
            if old is None:
                counts.to_add += 1
                push(email, m.fingerprint, ADD, m.contact, len(m.body))
            elif old[1] == UNSUBSCRIBED:
                if self.readmit:
                    counts.to_readmit += 1
                    push(email, m.fingerprint, READMIT, m.contact, len(m.body))
                else:
                    counts.skipped += 1
                    kept_out.append(email)
            elif full:
                counts.to_update += 1
                push(email, m.fingerprint, UPDATE, m.contact, len(m.body))
            elif old[1] == SKIPPED:
                counts.skipped += 1
                skipped.append(email)
            elif old[0] == m.fingerprint:
                counts.unchanged += 1
            else:
                counts.to_update += 1
                push(email, m.fingerprint, UPDATE, m.contact, len(m.body))
        part = self._part(number, counts, invalid, [], skipped)
        part.kept_out = kept_out
        return part

    def finish(self, number: int) -> PlanPart:
        """The last part: leavers (synced but not seen), and every batch still open."""
        counts = Counts()
        dropped: list[str] = []
        seen = self.seen
        for email in sorted(self.synced):
            if email in seen:
                continue
            flag = self.synced[email][1]
            if flag == UNSUBSCRIBED:
                continue  # unsubscribed by an earlier run and still out: nothing to do, keep the record
            if self.unsubscribe_leavers and flag != SKIPPED:
                counts.to_remove += 1
                contact, body = self.mapper.leaver(email)
                self._push(email, "", REMOVE, contact, len(body))
            else:
                counts.dropped += 1
                dropped.append(email)
        for batch in (self._open, self._open_readmit):
            if batch is not None and batch.contacts:
                self._ready.append(batch)
        self._ready.sort(key=lambda b: b.number)
        self._open, self._open_readmit = self._new_batch(), None
        return self._part(number, counts, [], dropped, [])

    def _part(self, number: int, counts: Counts, invalid: list, dropped: list[str],
              skipped: list[str]) -> PlanPart:
        self.totals.add(counts)
        ready, self._ready = self._ready, []
        return PlanPart(number, ready, invalid, dropped, skipped, counts)

    def plan(self, pages: Iterable[Page]) -> Iterator[PlanPart]:
        """All parts for a snapshot, page by page, then the leavers."""
        n = 0
        for page in pages:
            yield self.plan_page(n, page)
            n += 1
        yield self.finish(n)
