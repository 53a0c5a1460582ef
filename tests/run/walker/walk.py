"""The crash-point walk: for every step of a run, crash before it or lose its answer, then let a competing run
in (or not), resume, and check the invariants once everything has settled.

``Walk`` holds what every case shares (the simulator, the snapshots, the base state saved once);
``Walk.case`` plays one case in a fresh copy of the base. ``python -m tests.run.walker`` walks every case
and prints the table; ``tests/run/walker/test_walker.py`` runs the same cases under pytest.

The invariants, after the last delivery of every run has ended:

- list exact: the list's subscribed members are the newest committed refresh's members, less the people
  who unsubscribed themselves; nobody in it was unsubscribed, nobody out of it is subscribed;
- values: every member holds the newest refresh's values in ActiveCampaign;
- synced state = ActiveCampaign: every entry synced as subscribed has the fingerprint of what AC holds for
  the contact; entries this export unsubscribed are unsubscribed in AC; every subscribed contact is synced;
- one completion event per run: exactly one event id for a run that ran to its end, none for a stale one,
  never ``export.failed``, not even as a transient failure once the run's commit landed (the worker's last
  attempt would publish it); every run the synced state says committed published its event; no run stuck;
- tags (the tagged walk, managed tags): every member holds exactly this export's tags for its values, and
  nobody outside the newest refresh holds any of them; the tag someone else added stays, and so does the
  static tag of a contact who held it before the first run (a leaver of r1); the synced state
  remembers the tags each subscribed contact holds; a tag link is deleted again only when the first
  DELETE's answer was lost (nothing removed twice);
- nothing sent twice but what the README allows: a contact is sent the same payload again only when the
  bulk import that carried it before was never recorded as accepted (its answer lost, or in flight when its
  process died), or when it was in a batch that a plan intended (its part written) and never recorded as
  accepted (a plan given up: its batches are doubtful, and their contacts are sent again); a
  re-subscription is repeated only when the first one's answer was lost, or for such a contact; and nobody
  who unsubscribed themselves is re-subscribed.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.run.walker.world import (
    EXPORT,
    LEFT_IN_BASE,
    LIST,
    OTHERS_TAG,
    R0,
    R1,
    R2,
    R3,
    RA,
    RB,
    SELF_UNSUBSCRIBED,
    STATIC_TAG,
    Case,
    Competitor,
    Fault,
    FaultKind,
    Refresh,
    Step,
    Stores,
    World,
    email,
    our_tags,
    person,
)
from worker.contacts.mapping import Mapper
from worker.contacts.synced import SyncedState
from worker.contacts.tagsets import decode_tags
from worker.run.runbook import run_id_for
from worker.sim import SimClient
from worker.state import StateError

REFRESHES = (RA, RB, R0, R1, R2, R3)
#: People someone else tags in ActiveCampaign (the tagged walk): a leaver, a changed member, a returning one.
TAGGED_BY_OTHERS = (0, 5, 25)
#: People who already held the export's static tag (a form gave it an hour before the first run): a member
#: of the base who leaves in r1. The export sends the tag too, but the link is not its doing: never removed.
TAGGED_BEFORE = (1,)
COMPETING = {Competitor.SAME: R1, Competitor.OLDER: R0, Competitor.NEWER: R2}


def write_snapshots(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    uris = {}
    for r in REFRESHES:
        path = folder / f"{r.name}.jsonl"
        path.write_bytes(b"".join(orjson.dumps(person(i, v)) + b"\n" for i, v in sorted(r.members.items())))
        uris[r.name] = path.as_uri()
    return uris


@dataclass
class Outcome:
    case: Case
    seconds: float


class Walk:
    """The shared parts of every case, and the base state: rA, rB, and two people's own unsubscriptions."""

    def __init__(self, sim: SimClient, stores: Stores, snapshots: dict[str, str], *, tagged: bool = False,
                 readmit: bool = True) -> None:
        """``tagged``: the export adds a static tag and one from ``tag_field`` and removes them again;
        ``readmit``: the export's re-entry setting."""
        self.sim, self.stores, self.snapshots, self.tagged = sim, stores, snapshots, tagged
        self.readmit = readmit
        self.base = ""
        self.reference: list[Step] = []

    def world(self, fresh: bool = False, **kw: Any) -> World:
        """A world on a fresh copy of the base state (``fresh``: an empty store); ``kw`` go to ``World``."""
        name, store = self.stores.fresh(None if fresh else self.base)
        if self.stores.kind == "file":
            state_url = (self.stores.root / name).as_uri()
        else:
            state_url = f"s3://{self.stores.bucket}/{name}"
        return World(self.sim, store, state_url, self.snapshots, tagged=self.tagged, readmit=self.readmit, **kw)

    def prepare(self) -> None:
        """Build the base once (two real runs), keep it, and walk the reference delivery of r1."""
        self.sim.reset()
        if self.tagged:
            self.sim.freeze_time(datetime.now(UTC) - timedelta(hours=1))
            for i in TAGGED_BEFORE:
                self.sim.add_contact(email(i), tags=[STATIC_TAG])
            self.sim.freeze_time(None)
        world = self.world(fresh=True)
        self.base = self.stores.last_name
        for r in (RA, RB):
            assert asyncio.run(world.until_done(world.spec(r))) == "published", f"the base's {r.name} failed"
        for i in SELF_UNSUBSCRIBED:
            self.sim.unsubscribe(email(i), LIST, "campaign")
        if self.tagged:
            for i in TAGGED_BY_OTHERS:
                self.sim.add_contact(email(i), tags=[OTHERS_TAG])
        self.sim.save("walk-base")
        world = self.world()
        self.sim.restore("walk-base")
        asyncio.run(world.deliver(world.spec(R1)))
        self.reference = list(world.trace)
        assert self.reference and all(s.process == 1 for s in self.reference)
        problems = check(world, {world.spec(R1).run_id: world.spec(R1)}, R1)
        assert not problems, f"the reference run itself breaks the invariants: {problems}"

    def steps(self) -> list[Step]:
        """The reference's steps in a stable order (by label, then occurrence), so that a case names the same
        step in every process that walks it, whatever order the run's concurrent steps took there. Repeated
        polls of a batch beyond one per batch are left out: how many a run needs depends on timing."""
        posts = sum(s.label == "POST import/bulk_import" for s in self.reference)
        kept = [s for s in self.reference if not (s.label == "GET import/info" and s.occurrence > posts)]
        return sorted(kept, key=lambda s: (s.kind, s.label, s.occurrence))

    def cases(self) -> Iterator[tuple[Step | None, FaultKind | None, Competitor]]:
        """Every (step, fault, competitor); step None is "after the last step": no fault, the delivery's ack
        is lost and it comes back."""
        for step in self.steps():
            for kind in FaultKind:
                if kind is FaultKind.FAIL and step.kind != "store":
                    continue  # a failing store is a store step's fault only
                for competitor in Competitor:
                    yield step, kind, competitor
        for competitor in Competitor:
            yield None, None, competitor

    def case(self, step: Step | None, kind: FaultKind | None, competitor: Competitor) -> Outcome:
        t0 = time.monotonic()
        fault = None if step is None or kind is None else Fault(step.label, step.occurrence, kind)
        case = Case(step, fault, competitor)
        world = self.world()
        self.sim.restore("walk-base")
        try:
            case.violations = asyncio.run(self._play(world, fault, competitor))
        except Exception as exc:  # the walk's own machinery failing is a finding too, never hidden
            case.violations = [f"error: {type(exc).__name__}: {exc}"[:300]]
        return Outcome(case, time.monotonic() - t0)

    async def _play(self, world: World, fault: Fault | None, competitor: Competitor) -> list[str]:
        r1 = world.spec(R1)
        runs = {r1.run_id: r1}
        await world.deliver(r1, fault)
        if fault is not None and world.processes[0].faulted is None:
            return [f"walk: the fault's step {fault.label} #{fault.occurrence} never came"]
        newest = R1
        if competitor is not Competitor.NONE:
            refresh = COMPETING[competitor]
            other = world.spec(refresh, run_id_for(EXPORT, f"{world.tag}{refresh.name}\0requested")
                               if refresh is R1 else None)
            runs[other.run_id] = other
            await world.until_done(other)
            if competitor is Competitor.NEWER:
                newest = R2
        await world.until_done(r1)
        return check(world, runs, newest)


