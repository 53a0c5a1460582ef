"""``segment-export publish``: publish a ``segment.refreshed`` event (for upstreams without a publisher)."""

from __future__ import annotations

import argparse

from worker.commands import common


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--segment", required=True, help="the segment id")
    p.add_argument("--snapshot", required=True, help="the snapshot URI the refresh wrote")
    p.add_argument("--refresh-id", help="the refresh's id (default: a new one)")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet"])
    p.add_argument("--compression", choices=["none", "gzip"])
    p.add_argument("--broker", help="broker URL (overrides [worker] broker_url)")


def run(args: argparse.Namespace) -> int:
    from worker.events.envelopes import refreshed_event, snapshot_ref
    from worker.service.publishing import PublishError, publish_event

    config = common.load(args)
    event = refreshed_event(args.segment, snapshot_ref(args.snapshot, args.format, args.compression),
                            args.refresh_id)
    try:
        publish_event(config, event, broker_url=args.broker)
    except PublishError as exc:
        return common.fail(str(exc), common.EXIT_FAILED)
    common.print_json(event)
    return common.EXIT_OK
