"""``segment-export run``: the worker; consumes the requests queue until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses

from worker.commands import common


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--broker", help="broker URL (overrides [worker] broker_url): amqp://, sqs://, memory://")
    p.add_argument("--metrics-port", type=int, help="port for /metrics, /healthz, /readyz (default 9108)")


def run(args: argparse.Namespace) -> int:
    from worker.service.worker import Worker

    config = common.load(args)
    if args.metrics_port is not None:
        config = dataclasses.replace(config, worker=dataclasses.replace(config.worker, metrics_port=args.metrics_port))
    common.check_keys(config)  # a missing key is a config error at start, not mid-run
    return asyncio.run(Worker(config, broker_url=args.broker).run())
