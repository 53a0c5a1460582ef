"""Issue 18, must-show 3: `segment-export runs` lists the last runs with status and counts; `--json`
validates against schemas/runs.json; `runs show RUN_ID` gives one run with its top failure reasons."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastjsonschema
import jsonschema

from tests.run.conftest import bulk_posts, wait_for, write_config
from worker.cli import main
from worker.contacts.samples import make_segment, write_jsonl
from worker.events.schemas import load_schema
from worker.run.history import list_runs, parse_since
from worker.state import open_store


def cli(capsys, *args: str) -> tuple[int, str]:
    rc = main(list(args))
    return rc, capsys.readouterr().out


def test_runs_lists_what_the_state_store_holds(sim, tmp_path: Path, capsys) -> None:
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export="max_removal_fraction = 0.5",
                          worker="lease_seconds = 3\nrequest_timeout_seconds = 1")
    seg = make_segment(range(300), seed=7)
    sync = ["sync", "--config", str(config), "--export", "vip", "--snapshot"]
    rc, out = cli(capsys, *sync, str(write_jsonl(tmp_path / "r1.jsonl", seg.profiles)))
    ok = json.loads(out)
    assert rc == 0
    simc.exclude("*@excluded.example")  # AC refuses these: the next run is partial
    extra = [{"EmailAddress": f"x{i}@excluded.example"} for i in range(3)]
    rc, out = cli(capsys, *sync, str(write_jsonl(tmp_path / "r2.jsonl", [*seg.profiles, *extra])))
    partial = json.loads(out)
    assert rc == 3 and partial["counts"]["failed"] == 3
    (tmp_path / "r3.jsonl").write_bytes(b"\n")  # no rows (0 bytes would be refused as a part cut short)
    rc, out = cli(capsys, *sync, str(tmp_path / "r3.jsonl"))  # the removal guard refuses
    failed = json.loads(out)
    assert rc == 1 and failed["error"]["code"] == "removal_guard"
    slow = tmp_path / "slow.toml"  # the same export at a crawl, to kill a run in the middle
    slow.write_text(config.read_text().replace("requests_per_second = 100.0", "requests_per_second = 1.0")
                    .replace("bulk_requests_per_minute = 2000.0", "bulk_requests_per_minute = 1.0"))
    big = write_jsonl(tmp_path / "r4.jsonl", make_segment(range(2_000)).profiles)
    proc = subprocess.Popen([sys.executable, "-m", "worker", "sync", "--config", str(slow), "--export", "vip",
                             "--snapshot", str(big)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        before = len(bulk_posts(simc))
        wait_for(lambda: len(bulk_posts(simc)) > before, 60, "the killed run's first bulk import")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    rc, table = cli(capsys, "runs", "--config", str(config))
    assert rc == 0
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["finished", "export", "run", "refresh", "status"]
    by_run = {line.split()[3]: line for line in lines[1:]}  # the time takes two columns
    assert set(by_run) == {ok["run_id"], partial["run_id"], failed["run_id"]} | {
        r.run_id for r in list_runs(open_store((tmp_path / "state").as_uri()), ["vip"]) if r.status == "unfinished"}
    assert by_run[ok["run_id"]].split()[5:8] == ["succeeded", "300", "0"]
    assert by_run[partial["run_id"]].split()[5] == "partial" and by_run[partial["run_id"]].split()[9] == "3"
    assert by_run[partial["run_id"]].split()[-1] == partial["failures_uri"]
    assert by_run[failed["run_id"]].split()[5] == "failed" and "removal_guard" in by_run[failed["run_id"]].split()
    assert sum(line.split()[5] == "unfinished" for line in lines[1:]) == 1, table
    assert lines[1].split()[3] != ok["run_id"]  # newest first

    rc, out = cli(capsys, "runs", "--config", str(config), "--json")
    listing = json.loads(out)
    jsonschema.validate(listing, load_schema("runs"), cls=jsonschema.Draft202012Validator)
    fastjsonschema.compile(load_schema("runs"))(listing)
    runs = {r["run_id"]: r for r in listing["runs"]}
    assert len(runs) == 4
    assert runs[ok["run_id"]]["counts"] == ok["counts"] and runs[ok["run_id"]]["status"] == "succeeded"
    assert runs[partial["run_id"]]["failures_uri"] == partial["failures_uri"]
    assert runs[failed["run_id"]]["error"]["code"] == "removal_guard" and runs[failed["run_id"]]["attempt"] == 1
    assert runs[ok["run_id"]]["drift"]["list_subscribed"] == 300
    unfinished = next(r for r in listing["runs"] if r["status"] == "unfinished")
    assert set(unfinished) == {"run_id", "export", "status", "updated_at"}

    rc, out = cli(capsys, "runs", "--config", str(config), "show", partial["run_id"], "--json")
    shown = json.loads(out)
    jsonschema.validate(shown, load_schema("runs"), cls=jsonschema.Draft202012Validator)
    assert shown["failures"] == 3 and shown["failure_reasons"][0]["count"] == 3
    assert shown["failure_reasons"][0]["stage"] == "failed"
    rc, text = cli(capsys, "runs", "--config", str(config), "show", partial["run_id"])
    assert rc == 0 and "failure records: 3" in text and "x0@excluded.example" not in text

    assert cli(capsys, "runs", "--config", str(config), "show", "no-such-run")[0] == 1
    assert cli(capsys, "runs", "--config", str(config), "--since", "soon")[0] == 2


def test_since_keeps_the_runs_that_ended_in_the_window(sim, tmp_path: Path, capsys) -> None:
    url, _ = sim
    config = write_config(tmp_path, url, rate_scale=20)
    cli(capsys, "sync", "--config", str(config), "--export", "vip", "--snapshot",
        str(write_jsonl(tmp_path / "r1.jsonl", make_segment(range(10)).profiles)))
    store = open_store((tmp_path / "state").as_uri())
    assert len(list_runs(store, ["vip"], since_seconds=parse_since("1h"))) == 1
    assert list_runs(store, ["vip"], since_seconds=parse_since("1h"), now=time.time() + 2 * 3600) == []
    assert [parse_since(t) for t in ("90s", "30m", "12h", "7d", "2w", "3")] == [90, 1800, 43200, 604800, 1209600,
                                                                                 259200]
