"""``segment-export ingress``: the HTTP ingress (webhooks in, the requests queue out) until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio

from worker.commands import common


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--broker", help="broker URL (overrides [worker] broker_url): amqp://, sqs://")
    p.add_argument("--port", type=int, help="port of POST /events, /metrics, /healthz (default [ingress] port; "
                                            "0: one the OS picks, shown in the 'ingress serving' log line)")


def run(args: argparse.Namespace) -> int:
    from worker.privacy.masking import mask_credentials
    from worker.service.ingress import Ingress
    from worker.service.tokens import TokenError

    config = common.load(args)
    try:
        ingress = Ingress(config, broker_url=args.broker)
    except TokenError as exc:
        return common.fail(str(exc))
    try:
        return asyncio.run(ingress.run(port=args.port))
    except (ConnectionError, OSError) as exc:  # the broker unreachable at start, the port taken: one line
        return common.fail(f"the ingress cannot start: {mask_credentials(str(exc))}", common.EXIT_FAILED)
