"""``segment-export simulate``: the ActiveCampaign simulator in the foreground (also ``python -m worker.sim``).

The simulator's own module defines the options; it is imported only when this command is chosen, so
no other command loads aiohttp's server.
"""

from __future__ import annotations

import argparse


def add_options(p: argparse.ArgumentParser) -> None:
    from worker.sim import cli

    cli.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    from worker.sim import cli

    return cli.run(args)
