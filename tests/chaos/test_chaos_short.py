"""The short form of ``make chaos``: three of its cheapest scenarios at a small size, in ``make test``.

Each scenario runs the real worker (subprocesses), RabbitMQ (through a proxy of its own), moto's S3 (state
store and snapshots) and the simulator, exactly as the full suite does, and its row of the table must be
clean: no contact lost, the list exact, one completion event per run, no crash, no delivery left unsettled,
no secret in any log, event or metric, and the scenario's own checks (the kill point reached and at most
the in-flight batches re-sent; the removal guard tripping before any write; 5% re-admitted, 1% kept out).
xdist-safe: every scenario has its own bucket, queues, proxies, simulator and ports.
"""

from __future__ import annotations

import pytest

from chaos.scenarios import BY_NAME
from chaos.stage import Size
from chaos.suite import log_tails, run_scenario
from chaos.table import cells, render, render_notes

SHORT = Size(profiles=1000, broker_outage_seconds=5, s3_outage_seconds=5, ac_outage_seconds=10, malformed=100)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kill9-sending", "empty-snapshot", "leavers-return"])
def test_scenario_row_is_clean(name, moto_server, tmp_path):
    row = run_scenario(BY_NAME[name], moto_server, SHORT, tmp_path)
    assert row.clean, f"\n{render([row])}\n{render_notes([row])}\n{log_tails(tmp_path, name)}"
    assert cells(row)[1:7] == ("0", "yes", "1" if name == "kill9-sending" else "1 (each of 3 runs)", "0", "0", "0")
