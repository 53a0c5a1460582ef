"""Issue 8, must show 1: the removal guard.

An empty snapshot, or one missing 30% of the list, fails with ``removal_guard`` and sends nothing (the
simulator's request log holds no write after the refusal and the list's members are unchanged); the
message gives both counts, the limit and how to override. The one-run override goes through and leaves
the list exact; dry runs report the trip. ``on_leave = "keep"`` never trips it, ``max_removals`` trips it
on its own, and a snapshot with no valid profile (a renamed email column) always trips it. Through the
real worker too: ``export.failed`` with the code, ``request --allow-mass-removal`` as the override, and a
``segment.refreshed`` that tries to carry the override is dead-lettered.

Real parts only: the command line in this process, the worker as a subprocess on RabbitMQ, the
ActiveCampaign simulator over HTTP.
"""

from __future__ import annotations

import csv
import urllib.request
from pathlib import Path

import orjson
import pytest

from tests.e2e.conftest import ExportSpec, Sim, refreshed, run_id_for, wait_for, write_config
from tests.run.safety.support import cli, direct_config, writes
from worker.contacts.samples import email_of, make_segment, person, write_jsonl

EVERYONE = 100


def synced_list(tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str], export: str = "") -> Path:
    """A config whose export ``vip`` has synced 100 people to list 3 (all subscribed); returns the config."""
    config = direct_config(tmp_path, sim, export=export)
    full = write_jsonl(tmp_path / "snap" / "everyone.jsonl", make_segment(range(EVERYONE)).profiles)
    rc, event, err = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", full)
    assert rc == 0 and event["counts"]["added"] == EVERYONE, (event, err)
    assert len(sim.subscribed(3)) == EVERYONE
    return config


def snapshot_without(tmp_path: Path, gone: int) -> tuple[Path, dict[str, dict]]:
    """A snapshot of the first ``EVERYONE - gone`` people (``gone`` = 100: a whole file of no rows).

    A file with no rows is one line break: a 0-byte part is refused as cut short before the guard is asked.
    """
    seg = make_segment(range(EVERYONE - gone))
    path = write_jsonl(tmp_path / "snap" / f"without-{gone}.jsonl", seg.profiles)
    if not seg.profiles:
        path.write_bytes(b"\n")
    return path, seg.expected


@pytest.mark.parametrize("gone", [EVERYONE, 30], ids=["empty-snapshot", "missing-30-percent"])
def test_guard_refuses_sends_nothing_previews_and_is_overridden_once(
        tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str], gone: int) -> None:
    config = synced_list(tmp_path, sim, capsys)
    snap, expected = snapshot_without(tmp_path, gone)
    sync = ("sync", "--config", config, "--export", "vip", "--snapshot", snap)
    members = sim.client.members(3)
    seen = len(sim.client.requests())

    rc, event, _ = cli(capsys, *sync)
    assert rc == 1
    assert event["type"] == "export.failed" and event["status"] == "failed"
    assert event["error"]["code"] == "removal_guard"
    message = event["error"]["message"]
    assert f"unsubscribe {gone:,} of the {EVERYONE:,} contacts" in message, message  # both counts
    assert "--allow-mass-removal" in message, message  # how to override
    assert "max_removal_fraction = 0.2 (20 contacts)" in message, message  # the limit, in both cases
    if gone == EVERYONE:
        assert "no valid profile" in message, message
    assert writes(sim, seen) == [], "a write request reached ActiveCampaign after the guard refused the run"
    assert sim.client.members(3) == members, "the list changed although the run was refused"

    # a preview says the same, through both commands, and changes nothing either
    rc, preview, err = cli(capsys, *sync, "--dry-run")
    assert rc == 1 and preview["would_fail"]["code"] == "removal_guard" and "removal_guard" in err
    assert preview["counts"]["removed"] == gone
    rc, preview, _ = cli(capsys, "request", "--config", config, "--export", "vip", "--snapshot", snap, "--dry-run")
    assert rc == 1 and preview["would_fail"]["code"] == "removal_guard"
    assert writes(sim, seen) == [] and sim.client.members(3) == members

    # the override, for this one run: it proceeds and the list ends exact
    rc, event, err = cli(capsys, *sync, "--allow-mass-removal")
    assert rc == 0 and event["status"] == "succeeded", (event, err)
    assert event["counts"]["removed"] == gone
    assert set(sim.subscribed(3)) == set(expected)
    unsubscribed = {e for e, m in sim.client.members(3).items() if m["status"] == "unsubscribed"}
    assert unsubscribed == {email_of(person(i)) for i in range(EVERYONE - gone, EVERYONE)}


