"""A run's plan has an identity: the synced state it was made against, the snapshot, the export's config.

Why: a plan's batch records are only meaningful against the state it was diffed with. Before plans had an
identity, a resumed run re-planned against whatever state was current, skipped batches by number and
committed the first attempt's part headers; when another run had committed in between, the two plans
were mixed (issue 15): contacts held values in ActiveCampaign that the synced state did not describe, or
a run could never commit. Now:

- ``PlanKey``: the base (``worker.contacts.synced.base_of``: the committed state's digest), the snapshot's
  identity (its parts' names, sizes and stamps), the config that shapes the plan (the export's
  settings, its resolved custom fields, ``full``, the page size) and ``PLAN_FORMAT``. The plan id is their
  digest, and the plan's records live under it (``worker.run.runbook``), so two plans never share a record,
  and a worker of another version never resumes a plan whose records it would read differently: it folds
  that plan in (``worker.run.settle``) and plans afresh.
- ``exports/<export>/plans/<run_id>.<plan>`` registers an open plan (``PlanHead``) before its first part is
  written, so the next run of the export finds every plan that may have sent something without listing
  every run's records.
- The registration also names the plan's refresh (id and instant): while the plan is live, an older refresh
  is stale as if this one had committed (``open_refresh``), and a fold that installs the plan keeps the newest
  of the folded plans' refreshes in the state (``worker.run.settle``). Else an older refresh arriving while a
  newer one's plan is interrupted would fold it in and undo what it sent (issue 15, follow-up review 1).
- A plan is *live* while the state it was made against is current. Every commit first folds every live
  plan in (its own, and others' through ``worker.run.settle``), so a plan whose base is no longer current
  has been accounted for: its registration is garbage, and its run plans afresh.
- Before a fresh plan is registered, its run *claims* the state (``claim``): one compare-and-swap of the
  manifest that adds the run, its lease token and the time and changes nothing else, and the plan is made
  against the claimed state. So a commit made against the state as it was before the claim (a run, a fold,
  ``forget`` or ``verify --repair`` that lost the export's lease while its write was on the way) fails its
  compare-and-swap instead of making the new plan's base stale before that plan was folded in: the rule
  "every commit folds every live plan" holds even when the lease does not serialise the writers.

Runs of one export are serialised by the export's lease; the claim is what makes a writer that lost the
lease harmless at the commit. Where there is no manifest to swap (before the export's first commit, a
state still in format v1, migrated by its next commit) a fresh plan is registered unclaimed, and a writer
without a plan of its own (a fold, ``forget``) whose commit was on the way when its lease expired can still
commit over it; that plan's run then re-plans without folding what it sent (README, run protocol).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson

from worker.contacts.synced import SyncedState
from worker.run.refreshes import newest
from worker.run.runbook import RunKeys, plans_prefix
from worker.state import StateStore
from worker.syncstate.manifest import Refresh

#: The format of a plan's records (parts, batch and tag records) and of the planner's batches. Part of every
#: plan id: change it with any change to what a plan's records hold or to how the planner cuts batches, so
#: a worker upgraded mid-run folds the plan in instead of resuming it with another reading of its records.
PLAN_FORMAT = 2
#: The plan id of records written before plans had an identity (``runs/<run_id>/plan/``, ``batches/``).
LEGACY = "legacy"


@dataclass(frozen=True)
class PlanKey:
    """What a plan is made against; equal keys make equal plans (the planner is deterministic)."""

    base: str
    snapshot: str
    shape: str

    @property
    def id(self) -> str:
        """The digest of the key and ``PLAN_FORMAT`` (read when asked, so a test can play another version)."""
        text = f"{PLAN_FORMAT}\0{self.base}\0{self.snapshot}\0{self.shape}"
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def shape_of(*parts: object) -> str:
    """A digest of everything besides the state and the snapshot that decides a plan's batches."""
    return hashlib.blake2b("\0".join(repr(p) for p in parts).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class PlanHead:
    """An open plan's registration: which run, which plan, made against which state, and when."""

    export: str
    run_id: str
    plan: str
    base: str
    snapshot: str = ""
    shape: str = ""
    made_at: float = 0.0
    refresh_id: str = ""  # the refresh the plan syncs, and its instant ("": none known, e.g. ``sync``)
    refreshed_at: str = ""

    @property
    def refresh(self) -> Refresh | None:
        """The plan's refresh, when it has an instant (one without orders nothing: ``commit.newest``)."""
        return Refresh(self.refresh_id, self.refreshed_at) if self.refreshed_at else None

    @property
    def key(self) -> str:
        return head_key(self.export, self.run_id, self.plan)

    def book_plan(self) -> str | None:
        """The plan argument of this plan's ``Runbook`` (None: the layout of runs made before plans)."""
        return None if self.plan == LEGACY else self.plan

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, data: bytes) -> PlanHead:
        raw: dict[str, Any] = orjson.loads(data)
        return cls(str(raw["export"]), str(raw["run_id"]), str(raw["plan"]), str(raw["base"]),
                   str(raw.get("snapshot", "")), str(raw.get("shape", "")), float(raw.get("made_at", 0.0)),
                   str(raw.get("refresh_id", "")), str(raw.get("refreshed_at", "")))


