"""Read -> map -> validate -> dedupe -> diff -> batch: the run's plan, produced one page at a time.

The planner consumes snapshot pages and yields ``PlanPart``s that the engine writes to the state store
and hands to the sender while reading goes on. Why streaming: the first bulk request leaves after the
first page, so reading a million profiles overlaps with the 40 minutes of sending instead of preceding
it; and memory holds one page, not the snapshot. Its only reads are the leavers' emails, streamed from
the synced state's source at the end.

Why keys and not emails: dedupe and diff work on 128-bit email keys (``worker.syncstate.keys``), a
page at a time with numpy: the stored state is sorted key columns, the emails met so far that it does
not hold are a ``SeenKeys`` set. Memory per contact is a few dozen bytes instead of a few hundred.

Determinism matters: a resumed run re-plans the same snapshot against the same (uncommitted) synced
state and must get the same batches with the same numbers, so nothing here depends on time,
randomness or hash order.

Managed tags (``remove_tags``): the planner also says which tags each contact must lose: those the
synced state remembers this export adding (``KeyIndex.tags_at``) that the contact is no longer sent. A
leaver loses all of them; an updated or re-entering contact those missing from its new tags (compared
ignoring case, as ActiveCampaign matches tags). ``worker.run.tags`` removes them; the commit stores the
tags sent (``PlannedBatch`` contacts' ``tags``).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from worker.contacts.mapping import MappedPage, Mapper, normalize_email, valid_email
from worker.contacts.synced import Entry, SyncedState, tag_name
from worker.snapshot import Page, with_column
from worker.syncstate import index as codes
from worker.syncstate.index import SeenKeys
from worker.syncstate.keys import email_keys, first_occurrences

MAX_CONTACTS = 250
MAX_BODY_BYTES = 399_999
_BODY_OVERHEAD = len(b'{"contacts":[]}')
#: Leavers per plan part at the end of a run (their emails are read back from the synced state).
LEAVERS_PER_PART = 5000
_NEW = 255  # flag code of an email the synced state does not hold
_OP_ADD, _OP_UPDATE, _OP_READMIT = 1, 2, 3
_BE64 = np.dtype(">u8")

ADD, UPDATE, REMOVE = "a", "u", "r"
#: A contact this export unsubscribed (it left the segment) that is back: re-subscribed through
#: contactLists when its unsubscription was not the person's own, then sent like an update.
READMIT = "m"
_OPS = ("", ADD, UPDATE, READMIT)  # by the planner's op codes


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
    untag: dict[int, list[Any]] = field(default_factory=dict)  # position in the batch -> tags it loses

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
    to_untag: int = 0  # contacts that lose tags this export added (managed tags)

    def add(self, other: Counts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


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
    #: Dropped leavers (forgotten without a request) that lose tags this export added: (email, tags).
    untag_dropped: list[tuple[str, list[Any]]] = field(default_factory=list)
    tagging: bool = False  # the planner manages tags: its batches' tags are recorded and untag is meaningful


class Planner:
    """Diffs pages against the synced state and packs what changed into batches.

    ``synced`` is the loaded state (or, in tests, a dict email -> entry). The planner keeps its own
    ``seen`` mask over the state's entries and its own set of new keys, so a state may be planned
    against more than once.
    """

    def __init__(self, mapper: Mapper, synced: SyncedState | Mapping[str, Entry], *, full: bool = False,
                 unsubscribe_leavers: bool = True, readmit: bool = True, max_contacts: int = MAX_CONTACTS,
                 max_body_bytes: int = MAX_BODY_BYTES, leavers_per_part: int = LEAVERS_PER_PART,
                 manage_tags: bool = False) -> None:
        """``manage_tags``: work out the tags each contact loses (``remove_tags``; see the module docstring)."""
        self.mapper = mapper
        self.synced = synced if isinstance(synced, SyncedState) else SyncedState.from_entries(synced)
        self.full = full
        self.unsubscribe_leavers = unsubscribe_leavers
        self.readmit = readmit
        self.max_contacts = max_contacts
        self.max_body_bytes = max_body_bytes
        self.leavers_per_part = leavers_per_part
        self.manage_tags = manage_tags
        self._lost_tags: dict[tuple[str, str], list[str]] = {}  # (stored tags, tags sent) -> names lost
        self._index = self.synced.index
        self._seen = np.zeros(len(self._index), dtype=np.bool_)  # stored entries met in the snapshot
        #: Stored entries whose email is on a row that is invalid for another reason (a bad field value):
        #: the person is still in the segment, so not a leaver; kept apart from ``_seen`` so that a valid
        #: row of the same email later is still sent, not taken for a duplicate.
        self._held = np.zeros(len(self._index), dtype=np.bool_)
        self._new = SeenKeys()  # keys met that the state does not hold
        self.totals = Counts()
        #: Re-entering contacts -> when this export unsubscribed them (unix seconds): re-entry checks that
        #: AC's unsubscription is not older than that (then it was someone else's, not ours to undo).
        self.left_at: dict[str, int] = {}
        self._next_batch = 0
        self._open = self._new_batch()
        self._open_readmit: PlannedBatch | None = None  # re-entries travel in batches of their own
        self._ready: list[PlannedBatch] = []

    def _new_batch(self) -> PlannedBatch:
        batch = PlannedBatch(self._next_batch)
        self._next_batch += 1
        return batch

    def _push(self, email: str, fp: str, op: str, contact: dict[str, Any], nbytes: int,
              untag: list[Any] | None = None) -> None:
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
        if untag:
            batch.untag[len(batch.emails)] = untag
        batch.emails.append(email)
        batch.fingerprints.append(fp)
        batch.ops.append(op)
        batch.contacts.append(contact)
        batch.size += 1 + nbytes

    def plan_page(self, number: int, page: Page) -> PlanPart:
        """Plan one snapshot page; batches not yet full stay open for the next page."""
        counts = Counts(profiles=len(page.rows))
        invalid: list[tuple[str, int, str | None, str]] = []
        skipped: list[str] = []
        kept_out: list[str] = []
        mapped = self.mapper.map_page(page.rows)
        if mapped.invalid:
            counts.invalid += len(mapped.invalid)
            invalid.extend((page.source, line, raw, why) for line, raw, why in mapped.invalid)
            self._hold([raw for _, raw, _ in mapped.invalid if raw is not None])
        if mapped.emails:
            self._diff(mapped, counts, skipped, kept_out)
        part = self._part(number, counts, invalid, [], skipped)
        part.kept_out = kept_out
        return part

    def _hold(self, raws: list[str]) -> None:
        """Mark the stored entries of invalid rows whose email itself is valid: they are not leavers.

        Why: a row left out for a bad field value (a date a field cannot take, a name too long) still
        says the person is in the segment; taking them for a leaver would unsubscribe a member for a
        typo in another column, and bulk import never re-subscribes them once the typo is fixed.
        """
        emails = [e for e in (normalize_email(raw) for raw in raws) if e and valid_email(e)]
        if emails and len(self._index):
            hi, lo = email_keys(emails)
            pos = self._index.lookup(hi, lo, emails)
            self._held[pos[pos >= 0]] = True

    def lost_tags(self, stored: str, sent: Sequence[str] | None) -> list[Any]:
        """The items of ``stored`` (the synced state's tags, ``worker.contacts.tagsets``) whose names ``sent``
        no longer holds, ignoring case; as stored, so each keeps when this export first sent it."""
        if not stored:
            return []
        key = (stored, orjson.dumps(sent).decode() if sent else "")
        found = self._lost_tags.get(key)
        if found is None:
            keep = {t.casefold() for t in sent or ()}
            found = [t for t in orjson.loads(stored) if tag_name(t).casefold() not in keep]
            if len(self._lost_tags) > 65_536:
                self._lost_tags.clear()
            self._lost_tags[key] = found
        return found

    def _diff(self, page: MappedPage, counts: Counts, skipped: list[str], kept_out: list[str]) -> None:
        """Dedupe and diff a page's valid contacts (in page order; the first of an email wins), then batch."""
        index, seen, emails = self._index, self._seen, page.emails
        n = len(emails)
        hi, lo = email_keys(emails)
        fps = np.frombuffer(bytes.fromhex("".join(page.fingerprints)), dtype=_BE64)
        pos = index.lookup(hi, lo, emails)
        stored = pos >= 0
        dup = np.zeros(n, dtype=np.bool_)
        rows = np.flatnonzero(stored)  # stored emails: by their entry's position (exact)
        if len(rows):
            at = pos[rows]
            again = np.ones(len(rows), dtype=np.bool_)
            again[np.unique(at, return_index=True)[1]] = False  # the first row of each entry on this page
            dup[rows] = again | seen[at]  # or met on an earlier page
            seen[at] = True
        rows = np.flatnonzero(~stored)  # new emails: by key, against the keys met so far
        if len(rows):
            again = ~first_occurrences(hi[rows], lo[rows])
            first = rows[~again]
            known = self._new.contains(hi[first], lo[first])
            dup[rows[again]] = True
            dup[first[known]] = True
            unknown = first[~known]
            self._new.add(hi[unknown], lo[unknown])
        live = ~dup
        if len(index):
            safe = np.where(stored, pos, 0)
            flag = np.where(stored, index.flag[safe], _NEW)
            same = stored & (index.fp[safe] == fps)
            # "Subscribed" with an unsubscription time: a removal or re-entry whose outcome is not known (its
            # plan was given up, worker.run.settle); the person may be unsubscribed by this export right now.
            # (Its fingerprint is 0, so with readmit off it is sent again as an update.)
            doubtful = live & (flag == codes.SUBSCRIBED) & (index.since[safe] != 0)
        else:
            flag, same = np.full(n, _NEW, dtype=np.uint8), stored
            doubtful = np.zeros(n, dtype=np.bool_)
        is_new, returning = live & (flag == _NEW), live & (flag == codes.UNSUBSCRIBED)
        if self.readmit:  # a doubtful one goes the re-entry way: AC's list record decides
            returning |= doubtful
        if self.full:  # everything is sent again, skipped ones too (AC skips them again)
            update = live & ((flag == codes.SUBSCRIBED) | (flag == codes.SKIPPED)) & ~returning
            skip = unchanged = np.zeros(n, dtype=np.bool_)
        else:
            subscribed = live & (flag == codes.SUBSCRIBED) & ~returning
            skip, unchanged, update = live & (flag == codes.SKIPPED), subscribed & same, subscribed & ~same
        counts.duplicates += n - int(np.count_nonzero(live))
        counts.to_add += int(np.count_nonzero(is_new))
        counts.to_update += int(np.count_nonzero(update))
        counts.unchanged += int(np.count_nonzero(unchanged))
        counts.skipped += int(np.count_nonzero(skip))
        skipped.extend(emails[i] for i in np.flatnonzero(skip).tolist())
        op = np.zeros(n, dtype=np.uint8)
        op[is_new], op[update] = _OP_ADD, _OP_UPDATE
        if self.readmit:
            counts.to_readmit += int(np.count_nonzero(returning))
            op[returning] = _OP_READMIT
            for i in np.flatnonzero(returning).tolist():
                self.left_at[emails[i]] = int(index.since[pos[i]])
        else:  # re-entering, unsubscribed by us, readmit is off: stays out
            counts.skipped += int(np.count_nonzero(returning))
            kept_out.extend(emails[i] for i in np.flatnonzero(returning).tolist())
        send = np.flatnonzero(op)
        untag: dict[int, list[Any]] = {}
        if self.manage_tags and index.tag is not None:
            for i in np.flatnonzero(update | (returning if self.readmit else False)).tolist():
                lost = self.lost_tags(index.tags_at(int(pos[i])), page.contacts[i].get("tags"))
                if lost:
                    untag[i] = lost
            counts.to_untag += len(untag)
        if len(send):
            self._pack(page, send.tolist(), [_OPS[code] for code in op[send].tolist()], untag)

    def _pack(self, page: MappedPage, rows: list[int], ops: list[str], untag: dict[int, list[Any]]) -> None:
        """Append the page's ``rows`` to the open batch in order (re-entries go to their own): planning's
        hot loop. Same rule as ``_push`` (a batch is closed before the contact that would pass either
        limit), with the open batch's lists held in locals."""
        all_emails, all_contacts, all_sizes, all_fps = page.emails, page.contacts, page.sizes, page.fingerprints
        batch = self._open
        emails, fps, batch_ops, contacts = batch.emails, batch.fingerprints, batch.ops, batch.contacts
        size, count = batch.size, len(contacts)
        max_contacts, max_bytes = self.max_contacts, self.max_body_bytes
        limit = max_bytes - _BODY_OVERHEAD
        for i, op in zip(rows, ops, strict=True):
            nbytes = all_sizes[i]
            if op == READMIT:
                self._push(all_emails[i], all_fps[i], op, all_contacts[i], nbytes, untag.get(i))
                continue
            if count and (count >= max_contacts or size + 1 + nbytes > max_bytes):
                batch.size = size
                self._ready.append(batch)
                batch = self._open = self._new_batch()
                emails, fps, batch_ops, contacts = batch.emails, batch.fingerprints, batch.ops, batch.contacts
                size, count = batch.size, 0
            if nbytes > limit:
                raise ValueError(f"one contact serializes to {nbytes} bytes, over the bulk import limit")
            if untag and i in untag:
                batch.untag[count] = untag[i]
            emails.append(all_emails[i])
            fps.append(all_fps[i])
            batch_ops.append(op)
            contacts.append(all_contacts[i])
            size += 1 + nbytes
            count += 1
        batch.size = size

    def finish(self, number: int) -> Iterator[PlanPart]:
        """The last parts: leavers (stored but not seen), then every batch still open.

        Leavers come in key order, ``leavers_per_part`` at a time, their emails read from the synced
        state's source. The first of these parts carries every leaver's count, so the engine's removal
        backstop decides on all of them before any leaver's batch is handed over.
        """
        index, unseen = self._index, ~(self._seen | self._held)
        self._new = SeenKeys()  # the dedupe set is not needed any more
        subscribed, skipped = index.flag == codes.SUBSCRIBED, index.flag == codes.SKIPPED
        if self.unsubscribe_leavers:
            remove, drop = unseen & subscribed, unseen & skipped
        else:
            remove, drop = np.zeros(len(index), dtype=np.bool_), unseen & (subscribed | skipped)
        leavers = np.flatnonzero(remove | drop)
        counts = Counts(to_remove=int(np.count_nonzero(remove)), dropped=int(np.count_nonzero(drop)))
        emails = self.synced.source.emails_at(leavers)  # one pass over the shards, in key order
        removing = remove[leavers].tolist()
        per = self.leavers_per_part
        parts = max(1, -(-len(removing) // per))
        tagged = self.manage_tags and index.tag is not None
        if tagged:
            assert index.tag is not None
            counts.to_untag = int(np.count_nonzero(index.tag[leavers] != 0))  # a stored set other than ""
        for k in range(parts):
            dropped: list[str] = []
            untag_dropped: list[tuple[str, list[Any]]] = []
            for is_removal in removing[k * per:(k + 1) * per]:
                position, email = next(emails)
                lost = self.lost_tags(index.tags_at(position), None) if tagged else []
                if is_removal:
                    contact, body = self.mapper.leaver(email)
                    self._push(email, "", REMOVE, contact, len(body), lost)
                else:
                    dropped.append(email)
                    if lost:
                        untag_dropped.append((email, lost))
            if k == parts - 1:
                for batch in (self._open, self._open_readmit):
                    if batch is not None and batch.contacts:
                        self._ready.append(batch)
                self._open, self._open_readmit = self._new_batch(), None
            self._ready.sort(key=lambda b: b.number)
            part = self._part(number + k, counts if k == 0 else Counts(), [], dropped, [])
            part.untag_dropped = untag_dropped
            yield part

    def _part(self, number: int, counts: Counts, invalid: list, dropped: list[str],
              skipped: list[str]) -> PlanPart:
        self.totals.add(counts)
        ready, self._ready = self._ready, []
        return PlanPart(number, ready, invalid, dropped, skipped, counts, tagging=self.manage_tags)

    def plan(self, pages: Iterable[Page]) -> Iterator[PlanPart]:
        """All parts for a snapshot, page by page, then the leavers."""
        n = 0
        column = self.mapper.export.mapping["email"]
        for page in with_column(pages, column, f"exports.{self.mapper.export.name}.mapping.email"):
            yield self.plan_page(n, page)
            n += 1
        yield from self.finish(n)
