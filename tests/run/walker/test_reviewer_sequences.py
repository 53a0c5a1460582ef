"""The three sequences of issue 15's review, each reproduced against the simulator (and moto's S3).

Each one damaged a list or bricked an export before the run protocol was fixed:

1. a crash between the commit (manifest swap) and the refresh record, then an older refresh arriving late;
2. a run interrupted after two accepted batches, resumed after another run of the export committed in
   between: (a) the same refresh requested again, (b) an older refresh;
3. on S3, the manifest's conditional PUT lands and its reply is lost; botocore's retry gets 412.

The public engine, real stores, the simulator over HTTP and moto over HTTP; the faults are a folder store
whose process dies at the first write after the manifest swap, a stop request (what SIGTERM sends) and an
HTTP proxy that loses one reply. Nothing newer than the code before the fix is used, so the same tests ran
against it, and failed as the issue describes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.run.walker.proxy import Action, FaultProxy, Seen
from worker.contacts.mapping import Mapper
from worker.contacts.synced import SyncedState
from worker.run.engine import Engine
from worker.run.hooks import Hooks
from worker.run.runbook import run_id_for
from worker.run.types import RunResult, RunSpec
from worker.settings import Config, parse_config
from worker.sim import SimClient, SimSettings, SimulatorServer
from worker.state import FileStore, StateStore

KEY = "reviewer-key-0d9c8b7a6f5e4d3c"
KEY_ENV = "REVIEWER_SEQUENCES_AC_KEY"
LIST = 3
SCALE = 200.0  # the simulated account's budget, times ActiveCampaign's: runs take a fraction of a second


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, SimClient]]:
    monkeypatch.setenv(KEY_ENV, KEY)
    with SimulatorServer(SimSettings(api_keys=(KEY,), processing_delay=0.05, rate_scale=SCALE)) as server:
        yield server.url, SimClient(server.url)


def config(url: str, state_url: str, *, readmit: bool = True) -> Config:
    return parse_config({
        "worker": {"state_url": state_url},
        "connections": {"sim": {"hostname": "sim.api-us1.com", "base_url": url, "api_key_env": KEY_ENV,
                                "data_privacy_consent": True, "requests_per_second": 5 * SCALE,
                                "bulk_requests_per_minute": 100 * SCALE}},
        "exports": {"vip": {"segment": "vip-customers", "connection": "sim", "list_id": LIST, "readmit": readmit,
                            "mapping": {"email": "Email", "first_name": "First", "last_name": "Last"}}},
    })


def profile(i: int, version: str) -> dict[str, str]:
    return {"Email": f"person{i}@example.com", "First": f"First{i}-{version}", "Last": f"Last{i}"}


def snapshot(folder: Path, name: str, people: range | list[int], version: str) -> str:
    path = folder / f"{name}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(profile(i, version)) + b"\n" for i in people))
    return path.as_uri()


def spec(cfg: Config, uri: str, refresh: str, at: str, run_id: str | None = None) -> RunSpec:
    export = cfg.exports["vip"]
    return RunSpec(export=export, snapshot_uri=uri, refresh_id=refresh, occurred_at=at,
                   run_id=run_id or run_id_for(export.name, refresh))


def run(cfg: Config, store: StateStore, s: RunSpec, *, hooks: Hooks | None = None,
        stop: asyncio.Event | None = None) -> RunResult:
    async def go() -> RunResult:
        engine = Engine(cfg, store, hooks=hooks)
        try:
            return await engine.run(s, stop)
        finally:
            await engine.aclose()

    return asyncio.run(go())


def members(simc: SimClient) -> dict[str, dict[str, Any]]:
    """The list's subscribed members: email -> AC's record."""
    return {e: m for e, m in simc.members(LIST).items() if m["status"] == "subscribed"}


def first_names(simc: SimClient) -> dict[str, str]:
    return {e: m["first_name"] for e, m in members(simc).items()}


def expected(people: range | list[int], version: str) -> dict[str, str]:
    return {f"person{i}@example.com": f"First{i}-{version}" for i in people}


def synced_fingerprints(store: StateStore) -> dict[str, str]:
    state, _ = SyncedState.load(store, "exports/vip/synced")
    return {email: fp for email, (fp, flag, _) in state.entries() if flag == ""}


def fingerprints_of(cfg: Config, people: range | list[int], version: str) -> dict[str, str]:
    mapper = Mapper(cfg.exports["vip"])
    out = {}
    for i in people:
        m = mapper.map(profile(i, version))
        assert not isinstance(m, str)
        out[m.email] = m.fingerprint
    return out


class Crash(BaseException):
    """The process dies here: nothing after it is written (a BaseException, so no ``except Exception``
    of ours treats it as a failure to handle)."""


class CrashAtAccepted(FileStore):
    """A folder store whose process dies before it records the ``n``-th accepted batch (whatever else is in
    flight: deterministic, unlike a stop request that may come after the last batch left)."""

    def __init__(self, root: Path, n: int) -> None:
        super().__init__(root)
        self.left = n

    def put(self, key: str, data: bytes) -> None:
        if key.endswith(".accepted"):
            self.left -= 1
            if self.left < 0:
                raise Crash(f"killed before {key}")
        super().put(key, data)


class CrashAfterSwap(FileStore):
    """A folder store whose process dies at the first write after the synced manifest was swapped in."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__(root)
        self.swapped = False

    def _check(self) -> None:
        if self.swapped:
            raise Crash("killed after the manifest swap")

    def replace_if_unchanged(self, key: str, data: bytes, version: str | None) -> bool:
        self._check()
        done = super().replace_if_unchanged(key, data, version)
        if done and key.endswith("/synced") and b'"claim"' not in data:  # a commit, not a plan's claim
            self.swapped = True
        return done

    def put(self, key: str, data: bytes) -> None:
        self._check()
        super().put(key, data)

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._check()
        return super().put_if_absent(key, data)

    def delete(self, key: str) -> None:
        self._check()
        super().delete(key)


