"""Must-show 1: a published segment.refreshed becomes exactly one export.completed per export, with the right
counts, and the simulator's list is exact; two exports of one segment both run. On RabbitMQ and on SQS."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.e2e.conftest import (
    API_KEY,
    KEY_ENV,
    PAGE,
    ROOT,
    ExportSpec,
    run_id_for,
    write_config,
)
from worker.contacts.samples import make_segment, write_jsonl


def test_refresh_to_completion_two_exports(tmp_path, sim, broker, workers):
    n = 20_000 if broker.kind == "amqp" else 12_000  # both: several 5,000-row pages
    assert n > 2 * PAGE
    seg = make_segment(range(n), invalid_rate=0.01, duplicate_rate=0.01, seed=5)
    snap = write_jsonl(tmp_path / "snap" / "r1.jsonl", seg.profiles)
    config = write_config(tmp_path, sim, broker, exports=[ExportSpec("vip", 3), ExportSpec("vip-copy", 4)])
    worker = workers(config)

    # through the CLI, as an upstream without its own publisher would
    out = subprocess.run([sys.executable, "-m", "worker", "publish", "--config", str(config), "--segment",
                          "vip-customers", "--snapshot", f"file://{snap}", "--refresh-id", "refresh-001"],
                         cwd=ROOT, env={**os.environ, KEY_ENV: API_KEY}, capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    published = json.loads(out.stdout)
    assert published["type"] == "segment.refreshed" and published["refresh_id"] == "refresh-001"

    events = broker.wait_completions(2, 150, check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)
    events = broker.completions()
    assert sorted(e["export"] for e in events) == ["vip", "vip-copy"], events
    for e in events:
        assert e["run_id"] == run_id_for(e["export"], "refresh-001")
        assert e["refresh_id"] == "refresh-001" and e["segment"] == {"id": "vip-customers"}
        assert e["status"] == "succeeded"
        assert e["list_id"] == {"vip": 3, "vip-copy": 4}[e["export"]]
        assert e["counts"] == {"profiles": len(seg.profiles), "invalid": seg.invalid, "duplicates": seg.duplicates,
                               "added": len(seg.expected), "updated": 0, "unchanged": 0, "removed": 0,
                               "failed": 0, "skipped": 0}, e["counts"]
        blob = json.dumps(e)
        assert API_KEY not in blob and sim.url not in blob and "@" not in blob  # no key, host or email
    sim.assert_list_exact(3, seg.expected)
    sim.assert_list_exact(4, seg.expected)
    assert not [e for e in broker.events if e["type"] != "export.completed"]
    assert broker.read_dead() == []
    # each batch sent once: 250 contacts a batch, per export
    assert len(sim.bulk_posts()) == 2 * -(-len(seg.expected) // 250)
    assert worker.alive()
