"""Issue 18's hostile review of verify, reproduced against the simulator over HTTP (each failed before its fix).

- A removal of a run that died after ActiveCampaign carried it out (its reply lost) is folded in as doubtful.
  ``verify --repair`` used to take that API-made unsubscription for someone else's and mark the contact
  skipped (``s``) for good: when the person came back to the segment they were never re-subscribed. It is
  this export's own unsubscription: kept as ``u`` with its time, and re-entry re-subscribes the person.
  The contact used to keep this export's tags for good (a ``u`` entry is no leaver any more, so no run
  removed them): repair removes them first (second review), and re-entry gives them back.
- A run that commits while verify reads the list voids verify's findings; the message used to say "the run is
  retried", which nothing does. It now says what happened and what to do.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.run.conftest import API_KEY, subscribed, wait_for, write_config
from tests.run.walker.proxy import Action, FaultProxy, Seen
from worker.cli import main
from worker.contacts.samples import make_segment, write_jsonl
from worker.contacts.synced import SyncedState
from worker.sim import SimClient, SimSettings, SimulatorServer
from worker.state import open_store

SHORT_LEASE = "lease_seconds = 3\nrequest_timeout_seconds = 1"  # a killed run's lease lapses fast


TAGGED = 'tags = ["segment:vip"]'


def vip_holders(simc: SimClient) -> dict[str, bool]:
    """email -> whether the contact holds this export's tag in ActiveCampaign."""
    return {e: "segment:vip" in m["tags"] for e, m in simc.members(3).items()}


def email(i: int) -> str:
    return f"person{i}@example.com"


def person(i: int) -> dict:
    return {"EmailAddress": email(i), "FirstName": f"P{i}", "LastName": "Verify", "Phone": "1"}


def sync(capsys, config: Path, snapshot: Path, *extra: str) -> tuple[int, dict]:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(snapshot), *extra])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def verify(capsys, config: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["verify", "--config", str(config), "--export", "vip", *extra])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def entries(tmp_path: Path) -> dict[str, tuple[str, str, str]]:
    store = open_store((tmp_path / "state").as_uri())
    synced, _ = SyncedState.load(store, "exports/vip/synced")
    return dict(synced.entries())


