"""The command registry: each command's module and one-line summary, nothing else.

Why a registry of module *names* (pip's ``commands/__init__.py`` pattern): the top-level ``--help`` is
built from the summaries alone, and only the chosen command's module is imported, so
``segment-export --help`` or ``segment-export state prune`` never load aiohttp, boto3, kombu or the
simulator. Each command module is small and has the same two functions:

- ``add_options(parser)``: its arguments (sub-commands for ``config`` and ``state``);
- ``run(args) -> int``: a thin call into the library, returning the exit code (0 ok, 3 partial, 1 failed,
  2 bad usage or config).

Adding a command: one module here, one line below, and a line in README.md's command list.

May import: anything (a command is the top of the stack), but each command module stays thin.
"""

from __future__ import annotations

import argparse
import importlib
from typing import NamedTuple, Protocol, cast


class CommandInfo(NamedTuple):
    module: str
    summary: str


COMMANDS: dict[str, CommandInfo] = {
    "sync": CommandInfo("worker.commands.sync",
                        "run one export to the end in this process; prints the completion event"),
    "run": CommandInfo("worker.commands.run", "the worker: consume the requests queue until SIGTERM/SIGINT"),
    "ingress": CommandInfo("worker.commands.ingress",
                           "the HTTP ingress: POST /events (our JSON, CloudEvents, Event Grid) to the requests queue"),
    "publish": CommandInfo("worker.commands.publish",
                           "publish a segment.refreshed event (for upstreams without a publisher)"),
    "request": CommandInfo("worker.commands.request", "publish an export.requested event (run one export on demand)"),
    "config": CommandInfo("worker.commands.config", "configuration tools"),
    "state": CommandInfo("worker.commands.state", "state store tools (remove old run records)"),
    "verify": CommandInfo("worker.commands.verify",
                          "read an export's list back from ActiveCampaign and compare it with the synced state"),
    "runs": CommandInfo("worker.commands.runs", "recent runs from the state store (status, counts, errors)"),
    "forget": CommandInfo("worker.commands.forget",
                          "erasure: remove people from every export's synced state and kept reports"),
    "simulate": CommandInfo("worker.commands.simulate",
                            "run the ActiveCampaign simulator (tests, demos, benchmarks)"),
    "demo": CommandInfo("worker.commands.demo",
                        "the whole flow on this machine: simulator + sample segment + sync"),
}


class Command(Protocol):
    """What every command module provides."""

    def add_options(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def load(name: str) -> Command:
    """Import the module of command ``name`` (a key of ``COMMANDS``)."""
    return cast(Command, importlib.import_module(COMMANDS[name].module))
