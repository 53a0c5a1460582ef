"""``segment-export demo``: the whole flow on this machine (``worker.commands.demo_flow``), no servers to install."""

from __future__ import annotations

import argparse


def add_options(p: argparse.ArgumentParser) -> None:
    from worker.commands import demo_flow as demo

    demo.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from worker.commands import demo_flow as demo

    return demo.run(args)
