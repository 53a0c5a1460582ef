"""Helpers for the safety tests: a config for direct runs, the CLI in this process, the simulator's
request log read as "what was written", and a TCP proxy that can cut a server off and bring it back.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import KEY_ENV, SEGMENT, Sim

MAPPING = 'mapping = { email = "EmailAddress", first_name = "FirstName", last_name = "LastName", phone = "Phone" }'


def direct_config(tmp_path: Path, sim: Sim, *, export: str = "", worker: str = "", list_id: int = 3,
                  name: str = "direct.toml") -> Path:
    """A config for ``segment-export sync``: one export ``vip`` of the e2e segment on ``list_id``."""
    path = tmp_path / name
    path.write_text(f"""
[worker]
state_url = "file://{tmp_path / 'state'}"
{worker}

[connections.sim]
hostname = "sim.api-us1.com"
base_url = "{sim.url}"
api_key_env = "{KEY_ENV}"
data_privacy_consent = true
requests_per_second = {5 * sim.rate_scale}
bulk_requests_per_minute = {100 * sim.rate_scale}

[exports.vip]
segment = "{SEGMENT}"
connection = "sim"
list_id = {list_id}
{MAPPING}
{export}
""")
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    """``segment-export ARGV`` in this process: (exit code, the JSON it printed or {}, stderr)."""
    from worker.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, json.loads(out.out) if out.out.strip() else {}, out.err


def writes(sim: Sim, since: int = 0) -> list[dict[str, Any]]:
    """Every API request after the first ``since`` log entries that could change something (not a GET)."""
    return [r for r in sim.client.requests()[since:] if r["method"] != "GET"]


def contact_list_posts(sim: Sim, since: int = 0) -> list[dict[str, Any]]:
    return [r for r in sim.client.requests()[since:] if r["method"] == "POST" and r["path"].endswith("/contactLists")]


def bulk_contacts(sim: Sim, since: int = 0) -> int:
    """Contacts in the bulk imports ActiveCampaign accepted after the first ``since`` log entries."""
    return sum(r["contacts"] or 0 for r in sim.client.requests()[since:]
               if r["method"] == "POST" and r["path"].endswith("/import/bulk_import") and r["status"] == 200)


# ------------------------------------------------------------------------------------------ TCP proxy

class CuttableProxy:
    """A loopback TCP proxy to ``target`` (host, port) that can be cut and restored.

    Cut: every open connection is reset and new ones are accepted and reset at once, which a client
    sees as the server being unreachable (connection reset / closed without an answer). Restored:
    connections are forwarded again. One thread, one selector; ``close()`` stops it.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._dropped = threading.Event()  # set by the loop once a cut has dropped every connection
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: dict[socket.socket, socket.socket] = {}
        self.refused = 0  # connections reset while cut
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._loop, name="cuttable-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Reset every open connection and every new one until ``restore()``; returns once none is open."""
        self._dropped.clear()
        self._cut.set()
        if not self._dropped.wait(timeout=10):
            raise AssertionError("the proxy did not drop its connections within 10 s")

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        with self._lock:
            socks = list(self._pairs)
        for s in socks:
            self._drop(s, reset=False)
        self._sel.close()
        self._listener.close()

    @staticmethod
    def _reset(s: socket.socket) -> None:
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        with contextlib.suppress(OSError):
            s.close()

    def _drop(self, s: socket.socket, *, reset: bool = True) -> None:
        """Close ``s`` and its peer: reset (a cut) or an orderly close (one side closed)."""
        with self._lock:
            peer = self._pairs.pop(s, None)
            if peer is not None:
                self._pairs.pop(peer, None)
        for x in (s, peer):
            if x is None:
                continue
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._sel.unregister(x)
            if reset:
                self._reset(x)
            else:
                with contextlib.suppress(OSError):
                    x.close()

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        if self._cut.is_set():
            self.refused += 1
            self._reset(client)
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            self._reset(client)
            return
        for s in (client, upstream):
            s.setblocking(False)
        with self._lock:
            self._pairs[client] = upstream
            self._pairs[upstream] = client
        self._sel.register(client, selectors.EVENT_READ)
        self._sel.register(upstream, selectors.EVENT_READ)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self._cut.is_set() and not self._dropped.is_set():
                with self._lock:
                    socks = list(self._pairs)
                for s in socks:
                    self._drop(s)
                self._dropped.set()
            for key, _ in self._sel.select(timeout=0.05):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                if s is self._listener:
                    self._accept()
                    continue
                with self._lock:
                    peer = self._pairs.get(s)
                if peer is None:
                    continue
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data or self._cut.is_set():
                    self._drop(s, reset=bool(data) or self._cut.is_set())
                    continue
                try:
                    peer.setblocking(True)
                    peer.sendall(data)
                    peer.setblocking(False)
                except OSError:
                    self._drop(s)
