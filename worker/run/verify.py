"""``segment-export verify``: read the list back from ActiveCampaign and compare it with the synced state.

Why: the engine trusts its memory (the synced state) and sends only what changed, so changes made in
ActiveCampaign (contacts deleted, people unsubscribing, an admin cleaning the list) go unnoticed until
a ``--full`` run. The drift check (``worker.run.drift``) says *that* the list drifted, for one request;
verify says *who*, by email, for a read of the whole list:

1. the list's subscribed contacts, then its unsubscribed ones, pages of 100 in id order
   (``GET contacts?listid=&status=&orders[id]=ASC&id_greater=``), each email looked up in the state;
2. for each contact the state holds subscribed that the list has unsubscribed, its list record
   (``GET contacts/{id}/contactLists``): ``campaign``, ``message``, ``unsubreason`` or
   ``unsubscribeAutomation`` set means the person did it;
3. what is left: contacts the state holds subscribed that the list has in neither status (deleted).

Every request is a "read" (``worker.activecampaign.limiter``): inside the account's shared budget, in
the non-bulk lane, and only while no poll or lookup of a run waits, so a run's bulk POSTs are never
delayed. 100 contacts a request: at 5 requests a second that is 30,000 contacts a minute (a million in
about half an hour); in the non-bulk share a verify gets while nothing else runs (3.3 a second), about
20,000 a minute.

Resumable: a checkpoint (phase, last id, what was found so far, which state entries were seen, as
bitmaps) is written every ``CHECKPOINT_PAGES`` pages; a verify that stops goes on from it when run again,
as long as the synced state is the one it was reading against.

The report (``exports/<export>/verify/<id>/report.json``, and ``report.txt``, the printed table) lists:
``missing`` (subscribed in the state, not on the list), ``unsubscribed_by_person`` (never repaired),
``unsubscribed_by_other``, ``unsubscribed_by_export`` (a removal of a run that did not finish, folded in as
doubtful, that ActiveCampaign carried out: this export's own), and on an owned list ``unexpected``
(subscribed, never sent by this export).
``--repair`` (``repair``) changes the synced state so that the next run makes the list right: missing
contacts are forgotten (the next run sends them again), unsubscribed ones are marked skipped (never
re-subscribed, and the drift check stops counting them) except this export's own, which keep their
"unsubscribed by this export since" time as flag ``u`` (re-entry may undo them, as after any removal),
and on an owned list the unexpected ones are taken in as subscribed, so the next run unsubscribes those
not in the segment, behind the removal guard.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from worker.activecampaign.client import ActiveCampaignClient
from worker.activecampaign.readmission import OWN_UNSUBSCRIBE_FIELDS
from worker.contacts.synced import SyncedState
from worker.run.commit import install
from worker.run.erasure import erasure_intervened, erasure_mark
from worker.run.runbook import RunKeys, export_prefix
from worker.settings import Export
from worker.state import StateError, StateStore
from worker.syncstate import index as codes
from worker.syncstate.keys import email_keys
from worker.syncstate.merge import Changes, bits_for
from worker.syncstate.source import ShardMissing

log = logging.getLogger("segment_export.verify")

SUBSCRIBED, UNSUBSCRIBED = 1, 2
CHECKPOINT_PAGES = 20
PHASES = ("subscribed", "unsubscribed", "classify", "done")


def verify_prefix(export: str) -> str:
    return f"{export_prefix(export)}verify/"


@dataclass
class Findings:
    """What a verify found (the JSON report); emails are in full (the store is access-controlled)."""

    export: str
    list_id: int
    owns_list: bool
    verify_id: str
    base_run_id: str  # the synced state compared against: the run that committed it, and its generation
    base_generation: str
    started_at: str
    finished_at: str = ""
    requests: int = 0
    synced_subscribed: int = 0
    list_subscribed: int = 0
    list_unsubscribed: int = 0
    missing: list[str] = field(default_factory=list)
    unsubscribed_by_person: list[str] = field(default_factory=list)
    unsubscribed_by_other: list[str] = field(default_factory=list)
    #: Doubtful in the state (a removal of a run that did not finish, folded in) and unsubscribed through the
    #: API: this export's own unsubscription, kept as such by repair (re-entry may undo it), never "skipped".
    unsubscribed_by_export: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)  # owned list only
    others_subscribed: int = 0  # shared list: subscribed contacts this export did not send (not drift)
    repaired: dict[str, int] | None = None
    erasure_mark: str = ""  # the store's erasure mark when verify started (worker.run.erasure)

    @property
    def differences(self) -> int:
        return (len(self.missing) + len(self.unsubscribed_by_person) + len(self.unsubscribed_by_other)
                + len(self.unsubscribed_by_export) + len(self.unexpected))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self, report_uri: str = "") -> str:
        """The report for people: counts only, never an email."""
        owned = "owned by this export" if self.owns_list else "shared"
        rows = [
            ("synced state: subscribed", self.synced_subscribed, ""),
            ("ActiveCampaign: subscribed", self.list_subscribed, ""),
            ("ActiveCampaign: unsubscribed", self.list_unsubscribed, ""),
            ("missing from ActiveCampaign", len(self.missing), "repair: sent again by the next run"),
            ("unsubscribed by the person", len(self.unsubscribed_by_person),
             "never re-subscribed (repair: marked skipped)"),
            ("unsubscribed by someone else", len(self.unsubscribed_by_other),
             "not re-subscribed (repair: marked skipped)"),
            ("unsubscribed by this export, run unfinished", len(self.unsubscribed_by_export),
             "repair: recorded as this export's unsubscription (re-entry re-subscribes)"),
        ]
        if self.owns_list:
            rows.append(("subscribed, never sent by this export", len(self.unexpected),
                         "repair: the next run unsubscribes them, behind the removal guard"))
        else:
            rows.append(("subscribed by others (shared list)", self.others_subscribed, "not drift"))
        width = max(len(r[0]) for r in rows)
        lines = [f"verify {self.export}: list {self.list_id} ({owned}) against the synced state of run "
                 f"{self.base_run_id}"]
        lines += [f"  {name:<{width}}  {count:>9,}  {note}".rstrip() for name, count, note in rows]
        lines.append(f"  {self.differences:,} differences; {self.requests:,} requests")
        if self.repaired is not None:
            lines.append("  repaired: " + ", ".join(f"{k} {v:,}" for k, v in self.repaired.items()))
        if report_uri:
            lines.append(f"  report: {report_uri}")
        return "\n".join(lines) + "\n"


@dataclass
class _Checkpoint:
    verify_id: str
    base: list[str]
    phase: str
    after: int
    started_at: str
    requests: int
    seen_subscribed: Any  # np bool array over the state's entries
    seen_unsubscribed: Any
    to_classify: list[list[Any]]  # [email, contact id, the entry's "unsubscribed by this export since" or 0]
    classified: int
    person: list[str]
    other: list[str]
    unexpected: list[str]
    others_subscribed: int
    list_subscribed: int
    list_unsubscribed: int
    ours: list[str] = field(default_factory=list)  # doubtful entries the API unsubscribed: this export's
    erasure: str = ""  # the store's erasure mark when this verify started

    def encode(self) -> bytes:
        raw = {k: v for k, v in asdict(self).items() if not k.startswith("seen_")}
        raw["seen_subscribed"] = _bits(self.seen_subscribed)
        raw["seen_unsubscribed"] = _bits(self.seen_unsubscribed)
        return orjson.dumps(raw)

    @classmethod
    def decode(cls, data: bytes, entries: int) -> _Checkpoint:
        raw = orjson.loads(data)
        raw["seen_subscribed"] = _unbits(raw["seen_subscribed"], entries)
        raw["seen_unsubscribed"] = _unbits(raw["seen_unsubscribed"], entries)
        return cls(**raw)


def _bits(mask: Any) -> str:
    return base64.b64encode(zlib.compress(np.packbits(mask).tobytes(), 6)).decode()


def _unbits(text: str, n: int) -> Any:
    packed = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8)
    return np.unpackbits(packed, count=n).astype(np.bool_)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Verifier:
    """One verify of one export (resumed from its checkpoint when there is one for the same state)."""

    def __init__(self, store: StateStore, export: Export, client: ActiveCampaignClient, *,
                 on_page: Callable[[str, int], None] | None = None) -> None:
        self.store = store
        self.export = export
        self.client = client
        self.on_page = on_page
        self.prefix = verify_prefix(export.name)

    # ------------------------------------------------------------------------------------ reading
    async def run(self) -> tuple[Findings, SyncedState, str | None]:
        """Read the list and compare; returns the findings and the state they were made against."""
        synced, version = await asyncio.to_thread(SyncedState.load, self.store, RunKeys(self.export.name, "-").synced)
        if synced.manifest is None:
            raise StateError(f"export {self.export.name} has no committed synced state yet: run it first")
        base = [synced.run_id, synced.manifest.generation]
        cp = await asyncio.to_thread(self._resume, base, len(synced))
        if await asyncio.to_thread(erasure_intervened, self.store, cp.erasure):
            await asyncio.to_thread(self._drop, cp.verify_id)
            raise ForgetIntervened()
        index = synced.index
        pages = 0
        for phase, status in (("subscribed", SUBSCRIBED), ("unsubscribed", UNSUBSCRIBED)):
            if PHASES.index(cp.phase) > PHASES.index(phase):
                continue
            while True:
                page, left = await self.client.list_page(self.export.list_id, status, cp.after)
                cp.requests += 1
                if page:
                    self._compare(cp, synced, status, page)
                    cp.after = page[-1][0]
                if self.on_page is not None:
                    self.on_page(phase, cp.requests)
                if len(page) < 100 or len(page) >= left:  # meta.total counts this page and the ones after
                    break
                pages += 1
                if pages % CHECKPOINT_PAGES == 0:
                    await asyncio.to_thread(self._save, cp)
            cp.phase, cp.after = PHASES[PHASES.index(phase) + 1], 0
            await asyncio.to_thread(self._save, cp)
        while cp.classified < len(cp.to_classify):
            email, contact_id, *rest = cp.to_classify[cp.classified]
            record = await self.client.list_record(int(contact_id), self.export.list_id, kind="read")
            cp.requests += 1
            own = record is not None and any(record.get(k) not in (None, "", "0", 0) for k in OWN_UNSUBSCRIBE_FIELDS)
            doubtful = bool(rest and rest[0])  # a removal this export may have sent (worker.run.commit)
            (cp.person if own else cp.ours if doubtful else cp.other).append(email)
            cp.classified += 1
            if cp.classified % CHECKPOINT_PAGES == 0:
                await asyncio.to_thread(self._save, cp)
        subscribed = index.flag == codes.SUBSCRIBED
        missing_at = np.flatnonzero(subscribed & ~cp.seen_subscribed & ~cp.seen_unsubscribed)
        try:
            missing = [email for _, email in synced.source.emails_at(missing_at.astype(np.int64))]
        except ShardMissing:
            await asyncio.to_thread(self._drop, cp.verify_id)
            raise StateReplaced(self.export.name) from None
        findings = Findings(
            export=self.export.name, list_id=self.export.list_id, owns_list=self.export.owns_list,
            verify_id=cp.verify_id, base_run_id=base[0], base_generation=base[1], started_at=cp.started_at,
            finished_at=_now_iso(), requests=cp.requests, synced_subscribed=int(np.count_nonzero(subscribed)),
            list_subscribed=cp.list_subscribed, list_unsubscribed=cp.list_unsubscribed, missing=missing,
            unsubscribed_by_person=cp.person, unsubscribed_by_other=cp.other, unsubscribed_by_export=cp.ours,
            unexpected=cp.unexpected,
            others_subscribed=cp.others_subscribed, erasure_mark=cp.erasure)
        if await asyncio.to_thread(erasure_intervened, self.store, cp.erasure):
            await asyncio.to_thread(self._drop, cp.verify_id)
            raise ForgetIntervened()
        return findings, synced, version

    def _compare(self, cp: _Checkpoint, synced: SyncedState, status: int, page: list[tuple[int, str]]) -> None:
        index = synced.index
        emails = [email for _, email in page]
        hi, lo = email_keys(emails)
        positions = index.lookup(hi, lo, emails).tolist()
        for (contact_id, email), pos in zip(page, positions, strict=True):
            ours = pos >= 0 and int(index.flag[pos]) == codes.SUBSCRIBED
            if status == SUBSCRIBED:
                cp.list_subscribed += 1
                if pos >= 0:
                    cp.seen_subscribed[pos] = True
                if not ours:
                    if self.export.owns_list:
                        cp.unexpected.append(email)
                    else:
                        cp.others_subscribed += 1
            else:
                cp.list_unsubscribed += 1
                if pos >= 0:
                    cp.seen_unsubscribed[pos] = True
                if ours and not cp.seen_subscribed[pos]:
                    cp.to_classify.append([email, contact_id, int(index.since[pos])])

    # ------------------------------------------------------------------------------------ records
    def _resume(self, base: list[str], entries: int) -> _Checkpoint:
        current = self.store.get(f"{self.prefix}current")
        if current:
            data = self.store.get(f"{self.prefix}{current.decode()}/checkpoint")
            if data:
                cp = _Checkpoint.decode(data, entries)
                if cp.base == base and cp.phase != "done":
                    log.info("verify %s resumes (%s, %d requests so far)", cp.verify_id, cp.phase, cp.requests)
                    return cp
        verify_id = f"v-{int(time.time())}-{base[1][-8:]}"
        cp = _Checkpoint(verify_id, base, "subscribed", 0, _now_iso(), 0, np.zeros(entries, np.bool_),
                         np.zeros(entries, np.bool_), [], 0, [], [], [], 0, 0, 0, [], erasure_mark(self.store))
        self.store.put(f"{self.prefix}current", verify_id.encode())
        self._save(cp)
        return cp

    def _drop(self, verify_id: str) -> None:
        """Forget a verify whose findings are void (its checkpoint was made against a replaced state)."""
        self.store.delete(f"{self.prefix}{verify_id}/checkpoint")
        self.store.delete(f"{self.prefix}current")

    def _save(self, cp: _Checkpoint) -> None:
        self.store.put(f"{self.prefix}{cp.verify_id}/checkpoint", cp.encode())

    def write_report(self, findings: Findings) -> str:
        """Store the JSON report and the table; drop the checkpoint; returns the report's URI."""
        folder = f"{self.prefix}{findings.verify_id}/"
        uri = self.store.uri(f"{folder}report.json")
        self.store.put(f"{folder}report.json", orjson.dumps(findings.as_dict(), option=orjson.OPT_INDENT_2))
        self.store.put(f"{folder}report.txt", findings.table(uri).encode())
        self.store.delete(f"{folder}checkpoint")
        self.store.delete(f"{self.prefix}current")
        if erasure_intervened(self.store, findings.erasure_mark):  # a forget began before it could scrub this
            self.store.delete(f"{folder}report.json")
            self.store.delete(f"{folder}report.txt")
            raise ForgetIntervened()
        return uri


