"""``--allow-mass-removal`` on ``sync`` and ``request``, and dry runs that say the removal guard would trip.

Against the simulator over HTTP: a snapshot missing 30% of the list is refused (exit 1, ``removal_guard``,
no write request), previewed as refused, and goes through once with the override. ``request`` publishes
the override on the event to a real RabbitMQ queue, and only when asked.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import subscribed, write_config
from worker.cli import main
from worker.event_schemas import parse_event
from worker.samples import make_segment, write_jsonl
from worker.sim import SimClient

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


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


@pytest.fixture
def rabbit_config(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A config on the shared RabbitMQ with this test's own queue and exchange (deleted afterwards)."""
    from kombu import Connection

    tag = uuid.uuid4().hex[:10]
    queue, exchange = f"cli-{tag}-requests", f"cli-{tag}-events"
    path = write_config(tmp_path, "http://127.0.0.1:9",
                        worker=f'broker_url = "{AMQP_URL}"\nrequests_queue = "{queue}"\nevents_exchange = "{exchange}"')
    yield path, queue
    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        for name in (queue, f"{queue}-dlq"):
            channel.queue_delete(queue=name)
        channel.exchange_delete(exchange=exchange)


def take_all(queue: str) -> list[dict]:
    from kombu import Connection

    got = []
    with Connection(AMQP_URL) as conn:
        channel = conn.channel()
        while (msg := channel.basic_get(queue=queue, no_ack=True)) is not None:
            got.append(parse_event(msg.body.encode() if isinstance(msg.body, str) else msg.body))
    return got


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
