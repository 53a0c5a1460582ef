"""Replica processes for the component tests, and the figures read back from the simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.redis.processes import ScriptProcess
from worker.sim import SimClient

SCRIPT = Path(__file__).with_name("sim_replica.py")


def replica(log: Path, **options: Any) -> ScriptProcess:
    """A `sim_replica.py` process."""
    return ScriptProcess(SCRIPT, log, **options)


def accepted_posts(sim: SimClient) -> list[float]:
    """Arrival times of the bulk imports the simulator accepted."""
    return [r["at"] for r in sim.requests()
            if r["method"] == "POST" and r["path"] == "/api/3/import/bulk_import" and r["status"] == 200]


def refusals(sim: SimClient) -> tuple[int, int]:
    """(refused for rate, all API requests): 429s plus bulk "Rate limit exceeded" answers."""
    stats = sim.stats()
    return stats["rate_limited"] + stats["bulk_rate_limited"], stats["requests"]


def pace(times: list[float]) -> float:
    """Bulk imports per minute between the first and the last accepted one."""
    ordered = sorted(times)
    return (len(ordered) - 1) * 60.0 / (ordered[-1] - ordered[0])
