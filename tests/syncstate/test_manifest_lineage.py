"""The manifest records the newest refresh committed and the last commits (worker.syncstate.manifest)."""

from __future__ import annotations

import orjson

from worker.syncstate.manifest import RECENT, Commit, Committed, Manifest, Refresh, ShardRef


def manifest(run_id: str, recent: tuple[Commit, ...] = (), refresh: Refresh | None = None) -> Manifest:
    return Manifest(run_id, "0001-aa", 0, [ShardRef(None, 0)], committed=Committed({"added": 1}, f"file:///{run_id}"),
                    refresh=refresh, recent=recent)


def test_refresh_and_recent_commits_survive_encoding() -> None:
    m = manifest("r3", (Commit("r2", Committed({"added": 2}, "file:///r2")),), Refresh("r3", "2026-12-01T10:00:00Z"))
    again = Manifest.decode(m.encode())
    assert again == m
    assert again.committed_by("r3") == Committed({"added": 1}, "file:///r3")
    assert again.committed_by("r2") == Committed({"added": 2}, "file:///r2")
    assert again.committed_by("r1") is None


def test_a_manifest_written_before_them_reads_without_them() -> None:
    body = orjson.loads(manifest("r1").encode().split(b"\n", 1)[1])
    del body["refresh"], body["recent"]
    old = Manifest.decode(b"#segment-export synced v2\n" + orjson.dumps(body) + b"\n")
    assert old.refresh is None and old.recent == () and old.committed_by("r1") is not None


def test_a_commit_remembers_the_last_few_before_it() -> None:
    history: tuple[Commit, ...] = ()
    m = manifest("r0")
    for n in range(1, RECENT + 5):
        history = m.lineage()
        m = manifest(f"r{n}", history)
    assert len(m.recent) == RECENT
    assert [c.run_id for c in m.recent[:2]] == [f"r{RECENT + 3}", f"r{RECENT + 2}"]
    assert m.committed_by(f"r{RECENT + 3}") is not None and m.committed_by("r0") is None
