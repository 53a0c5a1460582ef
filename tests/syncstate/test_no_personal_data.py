"""Must-show: after a run commits, no file in the state store except the failure report holds a contact's
name, phone or field value; and `state prune` (or the next commit) removes runs past the retention.

Real engine runs (``segment-export sync``) against the simulator over HTTP; every stored file is read back
(shards decompressed) and searched for every value the profiles carried.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.run.conftest import API_KEY, subscribed, write_config
from worker.cli import main
from worker.contacts.samples import write_jsonl
from worker.sim import SimSettings
from worker.syncstate.shard import MAGIC, decode_shard

FIELDS = [{"id": 1, "title": "Nickname", "type": "text", "perstag": "NICKNAME"},
          {"id": 2, "title": "Score", "type": "number", "perstag": "SCORE"},
          {"id": 3, "title": "Birthday", "type": "date", "perstag": "BIRTHDAY"}]
FIELDS_TOML = """
max_removal_fraction = 0.5
[exports.vip.fields]
NICKNAME = "Nick"
SCORE = "Score"
BIRTHDAY = { field = "Birthday", date_format = "DD/MM/YYYY" }
"""
BAD_DATE = "zqx-not-a-date"


@pytest.fixture
def sim_settings() -> SimSettings:
    return SimSettings(api_keys=(API_KEY,), processing_delay=0.2, rate_scale=20, fields=FIELDS)


def person(i: int, version: int = 0) -> dict:
    return {"EmailAddress": f"user{i}@example.com", "FirstName": f"Zyxfirst{i}v{version}",
            "LastName": f"Qwelast{i}", "Phone": f"+1999555{i:04d}{version}", "Nick": f"nick-{i}-secretive",
            "Score": 4242424000 + i, "Birthday": f"{1 + i % 28:02d}/06/1987"}


def values_of(p: dict) -> list[str]:
    """What must not outlive the run: names, phone, every field value (as given and as sent)."""
    day = p["Birthday"][:2]
    return [p["FirstName"], p["LastName"], p["Phone"], p["Nick"], str(p["Score"]), p["Birthday"], f"1987-06-{day}"]


def stored_text(state: Path) -> dict[str, bytes]:
    """Every file of the store (failure reports aside) as searchable bytes; shards decompressed."""
    found = {}
    for path in state.rglob("*"):
        if not path.is_file() or path.name.startswith(".") or path.name.startswith("failures."):
            continue
        data = path.read_bytes()
        if data.startswith(MAGIC):
            block = decode_shard(data, str(path))
            data += "\n".join(block.emails).encode()
        found[str(path.relative_to(state))] = data
    return found


def sync(capsys: pytest.CaptureFixture[str], config: Path, snapshot: Path) -> dict:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(snapshot)])
    event = json.loads(capsys.readouterr().out)
    assert rc in (0, 3), event
    return event


def test_no_contact_data_outlives_its_run_but_the_failure_report(tmp_path, capsys, sim):
    url, simc = sim
    config = write_config(tmp_path, url, rate_scale=20, export=FIELDS_TOML)
    state = tmp_path / "state"
    first = [person(i) for i in range(120)]
    event = sync(capsys, config, write_jsonl(tmp_path / "a.jsonl", first))
    assert event["counts"]["added"] == 120 and set(subscribed(simc)) == {p["EmailAddress"] for p in first}

    # the next refresh: 30 changed, 10 left, 10 new, one with a field value that cannot be sent
    second = [person(i, 1 if i < 30 else 0) for i in range(10, 130)]
    second.append({**person(500), "Birthday": BAD_DATE})
    event = sync(capsys, config, write_jsonl(tmp_path / "b.jsonl", second))
    c = event["counts"]
    assert (c["added"], c["updated"], c["removed"], c["invalid"]) == (10, 20, 10, 1), c

    files = stored_text(state)
    assert not [k for k in files if "/plan/" in k or "/batches/" in k], "plan or batch records outlived the run"
    needles = {v for p in [*first, *second] for v in values_of(p)}
    leaks = {(k, v) for k, data in files.items() for v in needles if v.encode() in data}
    assert not leaks, sorted(leaks)[:10]
    # the search can find such a value: the failure report (the one place allowed) has the bad one
    report = Path(event["failures_uri"].removeprefix("file://")).read_text()
    assert BAD_DATE in report
    # emails are what the state keeps: the search is not blind to what is there
    assert any(b"user15@example.com" in data for data in files.values())


def run_ids(runs: Path) -> list[str]:
    """Runs with a record left (the file store may leave an empty folder behind; it holds nothing)."""
    return sorted(p.name for p in runs.iterdir() if any(f.is_file() for f in p.rglob("*")))


def _age(run: Path, days: float) -> None:
    when = time.time() - days * 86_400
    for path in run.rglob("*"):
        os.utime(path, (when, when))


def test_state_prune_and_the_next_commit_remove_runs_past_the_retention(tmp_path, capsys, sim):
    url, _ = sim
    config = write_config(tmp_path, url, rate_scale=20, worker="retention_days = 30")
    runs = tmp_path / "state" / "exports" / "vip" / "runs"
    ids = []
    for n in range(3):
        ids.append(sync(capsys, config, write_jsonl(tmp_path / f"s{n}.jsonl", [person(i, n) for i in range(20)]))
                   ["run_id"])
    assert run_ids(runs) == sorted(ids)
    _age(runs / ids[0], 45)
    _age(runs / ids[1], 31)

    assert main(["state", "prune", "--config", str(config), "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and sorted(r["run_id"] for r in dry["runs"]) == sorted(ids[:2])
    assert run_ids(runs) == sorted(ids)  # a dry run removes nothing

    assert main(["state", "prune", "--config", str(config)]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["removed_runs"] == 2 and done["kept_runs"] == 1
    assert run_ids(runs) == [ids[2]]
    assert (tmp_path / "state" / "exports" / "vip" / "synced").exists()

    # each commit prunes too: age the last run, sync again, and only the new run is left
    _age(runs / ids[2], 30.5)
    new = sync(capsys, config, write_jsonl(tmp_path / "s9.jsonl", [person(i, 9) for i in range(20)]))["run_id"]
    assert run_ids(runs) == [new]