def test_repair_keeps_an_unfinished_run_s_own_unsubscription_and_re_entry_re_subscribes(tmp_path, capsys):
    n, leavers = 40, {37, 38, 39}
    with SimulatorServer(SimSettings(api_keys=(API_KEY,), processing_delay=0.1, rate_scale=20)) as server:
        simc = SimClient(server.url)
        config = write_config(tmp_path, server.url, rate_scale=20, worker=SHORT_LEASE, export=TAGGED)
        assert sync(capsys, config, write_jsonl(tmp_path / "r1.jsonl", map(person, range(n))))[0] == 0

        removals: list[Seen] = []

        def decide(seen: Seen) -> Action:  # the removal lands in AC, its reply never comes back
            if seen.method == "POST" and seen.path.endswith("/import/bulk_import") and b'"unsubscribe"' in seen.body:
                removals.append(seen)
                return Action.LOSE_REPLY if len(removals) == 1 else Action.REFUSE
            return Action.FORWARD

        with FaultProxy(server.url, decide) as proxy:
            via_proxy = tmp_path / "via-proxy.toml"
            via_proxy.write_text(config.read_text().replace(server.url, proxy.url))
            snap = write_jsonl(tmp_path / "r2.jsonl", (person(i) for i in range(n) if i not in leavers))
            proc = subprocess.Popen([sys.executable, "-m", "worker", "sync", "--config", str(via_proxy), "--export",
                                     "vip", "--snapshot", str(snap)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            try:
                wait_for(lambda: any(x.action is Action.LOSE_REPLY and x.status == 200 for x in proxy.log()), 60,
                         "the removal carried out by ActiveCampaign with its reply lost",
                         check=lambda: None if proc.poll() is None else pytest.fail("the sync ended early"))
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
        wait_for(lambda: all(simc.members(3)[email(i)]["status"] == "unsubscribed" for i in leavers), 30,
                 "ActiveCampaign to process the removal")

        rc, out, err = verify(capsys, config, "--repair")  # folds the dead run's plan in first
        assert rc == 1 and "folded into the synced state first" in err, (out, err)
        state = entries(tmp_path)
        since = {i: state[email(i)][2] for i in leavers}
        assert all(state[email(i)][1] == "" and since[i] for i in leavers)  # doubtful: subscribed, with a since

        rc, table, err = verify(capsys, config, "--repair")
        assert rc == 0, (table, err)
        assert "kept_unsubscribed_by_export 3" in table and "marked_skipped 0" in table, table
        state = entries(tmp_path)
        assert {i: state[email(i)][1:] for i in leavers} == {i: ("u", since[i]) for i in leavers}  # not "s"
        assert {e for e, tags in vip_holders(simc).items() if not tags} == {email(i) for i in leavers}

        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r3.jsonl", map(person, range(n))))
        assert rc == 0, event
        assert event["counts"]["skipped"] == 0 and event["counts"]["added"] == len(leavers)  # re-entries
        assert set(subscribed(simc)) == {email(i) for i in range(n)}  # re-entry re-subscribed them
        assert simc.stats()["resubscribed"] == len(leavers)
        assert all(vip_holders(simc).values())  # re-entry gave the tag back


def test_a_commit_during_verify_s_read_is_reported_as_what_it_is(tmp_path, capsys):
    """A sync commits while a (slow) verify reads the list: verify stops with a message that says the run
    committed, that nothing was changed, and to run verify again; no run is "retried"."""
    with SimulatorServer(SimSettings(api_keys=(API_KEY,), processing_delay=0.1, rate_scale=20)) as server:
        simc = SimClient(server.url)
        config = write_config(tmp_path, server.url, rate_scale=20)
        seg = make_segment(range(6_000), seed=6)
        assert sync(capsys, config, write_jsonl(tmp_path / "r1.jsonl", seg.profiles))[0] == 0
        for gone in sorted(seg.expected)[:5]:
            simc.delete_contact(gone)  # verify reads the missing emails back from the state's shards
        slow = tmp_path / "slow.toml"
        slow.write_text(re.sub(r"requests_per_second = \S+", "requests_per_second = 3", config.read_text()))
        assert "requests_per_second = 3\n" in slow.read_text()
        store = open_store((tmp_path / "state").as_uri())
        proc = subprocess.Popen([sys.executable, "-m", "worker", "verify", "--config", str(slow), "--export", "vip"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: store.get("exports/vip/verify/current"), 60, "verify to start reading",
                     check=lambda: None if proc.poll() is None else pytest.fail("verify ended early"))
            changed = [dict(p, FirstName="Changed") if k < 10 else p for k, p in enumerate(seg.profiles)]
            rc, event = sync(capsys, config, write_jsonl(tmp_path / "r2.jsonl", changed))
            assert rc == 0 and event["counts"]["updated"] == 10
            assert proc.poll() is None, "verify ended before the commit: the case is not met"
            out, err = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        text = err.decode()
        assert proc.returncode == 1, text
        assert "committed a new synced state while verify was reading the list" in text, text
        assert "Run verify again" in text and "retried" not in text, text
        assert not out.strip()  # no table: the findings were void
        assert store.get("exports/vip/verify/current") is None  # the void verify left no checkpoint to resume


def test_repair_touches_no_tag_once_a_run_committed_after_verify_s_read(tmp_path, capsys):
    """verify --repair removes the tags of the people it records as this export's leavers before it writes
    the state; a run that committed since verify read the list may have taken them back in with their tags,
    so that step first checks the state is still the one verify read (fourth review of issue 18: it used to
    check only when writing, after the tags were gone)."""
    import asyncio

    from worker.run import verify as verify_run
    from worker.run.engine import Engine
    from worker.settings import load_config

    with SimulatorServer(SimSettings(api_keys=(API_KEY,), processing_delay=0.1, rate_scale=20)) as server:
        config = write_config(tmp_path, server.url, rate_scale=20, export=TAGGED)
        assert sync(capsys, config, write_jsonl(tmp_path / "r1.jsonl", map(person, range(20))))[0] == 0
        loaded = load_config(config)
        export, store = loaded.export("vip"), open_store((tmp_path / "state").as_uri())

        async def read():
            engine = Engine(loaded, store)
            try:
                async with engine.client_for(export) as client:
                    return await verify_run.Verifier(store, export, client).run()
            finally:
                await engine.aclose()

        findings, synced, version = asyncio.run(read())
        verify_run.still_current(store, export, findings, synced, version)  # nothing changed yet
        assert sync(capsys, config, write_jsonl(tmp_path / "r2.jsonl", map(person, range(19))))[0] == 0
        with pytest.raises(verify_run.StateChanged, match="committed the synced state"):
            verify_run.still_current(store, export, findings, synced, version)
