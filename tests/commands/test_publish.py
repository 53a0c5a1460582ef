"""``segment-export publish``: the printed ``segment.refreshed`` is exactly what the workers receive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands.support import take_all
from tests.conftest import free_port
from tests.run.conftest import write_config
from worker.cli import main


def test_publish_puts_the_printed_event_on_the_requests_queue(rabbit_config: tuple[Path, str],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    config, queue = rabbit_config
    assert main(["publish", "--config", str(config), "--segment", "vip-customers", "--snapshot",
                 "file:///data/segments/vip/2026-11-28/", "--refresh-id", "refresh-0042"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert main(["publish", "--config", str(config), "--segment", "vip-customers", "--snapshot",
                 "s3://cdp-exports/vip/members.csv", "--compression", "none"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert take_all(queue) == [printed, second]
    assert printed["refresh_id"] == "refresh-0042" and printed["segment"] == {"id": "vip-customers"}
    assert printed["snapshot"] == {"uri": "file:///data/segments/vip/2026-11-28/", "format": "jsonl"}
    assert second["snapshot"] == {"uri": "s3://cdp-exports/vip/members.csv", "format": "csv", "compression": "none"}
    assert second["refresh_id"].startswith("refresh-") and second["id"] != printed["id"]


def test_an_unreachable_broker_is_exit_1_with_the_url_and_never_its_password(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    config = write_config(tmp_path, "http://127.0.0.1:9",
                          worker=f'broker_url = "amqp://guest:s3cr3t-pw@127.0.0.1:{port}//"')
    for argv in (["publish", "--segment", "s", "--snapshot", "/data/s.jsonl"], ["request", "--export", "vip"]):
        assert main([argv[0], "--config", str(config), *argv[1:]]) == 1
        captured = capsys.readouterr()
        assert captured.out == ""  # nothing printed as if published
        assert f"cannot publish {'segment.refreshed' if argv[0] == 'publish' else 'export.requested'} to " \
               f"amqp://guest:***@127.0.0.1:{port}//" in captured.err and "refused" in captured.err.lower()
        assert "s3cr3t-pw" not in captured.err


def test_publish_cloudevent_sends_what_the_worker_reads_and_print_sends_nothing(
        rabbit_config: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    from worker.events.cloudevents import event_id_for
    from worker.events.incoming import read_data

    config, queue = rabbit_config
    args = ["publish", "--config", str(config), "--segment", "vip-customers", "--snapshot",
            "s3://cdp-exports/vip/2026-11-28/", "--refresh-id", "refresh-0043", "--cloudevent", "--source", "/cdp"]
    assert main(args) == 0
    sent = json.loads(capsys.readouterr().out)
    assert main([*args, "--print"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert take_all(queue, raw=True) == [sent]  # --print published nothing
    assert sent["specversion"] == "1.0" and sent["type"] == "segment.refreshed" and sent["source"] == "/cdp"
    assert printed["type"] == "segment.refreshed" and printed["id"] != sent["id"]
    event = read_data(sent)
    assert isinstance(event, dict) and event["refresh_id"] == "refresh-0043"
    assert event["id"] == event_id_for("/cdp", sent["id"]) and event["occurred_at"] == sent["time"]
    assert event["snapshot"] == {"uri": "s3://cdp-exports/vip/2026-11-28/", "format": "jsonl"}
