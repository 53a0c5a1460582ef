"""``segment-export ingress`` as a process: refuses to start without a token (exit 2, naming where to put one),
serves until SIGTERM (exit 0), and what it accepts lands on the requests queue."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson

from tests.commands.support import take_all
from tests.conftest import free_port
from tests.e2e.conftest import ROOT
from tests.waiting import wait_for

TOKEN = "cli-ingress-token-" + "9e8d7c" * 4


def _config(tmp_path: Path, queue: str) -> Path:
    path = tmp_path / "ingress.toml"
    path.write_text(f'[worker]\nbroker_url = "amqp://guest:guest@127.0.0.1:5672//"\nrequests_queue = "{queue}"\n'
                    f'events_exchange = "{queue.removesuffix("-requests")}-events"\n\n'
                    '[ingress]\ntokens_env = "CLI_INGRESS_TOKENS"\npublish_timeout_seconds = 2\n')
    return path


def test_an_unreachable_broker_is_one_line_and_a_failed_exit(tmp_path: Path) -> None:
    broker = f"amqp://admin:Sup3rSecretPw@127.0.0.1:{free_port()}//"  # nothing listens there
    out = subprocess.run([sys.executable, "-m", "worker", "ingress", "--config", str(_config(tmp_path, "q-down")),
                          "--broker", broker, "--port", "0"], cwd=ROOT, env={**os.environ, "CLI_INGRESS_TOKENS": TOKEN},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("segment-export: error: the ingress cannot start: cannot connect to the amqp broker")
    assert "Traceback" not in out.stderr and "Sup3rSecretPw" not in out.stderr + out.stdout


def test_without_a_token_it_exits_2_saying_where_to_put_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CLI_INGRESS_TOKENS"}
    out = subprocess.run([sys.executable, "-m", "worker", "ingress", "--config", str(_config(tmp_path, "q-none"))],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "no bearer token: set the environment variable CLI_INGRESS_TOKENS" in out.stderr


def test_serves_publishes_and_stops_on_sigterm(tmp_path: Path, rabbit_config: tuple[Path, str]) -> None:
    """``--port 0``: the OS picks a free port, named in the log line (never the configured 8080)."""
    _, queue = rabbit_config
    log = (tmp_path / "ingress.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "worker", "ingress", "--config", str(_config(tmp_path, queue)),
                             "--port", "0"], cwd=ROOT, env={**os.environ, "CLI_INGRESS_TOKENS": TOKEN},
                            stdout=log, stderr=log)
    try:
        def alive() -> None:
            assert proc.poll() is None, (tmp_path / "ingress.log").read_text()

        def bound_port() -> int:
            found = re.search(r"ingress serving on port (\d+)", (tmp_path / "ingress.log").read_text())
            return int(found.group(1)) if found else 0

        port = wait_for(bound_port, 60, "the ingress to say which port it serves", check=alive)
        assert port != 8080
        wait_for(lambda: _ready(port), 60, "the ingress to be ready", interval=0.2, check=alive)
        event = {"type": "export.requested", "version": 1, "id": "cli-1", "occurred_at": "2026-11-28T14:05:00Z",
                 "export": "vip"}
        req = urllib.request.Request(f"http://127.0.0.1:{port}/events", data=orjson.dumps(event), method="POST",
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 202
        assert take_all(queue) == [event]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
    assert TOKEN not in (tmp_path / "ingress.log").read_text()


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False