class StateReplaced(StateError):
    """A run committed a new synced state while verify read the list: the findings are void."""

    def __init__(self, export: str) -> None:
        super().__init__(
            f"a run of export {export} committed a new synced state while verify was reading the list, so what "
            f"verify found no longer describes it; nothing was changed and no report was kept. Run verify again "
            f"when no run of the export is in progress: it starts over against the new state")


class ForgetIntervened(StateError):
    """A forget ran (or is unfinished) since verify started: its findings may name a forgotten person."""

    def __init__(self) -> None:
        super().__init__(
            "a forget ran while verify was reading the list, or one is unfinished (then run that forget again "
            "to finish it); so that no forgotten email is written back, verify kept no report and changed "
            "nothing. Run verify again")


class StateChanged(Exception):
    """The synced state is no longer the one verify compared against: repair refused."""


def still_current(store: StateStore, export: Export, findings: Findings, synced: SyncedState,
                  version: str | None) -> None:
    """Raise ``StateChanged`` unless the synced state in the store is still the one verify compared against
    (``version``), and no forget ran since: what repair does first in ActiveCampaign (managed tags) must
    not act on findings a run has made stale. Blocking; the caller holds the export's lease."""
    if synced.run_id != findings.base_run_id or synced.manifest is None \
            or synced.manifest.generation != findings.base_generation:
        raise StateChanged("the synced state changed since verify read the list")
    if SyncedState.load(store, RunKeys(export.name, "-").synced)[1] != version:
        raise StateChanged("a run committed the synced state, or claimed it for a plan, since verify read the list")
    if erasure_intervened(store, findings.erasure_mark):
        raise StateChanged("a forget ran since verify read the list; its people must not be written back")