# ------------------------------------------------------------------------------------------ 1


def test_crash_between_commit_and_refresh_record_then_older_refresh_is_stale(tmp_path: Path, sim) -> None:
    """Newest refresh r1 (15 left, 15 joined, 85 changed) crashes right after its manifest swap; its resume
    succeeds; then the older r0 arrives. r0 must be stale: before the fix it ran, unsubscribed the 15 who
    joined in r1 and put the older values back on the other 85 (readmit off: the 15 stayed out for good)."""
    url, simc = sim
    cfg = config(url, (tmp_path / "state").as_uri(), readmit=False)
    store = FileStore(tmp_path / "state")
    base = snapshot(tmp_path, "base", range(100), "v0")
    assert run(cfg, store, spec(cfg, base, "r-base", "2026-12-01T08:00:00Z")).exit_code == 0
    r0 = snapshot(tmp_path, "r0", range(100), "v0")  # the older refresh: the members and values of the base
    r1 = snapshot(tmp_path, "r1", range(15, 115), "v1")  # the newest: 15 left, 15 joined, 85 changed

    crashing = CrashAfterSwap(tmp_path / "state")
    s1 = spec(cfg, r1, "r1", "2026-12-01T11:00:00Z")
    with pytest.raises(Crash):
        run(cfg, crashing, s1)
    assert crashing.swapped, "the run did not reach its commit"

    resumed = run(cfg, store, s1)
    assert resumed.exit_code == 0 and resumed.event is not None and resumed.event["status"] == "succeeded"
    late = run(cfg, store, spec(cfg, r0, "r0", "2026-12-01T10:00:00Z"))
    got, want = first_names(simc), expected(range(15, 115), "v1")
    assert not set(want) - set(got), f"{len(set(want) - set(got))} members of the newest refresh unsubscribed"
    assert got == want, f"{sum(got[e] != want[e] for e in want)} contacts hold values older than the newest refresh"
    assert late.stale, f"the older refresh ran: {late.outcome} {late.event and late.event['counts']}"


