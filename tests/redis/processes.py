"""Helper scripts run as processes (replicas), and waiting on a condition with a deadline."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


class ScriptProcess:
    """A helper script run as a process: options become ``--name value``; its JSON lines on stdout are
    collected by a reader thread, and lines can be sent to its stdin."""

    def __init__(self, script: Path, log: Path, **options: Any) -> None:
        args = [sys.executable, str(script)]
        for name, value in options.items():
            args += [f"--{name}", str(value)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr, env=env, cwd=ROOT)
        self.events: list[dict[str, Any]] = []
        self._lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.log = log

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(json.loads(line))
        self._lines.put(None)

    def _drain(self) -> bool:
        """Move new lines into `events`; False once the process closed its output."""
        while True:
            try:
                item = self._lines.get_nowait()
            except queue.Empty:
                return True
            if item is None:
                return False
            self.events.append(item)

    def seen(self, event: str) -> list[dict[str, Any]]:
        self._drain()
        return [e for e in self.events if e["event"] == event]

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 120.0, event: str = "done") -> dict[str, Any]:
        """Wait for the process to end; its last ``event`` (fails with its stderr if there is none)."""
        try:
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
            self._reader.join(timeout=10)
            self._stderr.close()
        self._drain()
        found = self.seen(event)
        assert found, f"{self.log.name}: ended without {event!r}:\n{self.log.read_text()[-3000:]}"
        return found[-1]

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stderr.close()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """``tests.waiting.wait_for`` with this suite's argument order and a short poll."""
    wait_for(condition, timeout, what, interval=0.05)


