"""Format v1 (one text object, 3- and 4-column lines) is read as it is and replaced by v2 at the first
commit, on a folder and on S3; and the v2 layout: a manifest, one generation of shards, nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

from tests.run.conftest import bulk_posts, subscribed, write_config
from tests.syncstate.support import export, run_once, stored
from worker.cli import main
from worker.contacts.mapping import Mapper
from worker.contacts.samples import make_segment, write_jsonl
from worker.contacts.synced import SyncedState, encode_v1
from worker.state import open_store
from worker.syncstate import merge as merge_module
from worker.syncstate.manifest import HEADER_V2, Manifest

V1 = (b"#segment-export synced v1 run=old-run\n"
      b"a@x.co\t00000000000000aa\t\n"                  # 3 columns: subscribed
      b"b@x.co\t00000000000000bb\ts\n"                 # 3 columns: skipped
      b"c@x.co\t\tu\t1690000000\n"                     # 4 columns: unsubscribed by the export, since
      b"d@x.co\t00000000000000dd\t\n")


def test_v1_reads_as_it_was_written(store):
    store.put("exports/x/synced", V1)
    state, version = SyncedState.load(store, "exports/x/synced")
    assert version is not None and state.run_id == "old-run" and state.subscribed() == 2 and len(state) == 4
    assert dict(state.entries()) == {"a@x.co": ("00000000000000aa", "", ""), "b@x.co": ("00000000000000bb", "s", ""),
                                     "c@x.co": ("", "u", "1690000000"), "d@x.co": ("00000000000000dd", "", "")}


def test_the_first_commit_writes_v2_and_keeps_every_flag(store):
    exp = export()
    m = Mapper(exp)
    v1 = {"a@x.co": (m.map({"E": "a@x.co", "F": "A"}).fingerprint, "", ""),   # unchanged
          "b@x.co": ("00000000000000bb", "s", ""),                            # skipped: stays so
          "c@x.co": ("", "u", "1690000000"),                                  # left earlier: stays out
          "gone@x.co": ("00000000000000dd", "", "")}                          # leaves now
    store.put("exports/x/synced", encode_v1(v1, "old-run"))
    rows = [{"E": "a@x.co", "F": "A"}, {"E": "b@x.co", "F": "B"}, {"E": "new@x.co", "F": "N"}]
    ran = run_once(store, exp, rows, lambda e, op: "ok", run_id="first-v2")
    assert sorted(ran.sent) == [("gone@x.co", "r"), ("new@x.co", "a")]
    data = store.get("exports/x/synced")
    assert data is not None and data.startswith(HEADER_V2)
    manifest = Manifest.decode(data)
    assert manifest.run_id == "first-v2" and manifest.entries == 5 and manifest.subscribed == 2
    assert manifest.skipped == 1 and manifest.unsubscribed == 2
    after = stored(store, exp)
    assert after["a@x.co"] == v1["a@x.co"] and after["b@x.co"] == v1["b@x.co"] and after["c@x.co"] == v1["c@x.co"]
    assert after["gone@x.co"] == ("", "u", "1700000000") and after["new@x.co"][1] == ""
    assert SyncedState.decode(data).run_id == "first-v2"  # what `sync` reads to name its next run


def test_generations_replace_each_other_and_the_state_is_resharded_as_it_grows(store):
    exp = export()
    with mock.patch.object(merge_module, "SHARD_TARGET", 4):
        largest = 0
        for n, size in enumerate((3, 10, 40, 12)):  # leavers stay, flagged "u": the state only grows here
            rows = [{"E": f"u{i}@x.co"} for i in range(size)]
            run_once(store, exp, rows, lambda e, op: "ok", run_id=f"r{n}")
            manifest = Manifest.decode(store.get("exports/x/synced") or b"")
            shard_keys = [k for k in store.list("exports/x/") if k.startswith("exports/x/shards/")]
            assert sorted(shard_keys) == sorted(manifest.shard_keys())  # the old generation is gone
            assert all(k.startswith(f"exports/x/shards/{manifest.generation}/") for k in shard_keys)
            largest = max(largest, size)
            assert len(stored(store, exp)) == largest
    assert manifest.bits >= 2 and len(manifest.shard_keys()) > 2
    assert len(stored(store, exp)) == 40  # 28 left and are kept as unsubscribed by the export


def test_a_cli_sync_migrates_a_v1_state_and_resends_nothing_unchanged(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str], sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export="max_removal_fraction = 1.0")
    seg = make_segment(range(300))
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot",
               str(write_jsonl(tmp_path / "a.jsonl", seg.profiles))])
    assert rc == 0
    capsys.readouterr()
    synced_file = tmp_path / "state" / "exports" / "vip" / "synced"
    # what an older version would have left: the same entries as one v1 object, no shards
    state, _ = SyncedState.load(open_store((tmp_path / "state").as_uri()), "exports/vip/synced")
    entries = dict(state.entries())
    for shard in (tmp_path / "state" / "exports" / "vip" / "shards").rglob("*"):
        if shard.is_file():
            shard.unlink()
    synced_file.write_bytes(encode_v1(entries, state.run_id))
    posts = len(bulk_posts(simc))

    seg2 = make_segment(range(20, 320))  # 20 left, 20 new
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot",
               str(write_jsonl(tmp_path / "b.jsonl", seg2.profiles))])
    event = json.loads(capsys.readouterr().out)
    assert rc == 0, event
    c = event["counts"]
    assert (c["added"], c["removed"], c["unchanged"], c["updated"]) == (20, 20, 280, 0)
    assert len(bulk_posts(simc)) == posts + 1  # 40 contacts: one batch
    assert set(subscribed(simc)) == set(seg2.expected)
    assert synced_file.read_bytes().startswith(HEADER_V2)