# ------------------------------------------------------------------------------------------ the invariants


def check(world: World, runs: dict[str, Any], newest: Refresh) -> list[str]:
    """Every invariant that does not hold, as "kind: detail" (empty: the world is exact)."""
    found: list[str] = []
    members = world.sim.members(LIST)
    subscribed = {e for e, m in members.items() if m["status"] == "subscribed"}
    out = SELF_UNSUBSCRIBED if world.readmit else (*SELF_UNSUBSCRIBED, *LEFT_IN_BASE)  # re-entry off: kept out
    expected = {email(i): person(i, v) for i, v in newest.members.items() if i not in out}
    found += [f"member unsubscribed: {e}" for e in sorted(expected.keys() - subscribed)]
    found += [f"non-member subscribed: {e}" for e in sorted(subscribed - expected.keys())]
    found += [f"stale values in AC: {e}" for e in sorted(expected.keys() & subscribed)
              if (members[e]["first_name"], members[e]["last_name"]) != (expected[e]["First"], expected[e]["Last"])]
    found += _synced_matches_ac(world, members, subscribed)
    found += _one_event_per_run(world, runs)
    found += _nothing_sent_twice(world, members)
    if world.tagged:
        found += _tags_exact(world, members, newest)
    if world.sim.stats()["resubscribed_own"]:
        found.append("re-subscribed someone who unsubscribed themselves")
    return found


