"""``segment-export state prune``: real runs' records go after ``retention_days``; the export's state stays.

Two real syncs against the simulator leave two runs' records; the first is made old by setting its
files' times (what a month of waiting would do), then pruned through the command line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.run.conftest import write_config
from worker.cli import main
from worker.contacts.samples import make_segment, write_jsonl
from worker.sim import SimClient

DAY = 86_400


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    rc = main(list(argv))
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def files(state: Path) -> dict[str, float]:
    return {str(p.relative_to(state)): p.stat().st_mtime for p in state.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(state).parts)}


def backdate(folder: Path, days: float) -> None:
    when = time.time() - days * DAY
    for p in folder.rglob("*"):
        if p.is_file():
            os.utime(p, (when, when))


def test_prune_removes_old_runs_and_keeps_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   sim: tuple[str, SimClient]) -> None:
    url, _ = sim
    config = str(write_config(tmp_path, url, rate_scale=20, worker="retention_days = 7"))
    state = tmp_path / "state"
    first = write_jsonl(tmp_path / "a.jsonl", make_segment(range(60)).profiles)
    second = write_jsonl(tmp_path / "b.jsonl", make_segment(range(5, 60)).profiles)
    rc, event1 = run(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", str(first))
    assert rc == 0
    rc, event2 = run(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", str(second))
    assert rc == 0 and event2["run_id"] != event1["run_id"]
    runs = state / "exports" / "vip" / "runs"
    assert sorted(p.name for p in runs.iterdir()) == sorted([event1["run_id"], event2["run_id"]])

    # nothing is old yet
    rc, summary = run(capsys, "state", "prune", "--config", config)
    assert rc == 0 and summary["removed_runs"] == 0 and summary["kept_runs"] == 2

    backdate(runs / event1["run_id"], 8)
    backdate(runs / event2["run_id"], 6)  # inside the retention of 7 days
    before = files(state)
    rc, summary = run(capsys, "state", "prune", "--config", config, "--dry-run")
    assert rc == 0 and summary["dry_run"] is True and summary["retention_days"] == 7
    assert [r["run_id"] for r in summary["runs"]] == [event1["run_id"]] and summary["kept_runs"] == 1
    assert files(state) == before  # a dry run changes nothing

    rc, summary = run(capsys, "state", "prune", "--config", config, "--export", "vip")
    assert rc == 0 and summary["removed_runs"] == 1 and summary["exports"] == ["vip"]
    gone = {k for k in before if k.startswith(f"exports/vip/runs/{event1['run_id']}/")}
    assert gone and summary["removed_keys"] == len(gone)
    assert set(files(state)) == set(before) - gone
    assert "exports/vip/synced" in files(state)  # the export's own state is never pruned (`sync` knows no
    # refresh instant, so it records no last_refresh: tests/run/safety/test_unknown_instant.py)

    # the export still syncs incrementally from its committed state: nothing to change
    rc, event3 = run(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", str(second), "--full")
    assert rc == 0 and event3["counts"]["updated"] == 55 and event3["counts"]["added"] == 0


def test_prune_of_an_unknown_export_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(write_config(tmp_path, "http://127.0.0.1:9"))
    assert main(["state", "prune", "--config", config, "--export", "nope"]) == 2
    assert "no export named 'nope'" in capsys.readouterr().err


def test_prune_when_the_store_fails_exits_1_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           moto_server: str) -> None:
    config = tmp_path / "c.toml"
    text = write_config(tmp_path, "http://127.0.0.1:9").read_text()
    config.write_text(text.replace(f'state_url = "file://{tmp_path / "state"}"',
                                   'state_url = "s3://no-such-state-bucket/prefix"'))
    assert main(["state", "prune", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "bucket 'no-such-state-bucket' does not exist" in err and "run it again" in err
