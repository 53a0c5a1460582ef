"""Issue 18, must-show 1 and the owned list: drift reported by the next run, verify says who, --repair and
one more run make the list exact. The real `segment-export` commands against the simulator over HTTP."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.run.conftest import API_KEY, subscribed, wait_for, write_config
from worker.cli import main
from worker.contacts.samples import make_segment, write_jsonl
from worker.sim import SimClient, SimSettings, SimulatorServer
from worker.state import open_store


def sync(capsys, config: Path, snapshot: Path, *extra: str) -> tuple[int, dict]:
    rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(snapshot), *extra])
    out = capsys.readouterr().out
    return rc, json.loads(out) if out.strip() else {}


def verify(capsys, config: Path, *extra: str) -> tuple[int, str]:
    rc = main(["verify", "--config", str(config), "--export", "vip", *extra])
    return rc, capsys.readouterr().out


def last_report(tmp_path: Path) -> dict:
    store = open_store((tmp_path / "state").as_uri())
    reports = [k for k in store.list("exports/vip/verify/") if k.endswith("/report.json")]
    assert reports, "verify kept no report in the state store"
    return orjson.loads(store.get(sorted(reports)[-1]) or b"{}")


def refused(simc: SimClient) -> list[dict]:
    return [r for r in simc.requests() if r["status"] == 429 or (r["status"] == 400 and "bulk" in r["path"])]


@pytest.mark.slow
def test_deleted_and_unsubscribed_contacts_are_reported_verified_and_repaired(tmp_path, capsys):
    """20,000 synced; 300 deleted and 200 unsubscribed by the person in ActiveCampaign. The next run reports
    the drift (event, gauge); verify names the 300 and the 200; --repair and one more run: the 300 are
    back, the 200 stay out, the list is exact."""
    with SimulatorServer(SimSettings(api_keys=(API_KEY,), processing_delay=0.2, rate_scale=20)) as server:
        simc = SimClient(server.url)
        config = write_config(tmp_path, server.url, rate_scale=20)
        seg = make_segment(range(20_000), seed=18)
        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r1.jsonl", seg.profiles))
        assert rc == 0 and event["counts"]["added"] == 20_000
        assert event["drift"] == {"list_subscribed": 20_000, "synced_subscribed": 20_000, "missing": 0,
                                  "unexpected": 0, "owns_list": False}

        picked = random.Random(18).sample(sorted(seg.expected), 500)
        deleted, unsubscribed = set(picked[:300]), set(picked[300:])
        for email in deleted:
            assert simc.delete_contact(email)
        for email in unsubscribed:
            simc.unsubscribe(email, 3)  # the person: a campaign email's link

        metrics = tmp_path / "run2.prom"
        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r2.jsonl", seg.profiles), "--metrics-file",
                         str(metrics))
        assert rc == 0 and event["counts"]["unchanged"] == 20_000  # the diff alone cannot see it...
        assert event["drift"] == {"list_subscribed": 19_500, "synced_subscribed": 20_000, "missing": 500,
                                  "unexpected": 0, "owns_list": False}  # ...the drift check does
        scrape = metrics.read_text()
        assert 'segment_export_list_drift_contacts{export="vip"} 500.0' in scrape
        assert 'segment_export_list_drift_ratio{export="vip"} 0.025' in scrape

        before = len(simc.requests())
        rc, table = verify(capsys, config)
        assert rc == 3, table
        report = last_report(tmp_path)
        assert set(report["missing"]) == deleted
        assert set(report["unsubscribed_by_person"]) == unsubscribed
        assert report["unsubscribed_by_other"] == [] and report["unexpected"] == []
        assert (report["list_subscribed"], report["list_unsubscribed"]) == (19_500, 200)
        reads = simc.requests(before)
        assert report["requests"] == len(reads) == 195 + 2 + 200  # pages of 100 of each status, one lookup each
        assert re.search(r"missing from ActiveCampaign\s+300 ", table), table
        assert re.search(r"unsubscribed by the person\s+200 ", table), table
        assert not any(email in table for email in picked)  # counts only on the terminal

        rc, table = verify(capsys, config, "--repair")
        assert rc == 0 and "repaired: forgotten_missing 300, marked_skipped 200" in table

        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r3.jsonl", seg.profiles))
        c = event["counts"]
        assert rc == 0 and (c["added"], c["skipped"], c["unchanged"]) == (300, 200, 19_500)
        assert event["drift"] == {"list_subscribed": 19_800, "synced_subscribed": 19_800, "missing": 0,
                                  "unexpected": 0, "owns_list": False}
        members = simc.members(3)
        assert set(subscribed(simc)) == set(seg.expected) - unsubscribed  # the list is exact
        assert all(members[e]["status"] == "unsubscribed" for e in unsubscribed)
        assert simc.stats()["resubscribed"] == 0
        assert not refused(simc)


def test_an_owned_list_s_unexpected_subscribers_are_unsubscribed_behind_the_removal_guard(tmp_path, capsys):
    """owns_list: subscribers the export never sent are drift; --repair takes them in and the next run
    unsubscribes them, unless there are more than the removal guard allows."""
    with SimulatorServer(SimSettings(api_keys=(API_KEY,), processing_delay=0.1, rate_scale=20)) as server:
        simc = SimClient(server.url)
        config = write_config(tmp_path, server.url, rate_scale=20, export="owns_list = true")
        seg = make_segment(range(1_000), seed=3)
        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r1.jsonl", seg.profiles))
        assert rc == 0
        strangers = {f"stranger{i}@example.org" for i in range(40)}
        for email in strangers:
            simc.add_contact(email, lists={3: "subscribed"})
        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r2.jsonl", seg.profiles))
        assert event["drift"] == {"list_subscribed": 1_040, "synced_subscribed": 1_000, "missing": 0,
                                  "unexpected": 40, "owns_list": True}
        rc, table = verify(capsys, config, "--repair")
        assert rc == 0 and re.search(r"subscribed, never sent by this export\s+40 ", table), table
        assert set(last_report(tmp_path)["unexpected"]) == strangers
        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r3.jsonl", seg.profiles))
        assert rc == 0 and event["counts"]["removed"] == 40
        assert event["drift"]["unexpected"] == 0 and event["drift"]["list_subscribed"] == 1_000
        assert set(subscribed(simc)) == set(seg.expected)

        # many more strangers than the guard allows (20% of the list): the next run refuses
        crowd = {f"crowd{i}@example.org" for i in range(400)}
        for email in crowd:
            simc.add_contact(email, lists={3: "subscribed"})
        rc, table = verify(capsys, config, "--repair")
        assert rc == 0
        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r4.jsonl", seg.profiles))
        assert rc == 1 and event["error"]["code"] == "removal_guard"
        assert crowd <= set(subscribed(simc))  # nothing was sent
        rc, event = sync(capsys, config, write_jsonl(tmp_path / "r4.jsonl", seg.profiles), "--allow-mass-removal")
        assert rc == 0 and event["counts"]["removed"] == 400
        assert set(subscribed(simc)) == set(seg.expected)


def test_an_interrupted_verify_resumes_from_its_checkpoint(tmp_path, capsys):
    """kill -9 in the middle of the read; run again: it goes on from the last checkpoint, and finds the same."""
    with SimulatorServer(SimSettings(api_keys=(API_KEY,), processing_delay=0.1, rate_scale=20)) as server:
        simc = SimClient(server.url)
        config = write_config(tmp_path, server.url, rate_scale=20)
        seg = make_segment(range(6_000), seed=5)
        assert sync(capsys, config, write_jsonl(tmp_path / "r1.jsonl", seg.profiles))[0] == 0
        gone = sorted(seg.expected)[::997]
        for email in gone:
            simc.delete_contact(email)
        slow = write_config(tmp_path, server.url, rate_scale=1)  # 3.3 reads a second: time to kill it
        before = len(simc.requests())
        proc = subprocess.Popen([sys.executable, "-m", "worker", "verify", "--config", str(slow), "--export", "vip"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            store = open_store((tmp_path / "state").as_uri())

            def checkpointed_twice() -> bool:
                current = store.get("exports/vip/verify/current")
                data = current and store.get(f"exports/vip/verify/{current.decode()}/checkpoint")
                return bool(data) and orjson.loads(data)["requests"] >= 40

            wait_for(checkpointed_twice, 120, "a verify checkpoint after 40 pages",
                     check=lambda: None if proc.poll() is None else pytest.fail("verify ended early"))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        first = len(simc.requests(before))
        rc, _ = verify(capsys, config)
        assert rc == 3
        report = last_report(tmp_path)
        assert set(report["missing"]) == set(gone)
        pages = -(-(6_000 - len(gone)) // 100)
        total = len(simc.requests(before))
        assert report["requests"] == pages + 1  # and one empty page of unsubscribed; each page counted once
        assert total <= pages + 1 + 20, (first, total)  # re-read at most the pages after the last checkpoint
