"""``segment-export request``: publish an ``export.requested`` event (run one export on demand).

``--dry-run`` publishes nothing: it previews here what the requested run would change. Why here and
not as a dry-run event to the workers: the person asking wants to read the answer, and a worker can
only log it. The snapshot is the one a worker would use: ``--snapshot``, else the segment's last known.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from worker.commands import common

if TYPE_CHECKING:
    from worker.events.envelopes import SnapshotRef
    from worker.settings import Config, Export


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--export", required=True)
    p.add_argument("--full", action="store_true", help="re-send every contact")
    p.add_argument("--snapshot", help="snapshot URI (default: the segment's last known snapshot)")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet"])
    p.add_argument("--compression", choices=["none", "gzip"])
    p.add_argument("--broker", help="broker URL (overrides [worker] broker_url)")
    p.add_argument("--allow-mass-removal", action="store_true",
                   help="this run only: go ahead even if it would unsubscribe more than the export's removal "
                        "guard allows (sets allow_mass_removal on the event)")
    p.add_argument("--dry-run", action="store_true",
                   help="print what the run would change (computed here); publish and send nothing")
    p.add_argument("--show-emails", action="store_true", help="with --dry-run: do not mask sample emails")


def run(args: argparse.Namespace) -> int:
    from worker.events.envelopes import requested_event, snapshot_ref

    config = common.load(args)
    export = config.export(args.export)
    snapshot = snapshot_ref(args.snapshot, args.format, args.compression) if args.snapshot else None
    if args.dry_run:
        return _dry_run(args, config, export, snapshot)
    from worker.service.publishing import PublishError, publish_event

    event = requested_event(export.name, full=args.full, snapshot=snapshot,
                            allow_mass_removal=args.allow_mass_removal)
    try:
        publish_event(config, event, broker_url=args.broker)
    except PublishError as exc:
        return common.fail(str(exc), common.EXIT_FAILED)
    common.print_json(event)
    return common.EXIT_OK


def _dry_run(args: argparse.Namespace, config: Config, export: Export, snapshot: SnapshotRef | None) -> int:
    import asyncio

    from worker.commands.dry_run import show_preview
    from worker.run.engine import Engine
    from worker.run.preview import NoSnapshot, requested_spec
    from worker.state import StateError

    common.check_keys(config, [export.name])
    engine = Engine(config, common.open_state(config))
    try:
        spec = asyncio.run(requested_spec(engine, export, snapshot, full=args.full,
                                          allow_mass_removal=args.allow_mass_removal))
    except NoSnapshot as exc:
        return common.fail(str(exc))
    except StateError as exc:
        return common.fail(str(exc), common.EXIT_FAILED)
    return show_preview(engine, spec, args.show_emails)