def _synced_matches_ac(world: World, members: dict[str, dict[str, Any]], subscribed: set[str]) -> list[str]:
    found = []
    try:
        state, _ = SyncedState.load(world.store, f"exports/{EXPORT}/synced")
        entries = dict(state.entries())
    except StateError as exc:
        return [f"synced state unreadable: {exc}"[:300]]
    mapper = Mapper(world.export)
    own = {email(i) for i in SELF_UNSUBSCRIBED}
    for e, (fp, flag, _since) in sorted(entries.items()):
        m = members.get(e)
        if flag == "":
            if m is None:
                found.append(f"synced as subscribed, unknown to AC: {e}")
                continue
            held = {"Email": e, "First": m["first_name"], "Last": m["last_name"]}
            if world.tagged:  # what tag_field held, as AC's tags show it (the static tag is the export's)
                held["Tags"] = ",".join(sorted(t for t in m["tags"] if t.startswith("t:")))
            mapped = mapper.map(held)
            if isinstance(mapped, str) or mapped.fingerprint != fp:
                found.append(f"synced fingerprint is not what AC holds: {e}")
            if m["status"] != "subscribed" and e not in own:
                found.append(f"synced as subscribed, not subscribed in AC: {e}")
        elif flag == "u" and (m is None or m["status"] == "subscribed"):
            found.append(f"synced as unsubscribed by this export, subscribed in AC: {e}")
        elif flag == "s" and m is not None and m["status"] == "subscribed":
            found.append(f"synced as skipped (unsubscribed), subscribed in AC: {e}")
    found += [f"subscribed in AC, not synced as subscribed: {e}" for e in sorted(subscribed)
              if entries.get(e, ("", "?", ""))[1] != ""]
    return found


def _one_event_per_run(world: World, runs: dict[str, Any]) -> list[str]:
    found = []
    ids: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for event in world.published:
        ids[event["run_id"]].setdefault(event["id"], event)
        if ids[event["run_id"]][event["id"]] != event:
            found.append(f"one event id, two different events: run {event['run_id']}")
        if event["type"] != "export.completed":
            found.append(f"export.failed published: run {event['run_id']} ({event.get('error', {}).get('code')})")
    for run_id in runs:
        ends = world.outcomes.get(run_id, [])
        last = ends[-1] if ends else "never delivered"
        n = len(ids.get(run_id, {}))
        if last in ("stuck", "failed", "never delivered"):
            found.append(f"run never finished: {run_id} ({last})")
        elif last == "stale" and n:
            found.append(f"a stale run published {n} event(s): {run_id}")
        elif last != "stale" and n != 1:
            found.append(f"completion events not exactly one: {n} for run {run_id}")
    try:
        manifest = SyncedState.load(world.store, f"exports/{EXPORT}/synced")[0].manifest
    except StateError:
        return found  # reported by the synced-state check
    found += [f"export.failed after the commit (the last attempt would publish it): run {r}"
              for r in sorted(set(world.failed_after_commit))]
    committed = {manifest.run_id} | {c.run_id for c in getattr(manifest, "recent", ())} if manifest else set()
    found += [f"committed without a completion event: {r}" for r in sorted(committed & runs.keys()) if not ids.get(r)]
    return found


