"""A sync killed with SIGKILL resumes from its records: nothing lost, nothing re-sent beyond in-flight.

"In flight at the kill" is measured, not assumed: the bulk imports ActiveCampaign accepted minus the ones
the run had recorded as accepted when it died. Only those may be sent twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.run.conftest import API_KEY, bulk_posts, in_flight, subscribed, wait_for, write_config
from worker.contacts.samples import make_segment, write_jsonl
from worker.sim import SimClient, SimSettings, SimulatorServer

BATCHES = 16  # 4000 contacts, 250 a bulk import


@pytest.mark.slow  # AC's real bulk pace: about 20 s
def test_kill_9_mid_send_then_resume(tmp_path):
    with SimulatorServer(SimSettings(api_keys=(API_KEY,), processing_delay=0.3)) as server:
        simc = SimClient(server.url)
        # AC's real bulk pace (a POST every ~0.6 s) leaves seconds between the 4th accepted batch and the end
        # of the run: the kill lands mid-send.
        # A short lease: the killed sync's lease must expire before the resume may run (and so a short request
        # timeout: a lease outlasts three of them).
        config = write_config(tmp_path, server.url, rate_scale=1,
                              worker="lease_seconds = 3\nrequest_timeout_seconds = 1")
        seg = make_segment(range(4000))
        snap = write_jsonl(tmp_path / "a.jsonl", seg.profiles)
        cmd = [sys.executable, "-m", "worker", "sync", "--config", str(config), "--export", "vip",
               "--snapshot", str(snap)]
        env = dict(os.environ, SEGMENT_EXPORT_TEST_KEY=API_KEY)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        runs = tmp_path / "state" / "exports" / "vip" / "runs"

        def accepted() -> int:
            return len(list(runs.glob("**/*.accepted")))

        def still_running() -> None:
            assert proc.poll() is None, proc.communicate()

        try:
            wait_for(lambda: accepted() >= 4, 60, "the sync to record 4 accepted batches", check=still_running)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        accepted_at_kill = accepted()
        assert not (tmp_path / "state" / "exports" / "vip" / "synced").exists(), "the run committed before the kill"
        wait_for(lambda: not in_flight(simc), 30, "the POSTs in flight at the kill to be answered")
        sent_at_kill = len(bulk_posts(simc))
        in_flight_at_kill = sent_at_kill - accepted_at_kill  # accepted by AC, not yet recorded by the run
        # the importer has at most 16 POSTs out at once
        assert 4 <= accepted_at_kill <= BATCHES and 0 <= in_flight_at_kill <= 16, (accepted_at_kill, sent_at_kill)

        def resumed() -> subprocess.CompletedProcess[bytes] | None:
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
            if done.returncode == 1 and b"holds the export's lease" in done.stderr:
                return None  # the killed sync's lease has not expired yet; nothing was sent
            return done

        done = wait_for(resumed, 60, "the killed sync's lease to expire")
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        event = json.loads(done.stdout)
        assert event["counts"]["added"] == 4000 and event["counts"]["failed"] == 0
        assert set(subscribed(simc)) == set(seg.expected)
        # every batch once, plus at most the ones in flight at the kill: recorded batches were not re-sent
        posts = len(bulk_posts(simc))
        assert BATCHES <= posts <= BATCHES + in_flight_at_kill, (posts, in_flight_at_kill)
        assert API_KEY not in done.stderr.decode() + done.stdout.decode()

        # running the same sync again is a new run against the committed state: nothing to send
        again = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
        assert again.returncode == 0
        assert json.loads(again.stdout)["counts"]["unchanged"] == 4000
        assert len(bulk_posts(simc)) == posts
