"""``segment-export state prune``: remove run records and failure reports older than ``retention_days``.

A thin call to ``worker.run.retention.prune`` for the configured exports (or one, ``--export``); prints the
summary as JSON. ``--dry-run`` lists what would go and removes nothing. Exit 1 when the state store
fails (what was removed before stays removed; run it again), 2 for a bad config.
"""

from __future__ import annotations

import argparse

from worker.commands import common


def add_options(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="state_command", required=True, metavar="SUBCOMMAND")
    summary = "remove run records and failure reports older than [worker] retention_days (default 30)"
    c = sub.add_parser("prune", help=summary, description=summary)
    common.add_config_option(c)
    c.add_argument("--export", help="only this export (default: every export in the config)")
    c.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")


def run(args: argparse.Namespace) -> int:
    from worker.run.retention import prune
    from worker.state import StateError

    config = common.load(args)
    exports = [config.export(args.export).name] if args.export else sorted(config.exports)
    store = common.open_state(config)
    try:
        report = prune(store, exports, config.worker.retention_days, dry_run=args.dry_run)
    except StateError as exc:
        return common.fail(f"state prune stopped: {exc}; run it again once the store is reachable",
                           common.EXIT_FAILED)
    common.print_json(report.as_dict())
    return common.EXIT_OK
