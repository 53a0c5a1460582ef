"""``python -m chaos``: run the chaos scenarios against the real worker and print the table.

    python -m chaos                       # every scenario, 20,000 profiles each (make chaos)
    python -m chaos --only kill9-sending,empty-snapshot --profiles 2000
    python -m chaos --list
    python -m chaos --only fuzz --fuzz-scale 100   # only the long run of the property-based (fuzz) tests

Needs RabbitMQ on 127.0.0.1:5672 (``scripts/with-services`` starts one when none runs); starts moto's S3
and the ActiveCampaign simulator itself. Exit status 0 when every row is clean, 1 otherwise; the logs of a
failed scenario are printed and kept under ``--workdir``.
"""

from __future__ import annotations

import argparse
import logging
import platform
import shutil
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def _args(argv: list[str] | None) -> argparse.Namespace:
    from chaos.scenarios import BY_NAME
    from chaos.stage import Size

    d = Size()
    p = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default="", help="comma-separated scenario names (default: all; see --list)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--profiles", type=int, default=d.profiles, help=f"profiles per segment (default {d.profiles})")
    p.add_argument("--rate-scale", type=float, default=d.rate_scale,
                   help=f"the simulated account's budget, times ActiveCampaign's (default {d.rate_scale:g})")
    p.add_argument("--ac-outage-seconds", type=float, default=d.ac_outage_seconds)
    p.add_argument("--broker-outage-seconds", type=float, default=d.broker_outage_seconds)
    p.add_argument("--s3-outage-seconds", type=float, default=d.s3_outage_seconds)
    p.add_argument("--malformed", type=int, default=d.malformed, help="malformed events (default 1000)")
    p.add_argument("--fuzz-scale", type=int, default=50, help="the fuzz tests draw this many times the examples "
                   "they draw in make test (default 50; 0 skips them; see chaos/fuzz.py)")
    p.add_argument("--sweeps", type=int, default=d.sweeps,
                   help=f"interleavings of the protocol sweep (default {d.sweeps})")
    p.add_argument("--sweep-seed", type=int, default=d.sweep_seed, help="the protocol sweep's first seed")
    p.add_argument("--workdir", type=Path, default=None, help="where configs and worker logs go (default: a "
                   "temporary folder, removed when every row is clean)")
    args = p.parse_args(argv)
    unknown = [n for n in filter(None, args.only.split(",")) if n not in BY_NAME and n != "fuzz"]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    if args.profiles < 1000:
        p.error("--profiles must be at least 1000 (the scenarios need a few batches to interrupt)")
    return args


def _rabbitmq_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=3).close()
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    from chaos.scenarios import BY_NAME, SCENARIOS

    if args.list:
        for s in SCENARIOS:
            print(f"{s.name:22} {s.about}")
        print(f"{'fuzz':22} the property-based tests, --fuzz-scale times their examples in make test")
        return 0
    names = [n for n in args.only.split(",") if n]
    if names == ["fuzz"]:
        return _fuzz(args.fuzz_scale or 50)
    if not _rabbitmq_up():
        print("python -m chaos: nothing accepts AMQP on 127.0.0.1:5672; run it through scripts/with-services "
              "(make chaos does)", file=sys.stderr)
        return 2
    from moto.server import ThreadedMotoServer

    from chaos.stage import Size
    from chaos.suite import log_tails, run_scenario
    from chaos.table import render, render_notes
    from tests.conftest import _atomic_conditional_puts
    from tests.e2e.conftest import free_port

    size = Size(profiles=args.profiles, rate_scale=args.rate_scale, ac_outage_seconds=args.ac_outage_seconds,
                broker_outage_seconds=args.broker_outage_seconds, s3_outage_seconds=args.s3_outage_seconds,
                malformed=args.malformed, sweeps=args.sweeps, sweep_seed=args.sweep_seed)
    chosen = [BY_NAME[n] for n in names if n != "fuzz"] if names else list(SCENARIOS)
    fuzz_scale = args.fuzz_scale if not names or "fuzz" in names else 0
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request otherwise
    # the simulator's server logs the requests a killed worker left half-sent (a traceback each): expected here
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    restore_moto = _atomic_conditional_puts()  # as the tests' moto fixture: conditional PUTs atomic, as on S3
    moto.start()
    started = time.monotonic()
    rows = []
    try:
        for s in chosen:
            print(f"chaos: {s.name}: {s.about} ...", file=sys.stderr, flush=True)
            row = run_scenario(s, f"http://127.0.0.1:{port}", size, workdir)
            rows.append(row)
            print(f"chaos: {s.name}: {'clean' if row.clean else 'NOT CLEAN'} in {row.seconds:.0f} s",
                  file=sys.stderr, flush=True)
            if not row.clean:
                print(log_tails(workdir, s.name), file=sys.stderr)
    finally:
        moto.stop()
        restore_moto()
    clean = all(r.clean for r in rows)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\nchaos suite, {when}: {len(rows)} scenario(s), {size.profiles:,} profiles, rate_scale "
          f"{size.rate_scale:g}, ActiveCampaign outage {size.ac_outage_seconds:g} s; "
          f"{time.monotonic() - started:.0f} s on {platform.node()} ({platform.machine()}, "
          f"Python {platform.python_version()})\n")
    print(render(rows))
    print("\n" + render_notes(rows))
    if fuzz_scale:
        clean = _fuzz(fuzz_scale) == 0 and clean
    if clean and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"\nlogs: {workdir}", file=sys.stderr)
    return 0 if clean else 1


def _fuzz(scale: int) -> int:
    """The long run of the fuzz tests; prints their table; 0 when every property held."""
    from chaos.fuzz import render, run_fuzz

    print(f"chaos: fuzz: the property-based tests at {scale}x their examples ...", file=sys.stderr, flush=True)
    rows, seconds, output = run_fuzz(scale)
    print("\n" + render(rows, scale, seconds))
    ok = bool(rows) and all(r.passed for r in rows)
    if not ok:
        print(output[-6000:], file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
