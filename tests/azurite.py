"""Azurite, the Azure Storage emulator (an npm package), installed into a folder of the test run and started
on a free loopback port: real Azure Blob Storage HTTP for the tests, stopped by whoever started it."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.waiting import wait_for

VERSION = "3.35.0"
ACCOUNT = "devstoreaccount1"
# Azurite's published development key (the emulator's, in its README): not a secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def install(folder: Path) -> Path:
    """``npm install azurite`` into ``folder`` once per test run (a lock: xdist workers share the folder)."""
    folder.mkdir(parents=True, exist_ok=True)
    binary = folder / "node_modules" / ".bin" / "azurite-blob"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            npm = shutil.which("npm")
            if npm is None:
                raise RuntimeError("the Azure tests need Node.js 20 and npm to install Azurite (apt install npm)")
            subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder),
                            f"azurite@{VERSION}"], check=True, timeout=600)
    return binary


@contextmanager
def running(binary: Path, port: int, workdir: Path) -> Iterator[str]:
    """Azurite's blob service on 127.0.0.1:``port`` (in memory, run in ``workdir``); yields its connection string."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
               "--skipApiVersionCheck", "--loose", "--silent"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir,
                               env={**os.environ})
    try:
        def exited() -> None:
            if process.poll() is not None:
                why = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise RuntimeError(f"Azurite exited: {why}")

        wait_for(lambda: _listening(port), 60, "Azurite to listen", check=exited)
        yield (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
               f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