def _nothing_sent_twice(world: World, members: dict[str, dict[str, Any]]) -> list[str]:
    """Per contact, what ActiveCampaign received in order: a payload repeated right after itself is allowed
    only when the bulk import that carried it first was never recorded as accepted, or the contact was in a
    batch a plan intended and never recorded as accepted (README: what may reach ActiveCampaign twice)."""
    found = []
    recorded = world.recorded_batches
    doubtful = {e for key, emails in world.planned.items() if key not in world.accepted for e in emails}
    by_id = {str(m.get("id")): e for e, m in members.items()}
    sends: dict[str, list[tuple[bytes, bool]]] = defaultdict(list)  # email -> (payload, may repeat)
    for x in world.exchanges:
        if x.status != 200 or x.method != "POST":
            continue
        if x.path.endswith("/import/bulk_import"):
            batch = orjson.loads(x.reply).get("batchId") if x.reply else None
            unrecorded = x.lost or batch not in recorded
            for contact in orjson.loads(x.body).get("contacts", []):
                sends[contact["email"]].append((orjson.dumps(contact, option=orjson.OPT_SORT_KEYS), unrecorded))
        elif x.path.endswith("/contactLists"):
            contact_id = str(orjson.loads(x.body)["contactList"]["contact"])
            sends[by_id.get(contact_id, f"id {contact_id}")].append((b"resubscribe", x.lost))
    for e, seq in sorted(sends.items()):
        for (before, may_repeat), (after, _) in itertools.pairwise(seq):
            if before == after and not may_repeat and e not in doubtful:
                what = "re-subscribed twice" if after == b"resubscribe" else "sent twice"
                found.append(f"{what}: {e}")
    return found


def _ours(tags: set[str]) -> set[str]:
    """The tags among ``tags`` that this export adds (the static one, and tag_field's ``t:...``)."""
    return {t for t in tags if t == STATIC_TAG or t.startswith("t:")}


def _tags_exact(world: World, members: dict[str, dict[str, Any]], newest: Refresh) -> list[str]:
    found = []
    everyone = {i for r in REFRESHES for i in r.members}
    for i in sorted(everyone):
        m = members.get(email(i))
        tags = set(m["tags"]) if m else set()
        if i in TAGGED_BY_OTHERS and OTHERS_TAG not in tags:
            found.append(f"a tag someone else added was removed: {email(i)}")
        if i in TAGGED_BEFORE:
            if STATIC_TAG not in tags:
                found.append(f"a tag the contact held before this export sent it was removed: {email(i)}")
            tags = tags - {STATIC_TAG}  # not this export's to give or take
            if i in newest.members:
                tags.add(STATIC_TAG)
        if i in SELF_UNSUBSCRIBED:
            continue  # AC skips them: their tags stay as they were
        if i in newest.members and _ours(tags) != our_tags(newest.members[i]):
            found.append(f"member's tags are not this export's for its values: {email(i)} {sorted(_ours(tags))}")
        elif i not in newest.members and _ours(tags):
            found.append(f"non-member still holds tags this export added: {email(i)} {sorted(_ours(tags))}")
    try:
        state, _ = SyncedState.load(world.store, f"exports/{EXPORT}/synced")
        for block in state.source.blocks():
            for e, flag, stored in zip(block.emails, block.flag.tolist(), block.tag_list(), strict=True):
                held = _ours(set(members[e]["tags"])) if e in members else set()
                if flag == 0 and set(decode_tags(stored)) != held:
                    found.append(f"synced tags are not what AC holds: {e}")
    except StateError as exc:
        found.append(f"synced state unreadable: {exc}"[:300])
    deleted: dict[str, list[bool]] = defaultdict(list)  # link -> was each DELETE's answer lost
    for x in world.exchanges:
        if x.method == "DELETE" and "/contactTags/" in x.path and x.status:
            deleted[x.path].append(x.lost)
    found += [f"a tag link deleted again though the first answer came back: {path}"
              for path, lost in sorted(deleted.items()) if len(lost) > 1 and not all(lost[:-1])]
    return found