# ------------------------------------------------------------------------------------------ 2


def interrupted_after_two_batches(cfg: Config, store: StateStore, s: RunSpec) -> None:
    """The run ends after two accepted batches, with their records and nothing after them (what a SIGTERM
    hand-off leaves). Done as a crash before the third record: a stop request may come after the last batch
    left, so under load it would not always interrupt."""
    assert isinstance(store, FileStore)
    with pytest.raises(Crash):
        run(cfg, CrashAtAccepted(Path(store.root), 2), s)


def base_and_refreshes(tmp_path: Path, cfg: Config, store: StateStore) -> tuple[str, str]:
    """A committed base of 2,000 people (values v0), and two refreshes of the same people: r0 (values "old")
    and r1 (values v1)."""
    base = snapshot(tmp_path, "base", range(2000), "v0")
    assert run(cfg, store, spec(cfg, base, "r-base", "2026-12-01T08:00:00Z")).exit_code == 0
    return snapshot(tmp_path, "r0", range(2000), "old"), snapshot(tmp_path, "r1", range(2000), "v1")


def test_resume_after_the_same_refresh_committed_in_between(tmp_path: Path, sim) -> None:
    """r1 is interrupted after two accepted batches; an export.requested run of the same refresh (another run
    id) commits; r1 resumes. Before the fix it failed ``incomplete`` on every attempt (its first plan's
    batches never got outcomes), and so did every later delivery of r1."""
    url, simc = sim
    cfg = config(url, (tmp_path / "state").as_uri())
    store = FileStore(tmp_path / "state")
    _, r1 = base_and_refreshes(tmp_path, cfg, store)
    s1 = spec(cfg, r1, "r1", "2026-12-01T11:00:00Z")
    interrupted_after_two_batches(cfg, store, s1)

    again = spec(cfg, r1, "r1", "2026-12-01T11:00:00Z", run_id=run_id_for("vip", "r1\0requested-1"))
    assert run(cfg, store, again).exit_code == 0
    resumed = run(cfg, store, s1)
    assert resumed.exit_code == 0, resumed.event and resumed.event.get("error")
    assert first_names(simc) == expected(range(2000), "v1")
    assert synced_fingerprints(store) == fingerprints_of(cfg, range(2000), "v1")


def test_resume_after_an_older_refresh_committed_in_between(tmp_path: Path, sim) -> None:
    """r1 is interrupted after two accepted batches; a re-sync without a refresh instant (an
    ``export.requested`` of r0's snapshot; the older r0 is stale while r1's plan is open: the test
    above) runs and commits; r1 resumes. Before the fix it "succeeded" while the 500 contacts of its first
    two batches held r0's values in ActiveCampaign and the synced state said r1's, so no later refresh
    corrected them."""
    url, simc = sim
    cfg = config(url, (tmp_path / "state").as_uri())
    store = FileStore(tmp_path / "state")
    r0, r1 = base_and_refreshes(tmp_path, cfg, store)
    s1 = spec(cfg, r1, "r1", "2026-12-01T11:00:00Z")
    interrupted_after_two_batches(cfg, store, s1)

    requested = RunSpec(export=cfg.exports["vip"], snapshot_uri=r0, refresh_id="requested-r0", occurred_at=None,
                        run_id=run_id_for("vip", "requested-r0\0ev"))
    assert run(cfg, store, requested).exit_code == 0
    resumed = run(cfg, store, s1)
    assert resumed.exit_code == 0, resumed.event and resumed.event.get("error")
    got, want = first_names(simc), expected(range(2000), "v1")
    wrong = {e for e in want if got.get(e) != want[e]}
    assert not wrong, f"{len(wrong)} of {len(want)} contacts do not hold r1's values in ActiveCampaign"
    assert synced_fingerprints(store) == fingerprints_of(cfg, range(2000), "v1")


