"""``segment-export demo``: the whole flow on this machine (``worker.demo``), no servers to install."""

from __future__ import annotations

import argparse


def add_options(p: argparse.ArgumentParser) -> None:
    from worker import demo

    demo.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from worker import demo

    return demo.run(args)
