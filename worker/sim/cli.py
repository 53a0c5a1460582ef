"""`segment-export simulate`: run the ActiveCampaign simulator in the foreground.

`add_arguments` and `run` are split so the main CLI can mount them as a sub-command while
`python -m worker.sim` uses them directly. The server binds loopback unless told otherwise: it accepts
any of its configured keys and holds whatever contacts it is sent, so it must not be reachable from the
network by accident.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import signal
import sys

from aiohttp import web

from worker.sim.app import create_app
from worker.sim.settings import SimSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the simulator's options on `parser`."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=int, default=8088,
                        help="port to bind (default: 8088; 0 picks a free one)")
    parser.add_argument("--api-key", action="append", dest="api_keys", metavar="KEY",
                        help="accepted Api-Token value (repeatable; default: sim-key)")
    parser.add_argument("--rate-scale", type=float, default=1.0,
                        help="multiply all rate limits (5/s, 100 and 20 bulk imports/min) by this")
    parser.add_argument("--requests-per-second", type=float, default=5.0,
                        help="account budget before scaling (default 5)")
    parser.add_argument("--processing-delay", type=float, default=1.0,
                        help="seconds from a bulk import POST to its completion (default 1.0)")
    parser.add_argument("--error-rate", type=float, default=0.0,
                        help="fraction of API requests answered 500/502/503 (default 0)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added before each API response")
    parser.add_argument("--storm-every", type=float, default=0.0,
                        help="every N seconds, start a 429 storm (default 0: never)")
    parser.add_argument("--storm-duration", type=float, default=0.0,
                        help="length of each 429 storm in seconds")
    parser.add_argument("--contact-limit", type=int, default=None, help="plan cap on the number of contacts")
    parser.add_argument("--seed", type=int, default=None, help="random seed for fault injection")
    parser.add_argument("--bad-key-html", action="store_true",
                        help="answer a missing or wrong API key with 200 and an HTML login page, as "
                             "ActiveCampaign has been seen to do (default: 401/403 JSON)")


def settings_from_args(args: argparse.Namespace) -> SimSettings:
    """SimSettings from parsed options (ValueError with the reason when a value is impossible)."""
    return SimSettings(
        api_keys=tuple(args.api_keys) if args.api_keys else ("sim-key",),
        requests_per_second=getattr(args, "requests_per_second", 5.0),
        rate_scale=args.rate_scale,
        processing_delay=args.processing_delay,
        error_rate=args.error_rate,
        latency=args.latency,
        storm_every=args.storm_every,
        storm_duration=args.storm_duration,
        contact_limit=args.contact_limit,
        seed=args.seed,
        bad_key_html=getattr(args, "bad_key_html", False),
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; prints the base URL on stdout once accepting. Exit 0, 1 or 2."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    if not _is_loopback(args.host):
        print(f"simulate: warning: binding {args.host}, which is not loopback; the simulator has no real "
              "security and should not be reachable from a network.", file=sys.stderr)
    try:
        return asyncio.run(_serve(settings, args.host, args.port))
    except OSError as exc:
        print(f"simulate: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1


async def _serve(settings: SimSettings, host: str, port: int) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # non-main thread / Windows
            loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_app(settings), access_log=None, handle_signals=False)
    await runner.setup()
    freezer = asyncio.ensure_future(_keep_gc_off_the_contacts())
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = next((a[1] for a in runner.addresses if isinstance(a, tuple)), port)
        shown = f"[{host}]" if ":" in host else host
        print(f"http://{shown}:{bound}", flush=True)
        print(f"simulate: ActiveCampaign simulator on http://{shown}:{bound}/api/3/ "
              f"({len(settings.api_keys)} API key(s) accepted); Ctrl-C to stop", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        freezer.cancel()
        await runner.cleanup()
    return 0


async def _keep_gc_off_the_contacts() -> None:
    """Keep the cyclic GC from rescanning the account's contacts.

    A simulator holding a few hundred thousand contacts paused 1-2 s in each full collection; requests
    that queued meanwhile arrived as one burst and its exact per-second window refused them, so the
    simulator measured its own pauses, not the client. Objects that survive a second are frozen (never
    collected again: the contacts live as long as the account), and collections are made rarer.
    """
    import gc

    gc.set_threshold(50_000, 20, 100)
    while True:
        await asyncio.sleep(1.0)
        gc.freeze()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (`python -m worker.sim`)."""
    parser = argparse.ArgumentParser(prog="python -m worker.sim", description="ActiveCampaign API simulator")
    add_arguments(parser)
    return run(parser.parse_args(argv))