def test_the_override_is_for_one_run_only(tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str]) -> None:
    """After an overridden run, the next mass removal is refused again (the guard applies to the new base)."""
    config = synced_list(tmp_path, sim, capsys)
    snap70, _ = snapshot_without(tmp_path, 30)
    assert cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", snap70,
               "--allow-mass-removal")[0] == 0
    snap40, _ = snapshot_without(tmp_path, 60)  # 30 of the 70 still subscribed leave: 43%
    members, seen = sim.client.members(3), len(sim.client.requests())
    rc, event, _ = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", snap40)
    assert rc == 1 and event["error"]["code"] == "removal_guard"
    assert "unsubscribe 30 of the 70 contacts" in event["error"]["message"]
    assert writes(sim, seen) == [] and sim.client.members(3) == members


@pytest.mark.parametrize(("gone", "trips"), [(20, False), (21, True)])
def test_the_fraction_is_a_strict_limit(tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str],
                                        gone: int, trips: bool) -> None:
    """20% of 100 may go (the default 0.2 is "more than", not "at least"); 21 may not."""
    config = synced_list(tmp_path, sim, capsys)
    snap, expected = snapshot_without(tmp_path, gone)
    rc, event, _ = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", snap)
    if trips:
        assert rc == 1 and event["error"]["code"] == "removal_guard"
        assert len(sim.subscribed(3)) == EVERYONE
    else:
        assert rc == 0 and event["counts"]["removed"] == gone
        assert set(sim.subscribed(3)) == set(expected)


@pytest.mark.parametrize("gone", [EVERYONE, 30], ids=["empty-snapshot", "missing-30-percent"])
def test_on_leave_keep_never_trips(tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str], gone: int) -> None:
    config = synced_list(tmp_path, sim, capsys, export='on_leave = "keep"')
    snap, _ = snapshot_without(tmp_path, gone)
    members = sim.client.members(3)
    seen = len(sim.client.requests())
    rc, event, err = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", snap)
    assert rc == 0 and event["status"] == "succeeded", (event, err)
    assert event["counts"]["removed"] == 0
    assert [r for r in writes(sim, seen) if r["path"].endswith("/import/bulk_import")] == []  # nothing changed
    assert sim.client.members(3) == members  # kept: everyone still subscribed, untouched


@pytest.mark.parametrize(("gone", "trips"), [(5, False), (6, True)])
def test_max_removals_trips_on_its_own(tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str], gone: int,
                                       trips: bool) -> None:
    """With the fraction out of the way (1.0), the absolute count alone refuses a run over it."""
    config = synced_list(tmp_path, sim, capsys, export="max_removal_fraction = 1.0\nmax_removals = 5")
    snap, expected = snapshot_without(tmp_path, gone)
    members, seen = sim.client.members(3), len(sim.client.requests())
    rc, event, _ = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", snap)
    if not trips:
        assert rc == 0 and event["counts"]["removed"] == gone
        assert set(sim.subscribed(3)) == set(expected)
        return
    assert rc == 1 and event["error"]["code"] == "removal_guard"
    assert "max_removals = 5" in event["error"]["message"]
    assert f"unsubscribe {gone} of the {EVERYONE} contacts" in event["error"]["message"]
    assert writes(sim, seen) == [] and sim.client.members(3) == members


def test_no_valid_profile_always_trips(tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str]) -> None:
    """The email field renamed upstream: every profile is invalid. Even a limit that allows removing
    everyone (fraction 1.0) does not let that run unsubscribe the list."""
    config = synced_list(tmp_path, sim, capsys, export="max_removal_fraction = 1.0")
    renamed = write_jsonl(tmp_path / "snap" / "renamed.jsonl", [
        {("Email" if k == "EmailAddress" else k): v for k, v in person(i).items()} for i in range(EVERYONE)])
    members, seen = sim.client.members(3), len(sim.client.requests())
    rc, event, _ = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", renamed)
    assert rc == 1 and event["error"]["code"] == "removal_guard"
    assert "no valid profile" in event["error"]["message"]
    assert writes(sim, seen) == [] and sim.client.members(3) == members
    rc, preview, _ = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", renamed, "--dry-run")
    assert rc == 1 and preview["would_fail"]["code"] == "removal_guard"
    assert preview["counts"]["invalid"] == EVERYONE


