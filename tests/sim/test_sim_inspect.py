"""The /_sim inspection API through SimClient, the threaded runner and the CLI."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from sim_support import Sim

from worker.sim import SimClient, SimClientError, SimSettings, SimulatorServer
from worker.sim.cli import add_arguments, settings_from_args

REPO = Path(__file__).resolve().parents[2]


def test_request_log_shape_and_sim_routes_are_not_logged(sim: Sim) -> None:
    sim.client.stats()
    sim.client.members(1)
    reply = sim.bulk([{"email": "a@example.com"}, {"email": "b@example.com"}])
    sim.call("GET", f"import/info?batchId={reply.body['batchId']}")
    sim.call("GET", "contacts?listid=1&limit=5")
    log = sim.client.requests()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("POST", "/api/3/import/bulk_import", 200),
        ("GET", "/api/3/import/info", 200),
        ("GET", "/api/3/contacts", 200),
    ]
    assert log[0]["contacts"] == 2 and log[0]["bytes"] > 0
    assert log[1]["contacts"] is None and log[1]["bytes"] == 0
    assert log[0]["at"] <= log[1]["at"] <= log[2]["at"]
    assert len(sim.client.requests(since=2)) == 1


def test_reset_clears_data_but_keeps_settings(make_sim: Callable[..., Sim]) -> None:
    sim = make_sim(requests_per_second=1000, processing_delay=0.02, contact_limit=50)
    field_id = sim.client.add_field("Tier", "text", "TIER")
    sim.client.add_contact("x@example.com", lists={1: "subscribed"}, fields={"TIER": "Gold"}, tags=["t"])
    sim.client.exclude("y@example.com")
    sim.bulk([{"email": "z@example.com"}, {"email": "w@example.com"}])
    sim.client.reset()
    assert sim.client.members(1) == {}
    assert sim.client.requests() == []
    stats = sim.client.stats()
    assert stats["contacts"] == 0 and stats["batches"]["accepted"] == 0 and stats["resubscribed"] == 0
    settings = sim.client.settings()
    assert settings["contact_limit"] == 50 and settings["fields"][0]["id"] == field_id
    # Exclusions are account data: gone after reset.
    reply = sim.bulk([{"email": "y@example.com", "subscribe": [{"listid": 1}]}, {"email": "v@example.com"}])
    assert sim.wait_batch(reply.body["batchId"])["failure"] == []


def test_save_and_restore_the_account_data(sim: Sim) -> None:
    """A starting point replayed many times (the crash-point walker) is saved once and restored in one call."""
    sim.client.add_contact("kept@example.com", lists={1: "subscribed"}, first_name="Kept")
    sim.client.unsubscribe("own@example.com", 1, "campaign")
    sim.client.save("start")
    sim.bulk([{"email": "later@example.com", "subscribe": [{"listid": 1}]}, {"email": "kept@example.com",
                                                                          "first_name": "Changed"}])
    sim.client.restore("start")
    members = sim.client.members(1)
    assert set(members) == {"kept@example.com", "own@example.com"}
    assert members["kept@example.com"]["first_name"] == "Kept"
    assert members["own@example.com"]["status"] == "unsubscribed"
    assert sim.client.requests() == [] and sim.client.contact_list("own@example.com", 1)["campaign"]
    sim.client.add_contact("after@example.com", lists={1: "subscribed"})
    sim.client.restore("start")  # the saved copy was not changed by what happened after the restore
    assert "after@example.com" not in sim.client.members(1)
    with pytest.raises(SimClientError) as refused:
        sim.client.restore("never")
    assert refused.value.status == 404


def test_configure_changes_knobs_and_refuses_bad_ones(sim: Sim) -> None:
    sim.client.configure(api_keys=("new-key",), lists={9: "Nine"}, contact_limit=None)
    assert sim.call("GET", "lists").status == 403
    body = sim.call("GET", "lists", key="new-key").body
    assert [entry["name"] for entry in body["lists"]] == ["Nine"]
    with pytest.raises(SimClientError) as bad:
        sim.client.configure(error_rate=2)
    assert bad.value.status == 400 and "error_rate" in bad.value.text
    with pytest.raises(SimClientError):
        sim.client.configure(no_such_knob=1)
    assert sim.client.settings()["error_rate"] == 0.0


def test_add_contact_and_unsubscribe_seed_without_counting_resubscribes(sim: Sim) -> None:
    tier = sim.client.add_field("Tier", "dropdown", "TIER", ["Gold"])
    assert isinstance(tier, int)
    sim.client.add_contact("s@example.com", lists={1: "subscribed", 2: "unsubscribed"}, first_name="S",
                           last_name="T", phone="1", fields={"TIER": "Gold"}, tags=["a", "b"])
    sim.client.unsubscribe("s@example.com", 1)
    sim.client.add_contact("s@example.com", lists={1: "subscribed"})
    member = sim.client.members(1)["s@example.com"]
    assert member == {"id": "1", "status": "subscribed", "first_name": "S", "last_name": "T", "phone": "1",
                      "fields": {"TIER": "Gold"}, "tags": ["a", "b"]}
    assert sim.client.members(2)["s@example.com"]["status"] == "unsubscribed"
    assert sim.client.stats()["resubscribed"] == 0
    with pytest.raises(SimClientError):
        sim.client.add_contact("not an email")
    with pytest.raises(SimClientError):
        sim.client.unsubscribe("s@example.com", 42)
    with pytest.raises(SimClientError):
        sim.client.members(42)
    with pytest.raises(SimClientError):
        sim.client.add_field("Tier again", "text", "TIER")


def test_two_simulators_are_independent() -> None:
    with SimulatorServer(SimSettings(api_keys=("a",))) as one, SimulatorServer() as two:
        assert one.url != two.url
        SimClient(one.url).add_contact("only-one@example.com", lists={1: "subscribed"})
        assert SimClient(two.url).members(1) == {}
    one.stop()  # idempotent


def test_server_reports_a_port_clash() -> None:
    with SimulatorServer() as first:
        clash = SimulatorServer(port=first.port)
        with pytest.raises(RuntimeError):
            clash.start()


def test_cli_arguments_map_to_settings() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--api-key", "k1", "--api-key", "k2", "--rate-scale", "10",
                              "--error-rate", "0.1", "--contact-limit", "5", "--storm-every", "30",
                              "--storm-duration", "2",
                              "--processing-delay", "0.5", "--latency", "0.01", "--seed", "3"])
    assert (args.host, args.port) == ("127.0.0.1", 8088)
    settings = settings_from_args(args)
    assert settings.api_keys == ("k1", "k2") and settings.rate_scale == 10 and settings.contact_limit == 5
    assert settings.error_rate == 0.1 and settings.storm_every == 30 and settings.seed == 3
    assert settings_from_args(parser.parse_args([])).api_keys == ("sim-key",)


def test_cli_serves_until_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "worker.sim", "--port", "0", "--processing-delay", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url + "/_sim/health", timeout=5) as response:
            assert response.status == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_cli_rejects_impossible_settings_and_busy_ports() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "worker.sim", "--error-rate", "3"], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=30)
    assert done.returncode == 2 and "error_rate" in done.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = subprocess.run([sys.executable, "-m", "worker.sim", "--port", port], capture_output=True,
                              text=True, cwd=REPO, env=env, timeout=30)
    assert done.returncode == 1 and "cannot listen" in done.stderr
