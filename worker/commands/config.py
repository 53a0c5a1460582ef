"""``segment-export config check [--online]``: validate the config (and every key it needs can be read).

``--online`` also asks ActiveCampaign (``worker.commands.preflight``): the key, every list id, every custom
field; a table on stdout. Exit 2 when anything is wrong: the same problem would fail a run.
"""

from __future__ import annotations

import argparse
import sys

from worker.commands import common


def add_options(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="config_command", required=True, metavar="SUBCOMMAND")
    c = sub.add_parser("check", help="validate the config file (and that every key can be read)",
                       description="validate the config file (and that every key can be read)")
    common.add_config_option(c)
    c.add_argument("--online", action="store_true",
                   help="also check the API key, every list id and every custom field against ActiveCampaign")


def run(args: argparse.Namespace) -> int:
    from worker.commands import preflight

    config = common.load(args)
    if args.online:
        rows = preflight.check_online(config)
        sys.stdout.write(preflight.render_table(rows, config.path))
        sys.stdout.flush()
        return common.EXIT_USAGE if any(r.problems for r in rows) else common.EXIT_OK
    problems = preflight.check_keys_offline(config)
    for problem in problems:
        common.fail(problem)
    if problems:
        return common.EXIT_USAGE
    from worker.locations import prefix_note
    from worker.settings.advice import shared_managed_tags

    notes = [n for p in config.worker.snapshot_prefixes or () if (n := prefix_note(p))]
    if config.worker.snapshot_prefixes is None:
        notes.append("snapshot_prefixes is not set: events may name any snapshot this worker can read")
    from worker.settings.extras import installed, needed_extras

    extras = needed_extras(config)
    notes += [f"{why}: it needs the extra segment-export[{extra}], which is not installed (pip install "
              f"'segment-export[{extra}]')" for extra, why in extras.items() if not installed(extra)]
    notes += shared_managed_tags(config)
    for note in notes:
        sys.stderr.write(f"segment-export: note: {note}\n")
    common.print_json({"config": config.path, "ok": True, "notes": notes, "extras": sorted(extras),
                       "connections": sorted(config.connections),
                       "exports": {n: {"segment": e.segment, "connection": e.connection, "list_id": e.list_id}
                                   for n, e in sorted(config.exports.items())}})
    return common.EXIT_OK
