"""The export's committed state: which emails were synced, with the fingerprint of what was sent.

One entry per email: ``(fingerprint, flag, since)``. ``flag``:

- empty: synced and subscribed to the list by this export;
- ``s`` (SKIPPED): ActiveCampaign skipped it because the person unsubscribed from the list (or
  re-entry found their own unsubscription): counted ``skipped``, never resent, never re-subscribed;
- ``u`` (UNSUBSCRIBED): this export unsubscribed it because it left the segment, at unix time
  ``since``. Kept (instead of forgotten) so that when the person comes back the export knows the
  unsubscription was its own and may re-subscribe them (``readmit``).

How it is stored (format v2, ``worker.syncstate``): a small manifest at ``exports/<export>/synced``
naming the run that committed it, its counts, and its shards: key ranges of entries sorted by a 128-bit
hash of the email, written under a fresh generation and made current by swapping the manifest. Why:
loading is streaming (one shard at a time), a run holds only fixed-width key columns in memory
(about 26 bytes a contact) and reads emails back only where it needs them (leavers, the commit).

Format v1 (one text object: a ``#segment-export synced v1 run=<id>`` header, then sorted lines
``email<TAB>fingerprint<TAB>flag[<TAB>since]``) is still read; the first commit after it writes v2.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from hashlib import blake2b
from typing import Any

from worker.state import StateStore
from worker.syncstate.index import FLAG_TEXT, KeyIndex
from worker.syncstate.manifest import HEADER_V1, Committed, Manifest, Refresh, SyncedFormatError, version_of
from worker.syncstate.source import MemorySource, Source, StoreSource, block_of, parse_v1

HEADER = HEADER_V1.decode()  # format v1's header (read, and written by tests that migrate it)
SKIPPED = "s"
UNSUBSCRIBED = "u"

#: email -> (fingerprint, flag, since); ``since`` is "" unless flag is UNSUBSCRIBED.
Entry = tuple[str, str, str]

__all__ = ["HEADER", "SKIPPED", "UNSUBSCRIBED", "Entry", "SyncedFormatError", "SyncedState", "base_of", "encode_v1"]

#: The base of a plan made before anything was committed.
NO_STATE = "none"


def base_of(data: bytes | None) -> str:
    """Which committed state a plan is made against: a digest of the stored bytes (a v2 manifest names a
    fresh generation, so no two commits share one), or ``NO_STATE``. Backend-neutral, unlike a version."""
    return blake2b(data, digest_size=12).hexdigest() if data else NO_STATE


class SyncedState:
    """A committed synced state as a run uses it: its facts, its key columns and where its entries are.

    ``index`` (key, fingerprint and flag columns, sorted by key) is what planning and the removal
    guard read; ``source`` streams the entries with their emails (leavers, the commit's merge).
    """

    def __init__(self, source: Source | None = None, run_id: str = "", *, manifest: Manifest | None = None,
                 base: str = NO_STATE) -> None:
        self._source = source if source is not None or manifest is not None else MemorySource(block_of(()))
        self.run_id = run_id
        self.manifest = manifest
        self.base = base  # see base_of
        self._index: KeyIndex | None = None
        self._subscribed: int | None = manifest.subscribed if manifest else None

    def __len__(self) -> int:
        return self.manifest.entries if self.manifest else len(self.source)

    @property
    def source(self) -> Source:
        """Where the entries (with their emails) are read back from, in key order."""
        if self._source is None:
            raise SyncedFormatError("this synced state was decoded from its manifest alone; load it with "
                                    "SyncedState.load(store, key) to read its entries")
        return self._source

    @property
    def committed(self) -> Committed | None:
        """The counts and failure report of the run that committed this state (v2 only)."""
        return self.manifest.committed if self.manifest else None

    def committed_by(self, run_id: str) -> Committed | None:
        """What ``run_id`` committed, when this state is its commit or one of the few made after it."""
        return self.manifest.committed_by(run_id) if self.manifest else None

    @property
    def refresh(self) -> Refresh | None:
        """The newest refresh committed into this state (v2 manifests written since it was recorded)."""
        return self.manifest.refresh if self.manifest else None

    @property
    def index(self) -> KeyIndex:
        """The key columns, read from the source on first use (one shard at a time)."""
        if self._index is None:
            source = self.source
            index = KeyIndex.allocate(len(source))
            source.fill(index)
            index.share(source.emails_at)
            self._index = index
        return self._index

    def subscribed(self) -> int:
        """Contacts this export holds subscribed to the list (the removal guard's base)."""
        if self._subscribed is None:
            self._subscribed = self.index.subscribed()
        return self._subscribed

    # ---------------------------------------------------------------------------------- building
    @classmethod
    def from_entries(cls, entries: Mapping[str, Entry], run_id: str = "") -> SyncedState:
        """A state held in memory (tests, and a v1 state being migrated)."""
        return cls(MemorySource(block_of((email, fp, flag, since) for email, (fp, flag, since) in entries.items())),
                   run_id)

    @classmethod
    def decode(cls, data: bytes | None) -> SyncedState:
        """The state stored as ``data``: a v1 state whole, or a v2 manifest's facts (run id, counts) alone."""
        if not data:
            return cls()
        if version_of(data) == 2:
            manifest = Manifest.decode(data)
            return cls(None, manifest.run_id, manifest=manifest, base=base_of(data))
        run_id, entries = parse_v1(data)
        return cls(MemorySource(block_of(entries)), run_id, base=base_of(data))

    @classmethod
    def load(cls, store: StateStore, key: str) -> tuple[SyncedState, str | None]:
        """The state at ``key`` with its key columns read, and its version for the commit's compare-and-swap."""
        got = store.get_versioned(key)
        if got is None:
            return cls(), None
        data, version = got
        if version_of(data) == 2:
            manifest = Manifest.decode(data)
            state = cls(StoreSource(store, manifest), manifest.run_id, manifest=manifest, base=base_of(data))
        else:
            state = cls.decode(data)
        state.index  # noqa: B018 - read the columns now, in the caller's thread
        return state, version

    def claimed(self, data: bytes) -> SyncedState:
        """This state under ``data``, its manifest with a plan's claim added (``worker.run.plans.claim``): the
        same entries and key columns, a new base."""
        state = SyncedState(self._source, self.run_id, manifest=Manifest.decode(data), base=base_of(data))
        state._index, state._subscribed = self._index, self._subscribed
        return state

    # ---------------------------------------------------------------------------------- reading
    def tags_of(self, emails: list[str]) -> list[str]:
        """Each email's stored tags (``KeyIndex.tags_at``; "" for none, or an email the state does not hold):
        what the commit stamps against and what ``forget`` and ``verify --repair`` remove first."""
        from worker.syncstate.keys import email_keys

        index = self.index
        if index.tag is None or not len(index) or not emails:
            return [""] * len(emails)
        hi, lo = email_keys(emails)
        return [index.tags_at(pos) if pos >= 0 else "" for pos in index.lookup(hi, lo, emails).tolist()]

    def entries(self) -> Iterator[tuple[str, Entry]]:
        """Every (email, entry) in key order, read shard by shard (tests, tools; a run never needs them all)."""
        for block in self.source.blocks():
            for email, fp, flag, since in zip(block.emails, block.fp.tolist(), block.flag.tolist(),
                                              block.since.tolist(), strict=True):
                yield email, (f"{fp:016x}" if fp else "", FLAG_TEXT[flag], str(since) if since else "")


def encode_v1(entries: Mapping[str, Entry], run_id: str) -> bytes:
    """Format v1 (what versions before v2 wrote): kept to make v1 states in tests of the migration."""
    lines = [f"{HEADER} run={run_id}"]
    lines.extend(f"{email}\t{fp}\t{flag}\t{since}" if since else f"{email}\t{fp}\t{flag}"
                 for email, (fp, flag, since) in sorted(entries.items()))
    lines.append("")
    return "\n".join(lines).encode()


def tag_name(item: Any) -> str:
    """The name of one of an entry's stored tags (``KeyIndex.tags_at``: a JSON array whose items are
    ``"name"`` or ``["name", since]``; ``worker.contacts.tagsets``)."""
    return str(item[0]) if isinstance(item, list) else str(item)


def tag_since(item: Any) -> int:
    """When this export first sent the tag of one stored item (0: not known, a bare name)."""
    return int(item[1]) if isinstance(item, list) and len(item) > 1 else 0