@pytest.mark.parametrize(("delimiter", "header", "hint"), [
    (",", ["Email", "FirstName", "LastName", "Phone"], "'Email', 'FirstName', 'LastName', 'Phone'"),
    (";", ["EmailAddress", "FirstName", "LastName", "Phone"], "split on ';' the header has it, so the file is "
                                                              "';'-delimited: export it comma-separated"),
    ("\t", ["EmailAddress", "FirstName", "LastName", "Phone"], "split on tab the header has it"),
])
def test_a_csv_header_without_the_email_column_fails_naming_its_columns(
        tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str], delimiter: str, header: list[str],
        hint: str) -> None:
    """Issue 19: a renamed column, or a file with another delimiter (one column holding the whole header
    line), made every row "missing its email"; now the run fails before any request and says why."""
    config = synced_list(tmp_path, sim, capsys, export="max_removal_fraction = 1.0")
    snap = tmp_path / "snap" / "other.csv"
    with snap.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(header)
        for i in range(EVERYONE):
            p = person(i)
            w.writerow([p["EmailAddress"], p["FirstName"], p["LastName"], p["Phone"]])
    members, seen = sim.client.members(3), len(sim.client.requests())
    rc, event, _ = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", snap)
    assert rc == 1 and event["error"]["code"] == "snapshot_unreadable"
    message = event["error"]["message"]
    assert "has no column 'EmailAddress' (exports.vip.mapping.email); its header (line 1) has" in message
    assert hint in message
    assert writes(sim, seen) == [] and sim.client.members(3) == members


# ------------------------------------------------------------------------------------------ the worker

def _failed_events(broker, run_id: str) -> list[dict]:
    broker.read_events()
    return [e for e in broker.events if e["type"] == "export.failed" and e["run_id"] == run_id]


def _scrape(port: int) -> str:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def test_worker_refuses_an_empty_refresh_and_request_overrides(tmp_path: Path, sim: Sim, rabbit, workers,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, sim, rabbit, exports=[ExportSpec("vip", 3)])
    worker = workers(config)
    everyone = make_segment(range(EVERYONE))
    full = write_jsonl(tmp_path / "snap" / "everyone.jsonl", everyone.profiles)
    rabbit.publish(refreshed(full, refresh_id="r-full", occurred_at="2026-11-30T08:00:00Z"))
    rabbit.wait_completions(1, 90, check=worker.assert_alive)
    sim.assert_list_exact(3, everyone.expected)
    members, seen = sim.client.members(3), len(sim.client.requests())

    # an empty refresh (a whole file with no rows; a 0-byte one is refused as cut short), as upstream would
    # publish it by mistake: refused, nothing sent
    empty = tmp_path / "snap" / "empty.jsonl"
    empty.write_bytes(b"\n")
    rabbit.publish(refreshed(empty, refresh_id="r-empty", occurred_at="2026-11-30T09:00:00Z"))
    failed = wait_for(lambda: _failed_events(rabbit, run_id_for("vip", "r-empty")), 90, "export.failed",
                      check=worker.assert_alive)
    assert len(failed) == 1 and failed[0]["error"]["code"] == "removal_guard"
    assert f"unsubscribe {EVERYONE} of the {EVERYONE} contacts" in failed[0]["error"]["message"]
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert writes(sim, seen) == [] and sim.client.members(3) == members
    assert [e for e in rabbit.events if e["type"] == "export.failed"] == failed  # permanent: not retried
    metrics = _scrape(int(next(line.split("=")[1] for line in config.read_text().splitlines()
                               if line.startswith("metrics_port"))))
    assert 'segment_export_removal_guard_trips_total{export="vip"} 1.0' in metrics

    # the override cannot ride on a segment.refreshed: dead-lettered as malformed, nothing runs
    bad = dict(refreshed(empty, refresh_id="r-sneaky", occurred_at="2026-11-30T09:30:00Z"), allow_mass_removal=True)
    rabbit.publish_raw([orjson.dumps(bad)])
    wait_for(lambda: rabbit.read_dead(), 60, "the dead-lettered refresh", check=worker.assert_alive)
    assert [orjson.loads(body)["refresh_id"] for body, _ in rabbit.dead] == ["r-sneaky"]
    headers = rabbit.dead[0][1]
    assert headers.get("x-segment-export-error-class") == "schema", headers
    assert "allow_mass_removal" in str(headers.get("x-segment-export-error")), headers
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert writes(sim, seen) == [] and sim.client.members(3) == members

    # request --dry-run reports the trip; request --allow-mass-removal goes through on the worker
    rc, preview, _ = cli(capsys, "request", "--config", config, "--export", "vip", "--dry-run")
    assert rc == 1 and preview["would_fail"]["code"] == "removal_guard"
    assert preview["snapshot"].endswith("empty.jsonl")  # the segment's last known snapshot
    rc, published, _ = cli(capsys, "request", "--config", config, "--export", "vip", "--allow-mass-removal")
    assert rc == 0 and published["allow_mass_removal"] is True
    done = wait_for(lambda: [e for e in rabbit.completions() if e["counts"]["removed"]], 90,
                    "the overridden run's export.completed", check=worker.assert_alive)
    assert len(done) == 1 and done[0]["status"] == "succeeded" and done[0]["counts"]["removed"] == EVERYONE
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert sim.subscribed(3) == {}
    assert len(rabbit.completions()) == 2 and len(rabbit.read_dead()) == 1  # nothing else happened
