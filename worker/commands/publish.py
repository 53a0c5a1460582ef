"""``segment-export publish``: publish a ``segment.refreshed`` event (for upstreams without a publisher)."""

from __future__ import annotations

import argparse
from typing import Any

from worker.commands import common


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--segment", required=True, help="the segment id")
    p.add_argument("--snapshot", required=True, help="the snapshot URI the refresh wrote")
    p.add_argument("--refresh-id", help="the refresh's id (default: a new one)")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet"])
    p.add_argument("--compression", choices=["none", "gzip"])
    p.add_argument("--broker", help="broker URL (overrides [worker] broker_url)")
    p.add_argument("--cloudevent", action="store_true",
                   help="as a CloudEvents 1.0 structured JSON event (application/cloudevents+json)")
    p.add_argument("--source", default="/segment-export/cli", help="the CloudEvent's source (with --cloudevent)")
    p.add_argument("--print", dest="print_only", action="store_true",
                   help="print the event and send nothing (e.g. to POST it to the ingress with curl)")


def run(args: argparse.Namespace) -> int:
    import orjson

    from worker.events.cloudevents import to_cloudevent
    from worker.events.envelopes import refreshed_event, snapshot_ref
    from worker.events.incoming import read_data
    from worker.events.schemas import validate_event
    from worker.service.publishing import PublishError, publish_body

    config = common.load(args)
    event = refreshed_event(args.segment, snapshot_ref(args.snapshot, args.format, args.compression),
                            args.refresh_id)
    validate_event(event)
    message: dict[str, Any] = dict(event)
    if args.cloudevent:
        message = to_cloudevent(event, args.source)
        read_data(message)  # what the worker and the ingress will read: refused here, not in a dead-letter queue
    if not args.print_only:
        try:
            publish_body(config, orjson.dumps(message), event["type"], broker_url=args.broker)
        except PublishError as exc:
            return common.fail(str(exc), common.EXIT_FAILED)
    common.print_json(message)
    return common.EXIT_OK
