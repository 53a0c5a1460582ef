"""``--allow-mass-removal`` on ``sync`` and ``request``, and dry runs that say the removal guard would trip.

Against the simulator over HTTP: a snapshot missing 30% of the list is refused (exit 1, ``removal_guard``,
no write request), previewed as refused, and goes through once with the override. ``request`` publishes
the override on the event to a real RabbitMQ queue, and only when asked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands.support import take_all
from tests.run.conftest import subscribed, write_config
from worker.cli import main
from worker.contacts.samples import make_segment, write_jsonl
from worker.sim import SimClient


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict, str]:
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, json.loads(captured.out) if captured.out.strip() else {}, captured.err


def writes(simc: SimClient, since: int = 0) -> list[dict]:
    return [r for r in simc.requests(since) if r["method"] != "GET"]


def test_the_guard_trips_previews_and_is_overridden_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         sim: tuple[str, SimClient]) -> None:
    url, simc = sim
    config = str(write_config(tmp_path, url, rate_scale=20))
    everyone = make_segment(range(100))
    shrunk = make_segment(range(70))  # 30% gone: over the default max_removal_fraction of 0.2
    full_snap = write_jsonl(tmp_path / "a.jsonl", everyone.profiles)
    snap = write_jsonl(tmp_path / "b.jsonl", shrunk.profiles)
    sync = ("sync", "--config", config, "--export", "vip", "--snapshot", str(snap))
    assert run(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", str(full_snap))[0] == 0
    seen = len(simc.requests())

    rc, preview, err = run(capsys, *sync, "--dry-run")
    assert rc == 1 and preview["would_fail"]["code"] == "removal_guard"
    assert preview["counts"]["removed"] == 30 and "a run would fail: removal_guard" in err
    rc, preview, _ = run(capsys, "request", "--config", config, "--export", "vip", "--snapshot", str(snap),
                         "--dry-run")
    assert rc == 1 and preview["would_fail"]["code"] == "removal_guard"
    for command in (sync, ("request", "--config", config, "--export", "vip", "--snapshot", str(snap))):
        rc, preview, _ = run(capsys, *command, "--dry-run", "--allow-mass-removal")
        assert rc == 0 and "would_fail" not in preview and preview["counts"]["removed"] == 30

    rc, event, _ = run(capsys, *sync)
    assert rc == 1 and event["type"] == "export.failed" and event["error"]["code"] == "removal_guard"
    assert writes(simc, seen) == []  # refused before any request
    assert len(subscribed(simc)) == 100

    rc, event, _ = run(capsys, *sync, "--allow-mass-removal")
    assert rc == 0 and event["status"] == "succeeded" and event["counts"]["removed"] == 30
    assert set(subscribed(simc)) == set(shrunk.expected)


def test_request_publishes_the_override_only_when_asked(rabbit_config: tuple[Path, str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    config, queue = rabbit_config
    rc, plain, _ = run(capsys, "request", "--config", str(config), "--export", "vip")
    assert rc == 0 and "allow_mass_removal" not in plain
    rc, override, _ = run(capsys, "request", "--config", str(config), "--export", "vip", "--allow-mass-removal",
                          "--snapshot", "s3://cdp-exports/vip/part-0001.jsonl.gz")
    assert rc == 0 and override["allow_mass_removal"] is True
    published = take_all(queue)
    assert published == [plain, override]  # what was printed is what the workers receive
    assert override["snapshot"] == {"uri": "s3://cdp-exports/vip/part-0001.jsonl.gz", "format": "jsonl",
                                    "compression": "gzip"}