def repair(store: StateStore, export: Export, findings: Findings, synced: SyncedState, version: str | None,
           report_uri: str) -> dict[str, int]:
    """Change the synced state so that the next run makes the list right (module docstring); blocking.

    The caller holds the export's lease. The state must still be the one verify read against (the swap
    is a compare-and-swap on its version): a run that committed since makes the findings stale.
    """
    if synced.run_id != findings.base_run_id or synced.manifest is None \
            or synced.manifest.generation != findings.base_generation:
        raise StateChanged("the synced state changed since verify read the list")
    if erasure_intervened(store, findings.erasure_mark):
        raise StateChanged("a forget ran since verify read the list; its people must not be written back")
    index = synced.index
    changes = Changes(bits_for(len(synced) + len(findings.unexpected)))
    try:
        for email in findings.missing:
            changes.delete(email)
        unsubscribed = findings.unsubscribed_by_person + findings.unsubscribed_by_other
        ours = set(findings.unsubscribed_by_export)
        both = unsubscribed + sorted(ours)
        if both:
            hi, lo = email_keys(both)
            for email, pos in zip(both, index.lookup(hi, lo, both).tolist(), strict=True):
                if pos < 0:
                    continue
                if email in ours:  # this export's own removal: "unsubscribed by it since", as a commit records it
                    changes.set(email, 0, "u", int(index.since[pos]), "")  # a leaver's: no tags (removed first)
                else:
                    changes.set(email, int(index.fp[pos]), "s")
        for email in findings.unexpected:
            changes.set(email, 0, "")  # taken in: the next run unsubscribes it unless it is in the segment
        # Nobody's run: the state keeps the run, counts and refresh it had (worker.run.commit.install).
        installed = install(store, RunKeys(export.name, "-"), synced, version, changes, None, None)
    finally:
        changes.close()
    if installed is None:
        raise StateChanged("a run committed the synced state while the repair was written")
    done = {"forgotten_missing": len(findings.missing), "marked_skipped": len(unsubscribed),
            "kept_unsubscribed_by_export": len(ours), "taken_in_unexpected": len(findings.unexpected)}
    log.info("verify repair committed", extra={"export": export.name, "repaired": done})
    return done
