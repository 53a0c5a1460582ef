"""Run scenarios one after another and turn each into a row: the library behind ``python -m chaos`` and the
short form in ``tests/chaos``.

Why sequential: a scenario's timing (kill points, outages) must not depend on what another one does to the
machine's two cores; the short form in ``make test`` gets its parallelism from pytest-xdist instead.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from chaos.measure import Row, measure
from chaos.scenarios import Scenario
from chaos.stage import Size, Stage


def run_scenario(scenario: Scenario, moto_endpoint: str, size: Size, workdir: Path) -> Row:
    """One scenario in a world of its own, measured, then cleaned up; never raises for a failed scenario."""
    row = Row(scenario.name)
    started = time.monotonic()
    stage = Stage(scenario.name, moto_endpoint, size, workdir)
    try:
        try:
            scenario.run(stage)
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            (stage.dir / "error.txt").write_text(traceback.format_exc())
        measure(stage, row)
    finally:
        stage.close()
    row.seconds = time.monotonic() - started
    return row


def log_tails(workdir: Path, scenario: str, lines: int = 40) -> str:
    """The last lines of every worker log of a scenario, and its traceback if any (for a failed row)."""
    out = []
    for path in sorted((workdir / scenario).glob("*.log")) + sorted((workdir / scenario).glob("error.txt")):
        text = path.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"----- {path.name} -----\n" + "\n".join(text))
    return "\n".join(out)
