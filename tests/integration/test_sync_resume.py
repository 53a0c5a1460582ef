"""A sync killed with SIGKILL resumes from its records: nothing lost, nothing re-sent beyond in-flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from tests.integration.conftest import API_KEY, bulk_posts, subscribed, write_config
from worker.samples import make_segment, write_jsonl
from worker.sim import SimClient, SimSettings, SimulatorServer


def test_kill_9_mid_send_then_resume(tmp_path):
    with SimulatorServer(SimSettings(api_keys=(API_KEY,), processing_delay=0.3)) as server:
        simc = SimClient(server.url)
        config = write_config(tmp_path, server.url, rate_scale=1)  # real pacing: a POST every ~0.6 s
        seg = make_segment(range(4000))
        snap = write_jsonl(tmp_path / "a.jsonl", seg.profiles)
        cmd = [sys.executable, "-m", "worker", "sync", "--config", str(config), "--export", "vip",
               "--snapshot", str(snap)]
        env = dict(os.environ, SEGMENT_EXPORT_TEST_KEY=API_KEY)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        runs = tmp_path / "state" / "exports" / "vip" / "runs"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(list(runs.glob("*/batches/*.accepted"))) >= 4:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            raise AssertionError("the sync never got going")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        sent_before = len(bulk_posts(simc))
        assert 4 <= sent_before < 16, "killed too late to prove anything"
        assert not (tmp_path / "state" / "exports" / "vip" / "synced").exists()  # nothing committed

        done = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        event = json.loads(done.stdout)
        assert event["counts"]["added"] == 4000 and event["counts"]["failed"] == 0
        assert set(subscribed(simc)) == set(seg.expected)
        # 16 batches in all; at most the one POST in flight at the kill is sent twice
        assert 16 <= len(bulk_posts(simc)) <= 17
        assert API_KEY not in done.stderr.decode() + done.stdout.decode()

        # running the same sync again is a new run against the committed state: nothing to send
        again = subprocess.run(cmd, env=env, capture_output=True, timeout=60)
        assert again.returncode == 0
        assert json.loads(again.stdout)["counts"]["unchanged"] == 4000
        assert len(bulk_posts(simc)) <= 17
