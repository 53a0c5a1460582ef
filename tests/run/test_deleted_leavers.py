"""Issue 18's hostile review: a leaver deleted in ActiveCampaign is not re-created by its removal.

Bulk import creates the contacts it does not find, so the unsubscribing import used to bring back, as a new
unsubscribed contact, a person a marketer (or an erasure) had deleted. Leavers are now looked up on the list
first; those that are gone are left out, forgotten, and counted apart (``leavers_deleted``). Against the
simulator over HTTP.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.run.conftest import API_KEY, write_config
from worker.cli import main
from worker.contacts.samples import write_jsonl
from worker.contacts.synced import SyncedState
from worker.sim import SimClient, SimSettings, SimulatorServer
from worker.state import open_store


def email(i: int) -> str:
    return f"person{i}@example.com"


def person(i: int) -> dict:
    return {"EmailAddress": email(i), "FirstName": f"P{i}", "LastName": "Gone", "Phone": "1"}


def sync(capsys, config: Path, snapshot: Path) -> tuple[int, dict]:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(snapshot)])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def test_a_leaver_deleted_in_activecampaign_is_not_re_created_and_is_counted_apart(tmp_path, capsys):
    n, deleted, leaving = 200, set(range(0, 20, 2)), set(range(20))  # 20 leave, 10 of them deleted in AC
    with SimulatorServer(SimSettings(api_keys=(API_KEY,), processing_delay=0.1, rate_scale=20)) as server:
        simc = SimClient(server.url)
        config = write_config(tmp_path, server.url, rate_scale=20, export='tags = ["segment:vip"]')
        assert sync(capsys, config, write_jsonl(tmp_path / "r1.jsonl", map(person, range(n))))[0] == 0
        for i in deleted:
            assert simc.delete_contact(email(i))
        before = len(simc.requests())

        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r2.jsonl", (person(i) for i in range(n)
                                                                              if i not in leaving)))
        assert rc == 0, event
        assert all(simc.contact(email(i)) is None for i in deleted), "a deleted leaver was re-created"
        members = simc.members(3)
        assert all(members[email(i)]["status"] == "unsubscribed" for i in leaving - deleted)
        assert (event["counts"]["removed"], event["counts"]["skipped"], event["leavers_deleted"]) == (10, 0, 10)
        assert event["drift"]["missing"] == 0  # the state no longer counts them
        lookups = [r for r in simc.requests(before) if r["method"] == "GET" and r["path"].endswith("/api/3/contacts")]
        assert len(lookups) == len(leaving) + 1 + 2  # one per leaver, the drift check, the tag step's list scan
        assert event["tags"] == {"contacts": 10, "removed": 10}  # the deleted ones have no tags to remove

        store = open_store((tmp_path / "state").as_uri())
        synced, _ = SyncedState.load(store, "exports/vip/synced")
        state = dict(synced.entries())
        assert all(email(i) not in state for i in deleted) and all(state[email(i)][1] == "u" for i in leaving - deleted)

        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r3.jsonl", map(person, range(n))))
        assert rc == 0 and event["counts"]["added"] == 20  # back: 10 new contacts again, 10 re-entries
        assert all(simc.members(3)[email(i)]["status"] == "subscribed" for i in leaving)
