"""``segment-export sync``: run one export to the end in this process; print the completion event.

Exit 0 succeeded, 3 partial, 1 failed, 2 bad usage or config. With ``--dry-run``: print what would
change (``worker.run.preview``), exit 1 if a real run would fail (``would_fail``), else 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from typing import TYPE_CHECKING

from worker.commands import common
from worker.commands.progress import TtyProgress

if TYPE_CHECKING:
    from worker.run.engine import Engine
    from worker.run.types import RunResult, RunSpec
    from worker.settings import Config
    from worker.state import StateStore


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--export", required=True, help="the export's name ([exports.NAME] in the config)")
    p.add_argument("--snapshot", required=True, help="file:///path, a path, or s3://bucket/key (file or folder)")
    p.add_argument("--full", action="store_true", help="re-send every contact, not only what changed")
    p.add_argument("--dry-run", action="store_true", help="print what would change; send and write nothing")
    p.add_argument("--show-emails", action="store_true", help="with --dry-run: do not mask sample emails")
    p.add_argument("--allow-mass-removal", action="store_true",
                   help="this run only: go ahead even if it would unsubscribe more than the export's removal "
                        "guard allows (max_removal_fraction / max_removals)")
    p.add_argument("--refresh-id", help="the upstream refresh id to record (default: derived from the snapshot)")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet"], help="snapshot format (default: by file suffix)")
    p.add_argument("--compression", choices=["none", "gzip"], help="snapshot compression (default: by suffix)")
    p.add_argument("--metrics-file", help="write the run's Prometheus metrics (text format) to this file")


def run(args: argparse.Namespace) -> int:
    from worker.run.direct import direct_spec
    from worker.run.engine import Engine
    from worker.service import metrics
    from worker.state import StateError

    config = common.load(args)
    export = config.export(args.export)
    common.check_keys(config, [export.name])
    store = common.open_state(config)
    try:
        spec = direct_spec(store, export, args.snapshot, full=args.full, refresh_id=args.refresh_id,
                           snapshot_format=args.format, snapshot_compression=args.compression,
                           allow_mass_removal=args.allow_mass_removal)
    except StateError as exc:  # the committed state could not be read: no run can start
        return common.fail(str(exc), common.EXIT_FAILED)
    progress = TtyProgress()
    if args.dry_run:
        from worker.commands.dry_run import show_preview

        return show_preview(Engine(config, store, on_progress=progress), spec, args.show_emails)
    result, engine = asyncio.run(_run(config, store, spec, progress))
    progress.done()
    if result.busy:
        return common.fail(f"export {export.name} is being run by another worker (it holds the export's lease); "
                           f"nothing was sent. Try again when that run is over", common.EXIT_FAILED)
    if result.committed:
        return common.fail(f"export {export.name}: the run committed (the list and the synced state are updated), "
                           f"but its completion could not be recorded in the state store; run the same command "
                           f"again to record it (nothing is sent again)", common.EXIT_FAILED)
    if args.metrics_file:
        metrics.write_run_file(args.metrics_file, engine, None if result.replayed else result.event)
    common.print_json(result.event)
    return result.exit_code


async def _run(config: Config, store: StateStore, spec: RunSpec, progress: TtyProgress) -> tuple[RunResult, Engine]:
    """The run, holding the export's lease like a worker replica would (no batch is sent twice)."""
    from worker.leases import open_leases
    from worker.run.engine import Engine
    from worker.service import metrics

    w = config.worker
    leases = open_leases(w.redis_url, store, ttl=w.lease_seconds, owner=f"sync-{socket.gethostname()}-{os.getpid()}")
    engine = Engine(config, store, hooks=metrics.MetricsHooks(), leases=leases, on_progress=progress)
    try:
        # A lease left by a sync that was killed expires after lease_seconds: wait that long (not longer)
        # rather than make the person retry by hand; a run that is really going on elsewhere still wins.
        deadline = asyncio.get_running_loop().time() + w.lease_seconds + 2
        while True:
            result = await engine.run(spec)
            if not result.busy or asyncio.get_running_loop().time() > deadline:
                return result, engine
            await asyncio.sleep(1.0)
    finally:
        await engine.aclose()