def head_key(export: str, run_id: str, plan: str) -> str:
    return f"{plans_prefix(export)}{run_id}.{plan}"


def register(store: StateStore, export: str, run_id: str, key: PlanKey, refresh: Refresh | None = None) -> PlanHead:
    """Record that ``run_id`` plans ``key`` (before any of its parts, so before any of its batches is sent), for
    ``refresh``: while the plan is open, an older refresh is stale (``open_refresh``)."""
    head = PlanHead(export, run_id, key.id, key.base, key.snapshot, key.shape, time.time(),
                    refresh.refresh_id if refresh else "", refresh.occurred_at if refresh else "")
    store.put_if_absent(head.key, head.encode())
    return head


def claim(store: StateStore, export: str, run_id: str, token: int | None, synced: SyncedState,
          version: str | None) -> tuple[SyncedState, str | None] | None:
    """Claim the committed state for a fresh plan of ``run_id``: swap in its manifest with ``claim`` set (the
    run, the lease's fencing token, the time) and nothing else changed. Returns the claimed state and its
    version, to plan and commit against; None when the state changed since it was read (the caller looks
    again). No manifest (no state yet, or format v1): nothing to swap, the state is returned as it is.

    Why: a commit is a compare-and-swap against the version its writer read. Without the claim, a writer that
    lost the lease and read the state before this run's plan existed could still commit over it; the plan's
    base would then be stale though nothing folded it in. With it, that commit's version is gone.
    """
    if synced.manifest is None or version is None:
        return synced, version
    claimed = replace(synced.manifest, extra={**synced.manifest.extra, "claim": {
        "run_id": run_id, "token": token, "at": round(time.time(), 3)}})
    data = claimed.encode()
    key = RunKeys(export, run_id).synced
    if not store.replace_if_unchanged(key, data, version):
        return None
    got = store.get_versioned(key)
    if got is None or got[0] != data:
        return None
    return synced.claimed(data), got[1]


def live_plans(store: StateStore, export: str, base: str, run_id: str) -> list[PlanHead]:
    """The export's plans made against ``base`` (the current state), oldest first.

    Registrations of plans made against an earlier state are deleted on the way: a commit folded them in.
    Records of this run made before plans had an identity are adopted once, as a plan against ``base``
    (what those runs assumed); that registration stays, folded or not, until the run's records go, so the
    same records are never adopted twice.
    """
    live: list[PlanHead] = []
    adopted = False
    for key in store.list(plans_prefix(export)):
        data = store.get(key)
        if data is None:
            continue
        head = PlanHead.decode(data)
        adopted = adopted or (head.run_id == run_id and head.plan == LEGACY)
        if head.base == base:
            live.append(head)
        elif head.plan != LEGACY or not _legacy_records(store, export, head.run_id):
            store.delete(key)
    if not adopted and _legacy_records(store, export, run_id):
        head = PlanHead(export, run_id, LEGACY, base, made_at=time.time())
        store.put_if_absent(head.key, head.encode())
        live.append(head)
    live.sort(key=lambda h: (h.made_at, h.run_id, h.plan))
    return live


def open_refresh(store: StateStore, export: str, base: str) -> Refresh | None:
    """The newest refresh among the export's open plans made against ``base`` (the current state).

    Why: a plan of a newer refresh that was interrupted has sent part of that refresh; an older refresh that
    arrived meanwhile must be as stale as if the newer one had committed, or it would fold that plan in and
    undo what it sent (leavers unsubscribed again, joiners removed; with ``readmit = false`` for good).
    Read only: ``live_plans`` does the housekeeping.
    """
    found: Refresh | None = None
    for key in store.list(plans_prefix(export)):
        data = store.get(key)
        if data is None:
            continue
        head = PlanHead.decode(data)
        if head.base == base:
            found = newest(found, head.refresh)
    return found


def _legacy_records(store: StateStore, export: str, run_id: str) -> bool:
    legacy = RunKeys(export, run_id)
    return bool(store.list(legacy.plan) or store.list(legacy.batches))
