"""``segment-export ingress``: the HTTP ingress (webhooks in, the requests queue out) until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio

from worker.commands import common


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--broker", help="broker URL (overrides [worker] broker_url): amqp://, sqs://")
    p.add_argument("--port", type=int, help="port of POST /events, /metrics, /healthz (default [ingress] port)")


def run(args: argparse.Namespace) -> int:
    from worker.service.ingress import Ingress
    from worker.service.tokens import TokenError

    config = common.load(args)
    try:
        ingress = Ingress(config, broker_url=args.broker)
    except TokenError as exc:
        return common.fail(str(exc))
    return asyncio.run(ingress.run(port=args.port))
