"""``--help`` is fast: it imports neither aiohttp, boto3, kombu nor the simulator (issue 11).

Each case runs in a fresh interpreter that runs the command, then prints every module it holds
(``sys.modules``), so nothing imported earlier by the test session can hide an import. (``-X importtime``
would miss modules loaded through ``importlib.import_module``, which is how commands are loaded.)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from worker.commands import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("aiohttp", "boto3", "botocore", "kombu", "worker.sim", "worker.run.engine", "worker.service.worker")
MARKER = "--modules--"
# Run `segment-export ARGV` as `python -m worker` does, or as the console script does (worker.cli:main),
# then list sys.modules after the marker on stderr.
PROBE = """
import json, runpy, sys
entry, argv = sys.argv[1], json.loads(sys.argv[2])
sys.argv = ["segment-export", *argv]
try:
    if entry == "module":
        runpy.run_module("worker", run_name="__main__", alter_sys=True)
    else:
        from worker.cli import main
        sys.exit(main())
except SystemExit as exc:
    code = exc.code
sys.stderr.write("MARKER" + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
""".replace("MARKER", MARKER)


def imported(*argv: str, entry: str = "module") -> tuple[set[str], str]:
    """(modules imported, stdout) of ``segment-export ARGV`` run in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", PROBE, entry, json.dumps(argv)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and MARKER in out.stderr, out.stderr[-2000:]
    found = json.loads(out.stderr.rsplit(MARKER, 1)[1])
    assert found["code"] == 0, out.stderr[-2000:]
    modules = set(found["modules"])
    assert "worker.cli" in modules  # the probe worked: an empty set would prove nothing
    return modules, out.stdout


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


@pytest.mark.parametrize("entry", ["module", "script"])
def test_top_level_help_lists_every_command_and_imports_nothing_heavy(entry: str) -> None:
    modules, text = imported("--help", entry=entry)
    assert heavy(modules) == []
    assert not {info.module for info in COMMANDS.values()} & modules  # built from the summaries alone
    for name, info in COMMANDS.items():
        assert re.search(rf"^\s+{name}\s", text, re.MULTILINE), name
        assert " ".join(info.summary.split()[:3]) in " ".join(text.split()), name


@pytest.mark.parametrize("argv", [["sync"], ["run"], ["publish"], ["request"], ["config", "check"],
                                  ["state", "prune"]], ids=" ".join)
def test_a_commands_help_imports_only_that_command(argv: list[str]) -> None:
    modules, text = imported(*argv, "--help")
    assert heavy(modules) == []
    own = COMMANDS[argv[0]].module
    assert own in modules
    assert not {info.module for info in COMMANDS.values()} - {own} & modules
    assert "--config" in text


def test_help_of_new_options() -> None:
    assert "--allow-mass-removal" in imported("sync", "--help")[1]
    assert "--allow-mass-removal" in imported("request", "--help")[1]
    text = imported("state", "prune", "--help")[1]
    assert "--export" in text and "--dry-run" in text and "retention_days" in text
