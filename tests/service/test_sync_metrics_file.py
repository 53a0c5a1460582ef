"""``segment-export sync --metrics-file``: a cron user gets the run's metrics in the text format."""

from __future__ import annotations

from tests.run.conftest import API_KEY, write_config
from tests.service.support import parse, value
from worker.cli import main
from worker.contacts.samples import make_segment, write_jsonl
from worker.sim import SimClient, SimSettings, SimulatorServer


def test_sync_writes_metrics_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEGMENT_EXPORT_TEST_KEY", API_KEY)
    seg = make_segment(range(300), seed=9)
    snap = write_jsonl(tmp_path / "s.jsonl", seg.profiles)
    with SimulatorServer(SimSettings(api_keys=(API_KEY,), rate_scale=20.0, processing_delay=0.1)) as server:
        config = write_config(tmp_path, server.url, rate_scale=20.0)
        out = tmp_path / "metrics.prom"
        rc = main(["sync", "--config", str(config), "--export", "vip", "--snapshot", str(snap),
                   "--metrics-file", str(out)])
        assert rc == 0, capsys.readouterr()
        log = [r for r in SimClient(server.url).requests() if not r["path"].startswith("/_sim")]
    m = parse(out.read_text())
    assert value(m, "segment_export_profiles_total", export="vip", outcome="added") >= len(seg.expected)
    assert value(m, "segment_export_runs_total", export="vip", status="succeeded") >= 1
    assert value(m, "segment_export_last_success_timestamp_seconds", export="vip") > 0
    assert value(m, "segment_export_ac_requests_total", endpoint="import/bulk_import") >= sum(
        1 for r in log if r["path"].endswith("import/bulk_import"))