def test_older_refresh_over_an_open_plan_of_a_newer_one_is_stale(tmp_path: Path, sim) -> None:
    """Follow-up review 1, ``readmit = false``: the newest refresh r1 (300 left, 300 joined) is interrupted
    after two accepted batches; the older r0 arrives. Before the fix r0 was not stale (r1 had not committed):
    it folded r1's plan in and unsubscribed the joiners r1 had already added, and with re-entry off they
    stayed out for good. Now r1's open plan records its refresh, so r0 is stale; r1 resumes and the list is
    exactly r1's."""
    url, simc = sim
    cfg = config(url, (tmp_path / "state").as_uri(), readmit=False)
    store = FileStore(tmp_path / "state")
    base = snapshot(tmp_path, "base", range(2000), "v0")
    assert run(cfg, store, spec(cfg, base, "r-base", "2026-12-01T08:00:00Z")).exit_code == 0
    r0 = snapshot(tmp_path, "r0", range(2000), "old")
    people = [*range(2000, 2300), *range(300, 2000)]
    r1 = snapshot(tmp_path, "r1", people, "v1")
    s1 = spec(cfg, r1, "r1", "2026-12-01T11:00:00Z")
    interrupted_after_two_batches(cfg, store, s1)

    late = run(cfg, store, spec(cfg, r0, "r0", "2026-12-01T10:00:00Z"))
    assert late.stale and late.event is None
    resumed = run(cfg, store, s1)
    assert resumed.exit_code == 0, resumed.event and resumed.event.get("error")
    assert first_names(simc) == expected(people, "v1")  # every member of r1 subscribed, with r1's values
    assert synced_fingerprints(store) == fingerprints_of(cfg, people, "v1")
    # and the fold keeps the newest refresh: an older one is still stale once r1 committed
    assert run(cfg, store, spec(cfg, r0, "r0", "2026-12-01T10:00:00Z")).stale


# ------------------------------------------------------------------------------------------ 3


def test_s3_manifest_put_whose_reply_is_lost(tmp_path: Path, sim, s3_bucket: str, moto_server: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest's If-Match PUT reaches S3 and its reply is lost; botocore retries and gets 412. Before the
    fix the store said "not swapped", the commit dropped the generation that had just become current, the run
    reported ``succeeded`` and every later run failed with ``state_store`` (a shard missing)."""
    from worker.state import S3Store

    url, simc = sim
    lost: list[Seen] = []

    def decide(seen: Seen) -> Action:
        if (seen.method == "PUT" and seen.path.endswith("/exports/vip/synced") and "If-Match" in seen.headers
                and not lost):
            lost.append(seen)
            return Action.LOSE_REPLY
        return Action.FORWARD

    with FaultProxy(moto_server, decide) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)  # the store's client goes through the proxy
        store = S3Store(s3_bucket, "state")
        cfg = config(url, f"s3://{s3_bucket}/state")
        first = snapshot(tmp_path, "r1", range(40), "v1")
        assert run(cfg, store, spec(cfg, first, "r1", "2026-12-01T09:00:00Z")).exit_code == 0
        second = snapshot(tmp_path, "r2", range(5, 45), "v2")
        done = run(cfg, store, spec(cfg, second, "r2", "2026-12-01T10:00:00Z"))
        assert lost, "the manifest's conditional PUT was never met"
        assert done.exit_code == 0
        assert any(x.seen is lost[0] and x.status == 200 for x in proxy.log()), "the lost PUT did not land"
        third = snapshot(tmp_path, "r3", range(8, 48), "v3")
        after = run(cfg, store, spec(cfg, third, "r3", "2026-12-01T11:00:00Z"))
    assert after.exit_code == 0, after.event and after.event.get("error")
    assert first_names(simc) == expected(range(8, 48), "v3")
