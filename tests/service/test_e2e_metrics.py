"""Issue 5 must-shows 1 and 5 on RabbitMQ: a worker process runs an export with failures; a scrape of
its /metrics agrees with the completion event's counts and with the simulator's request log, the
histograms have observations, and the worker's log has no full email and no API key."""

from __future__ import annotations

import json
import re
import tomllib

from tests.e2e.conftest import API_KEY, refreshed, write_config
from tests.service.support import family_names, get, parse, value
from tests.service.test_deploy import metric_names_used, unexported
from worker.contacts.samples import make_segment, write_jsonl

EMAIL = re.compile(r"[A-Za-z0-9._%+-]{2,}@[A-Za-z0-9-]+\.[A-Za-z]")


def test_scrape_agrees_with_completion_and_simulator(tmp_path, sim, rabbit, workers):
    seg = make_segment(range(600), invalid_rate=0.01, duplicate_rate=0.01, seed=3)
    excluded = sorted(seg.expected)[:3]
    for email in excluded:  # refused by the account: failed rows, a partial run
        sim.client.exclude(email)
    snap = write_jsonl(tmp_path / "snap" / "r1.jsonl", seg.profiles)
    config = write_config(tmp_path, sim, rabbit)
    port = tomllib.loads(config.read_text())["worker"]["metrics_port"]
    base = f"http://127.0.0.1:{port}"
    worker = workers(config)
    assert get(f"{base}/readyz")[0] == 200 and get(f"{base}/healthz")[0] == 200

    rabbit.publish(refreshed(snap, refresh_id="obs-1"))
    (event,) = rabbit.wait_completions(1, 60, check=worker.assert_alive)
    rabbit.wait_idle(30, check=worker.assert_alive)
    status, text = get(f"{base}/metrics")
    assert status == 200
    m = parse(text)

    counts = event["counts"]
    assert event["status"] == "partial" and counts["failed"] >= len(excluded), counts
    assert value(m, "segment_export_runs_total", export="vip", status="partial") == 1
    for outcome in ("added", "updated", "unchanged", "removed", "invalid", "failed", "skipped"):
        assert value(m, "segment_export_profiles_total", export="vip", outcome=outcome) == counts[outcome], outcome
    assert value(m, "segment_export_events_consumed_total", type="segment.refreshed", outcome="partial") == 1
    assert value(m, "segment_export_last_success_timestamp_seconds", export="vip") > 0
    assert value(m, "segment_export_run_duration_seconds_count", export="vip") == 1
    assert value(m, "segment_export_runs_in_progress") == 0
    assert value(m, "segment_export_worker_info", broker="amqp") == 1

    log = [r for r in sim.client.requests() if not r["path"].startswith("/_sim")]
    assert value(m, "segment_export_ac_requests_total") == len(log)
    by_status: dict[str, int] = {}
    for r in log:
        by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + 1
    for code, n in by_status.items():
        assert value(m, "segment_export_ac_requests_total", status=code) == n, code
    bulk = sum(1 for r in log if r["method"] == "POST" and r["path"].endswith("import/bulk_import"))
    assert bulk and value(m, "segment_export_ac_requests_total", endpoint="import/bulk_import") == bulk
    assert value(m, "segment_export_ac_request_duration_seconds_count") == len(log)
    assert value(m, "segment_export_ac_rate_limited_total") == by_status.get("429", 0)
    assert "segment_export_rate_limit_wait_seconds_total" in m
    # must-show 4: every metric the dashboard and the rules use is exported by this running worker
    assert not unexported(metric_names_used(), family_names(text))

    # must-show 5: the log of a run with failures has no full email and no key, and is JSON lines
    text = worker.text()
    assert API_KEY not in text
    assert not EMAIL.findall(text), EMAIL.findall(text)[:5]
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(r["msg"] == "worker consuming" for r in records)
    assert any(r.get("run_id") == event["run_id"] and r.get("export") == "vip" for r in records), records[-5:]
