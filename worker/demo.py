"""``segment-export demo``: the whole job on a fresh machine, with nothing to install or configure.

Starts the ActiveCampaign simulator on a free loopback port, writes a sample segment (about 20,000
profiles, with malformed and duplicate rows), runs a first full sync, then a refresh where 5% of the
people changed and 2% left, and prints what each run sent, what the list holds and how the time
compares with the account's rate budget.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from worker.config import parse_config
from worker.engine import Engine, RunSpec
from worker.samples import evolve, make_segment, write_jsonl
from worker.sim import SimClient, SimSettings, SimulatorServer
from worker.state import open_store

DEMO_KEY_ENV = "SEGMENT_EXPORT_DEMO_KEY"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profiles", type=int, default=20_000, help="people in the sample segment (default 20000)")
    p.add_argument("--rate-scale", type=float, default=4.0,
                   help="simulated account budget as a multiple of ActiveCampaign's (default 4, so the demo "
                        "takes seconds; 1 is a real account)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (snapshots, state, reports)")


def _config(url: str, state: Path, scale: float) -> dict:
    return {
        "worker": {"state_url": f"file://{state}"},
        "connections": {"demo": {
            "display_name": "Demo account (simulated)", "hostname": "demo.api-us1.com", "base_url": url,
            "api_key_env": DEMO_KEY_ENV, "data_privacy_consent": True, "usable_by": ["admin"],
            "requests_per_second": 5 * scale, "bulk_requests_per_minute": 100 * scale,
        }},
        "exports": {"vip-newsletter": {
            "segment": "vip-customers", "connection": "demo", "list_id": 3, "on_leave": "unsubscribe",
            "mapping": {"email": "EmailAddress", "first_name": "FirstName", "last_name": "LastName",
                        "phone": "Phone"},
            "tags": ["segment:vip"],
        }},
    }


def _row(title: str, event: dict, bulk: int, seconds: float, scale: float) -> str:
    c = event["counts"]
    sent = c["added"] + c["updated"] + c["removed"] + c["failed"] + c["skipped"]
    ceiling = 25_000 * scale
    rate = sent / seconds * 60 if seconds > 0 else 0.0
    return (f"  {title:<22} {event['status']:<9} read {c['profiles']:>6,}  invalid {c['invalid']:>4}  "
            f"duplicates {c['duplicates']:>4}\n"
            f"  {'':<22} added {c['added']:>6,}  updated {c['updated']:>5,}  removed {c['removed']:>5,}  "
            f"unchanged {c['unchanged']:>6,}  failed {c['failed']}  skipped {c['skipped']}\n"
            f"  {'':<22} {sent:,} contacts sent in {bulk} bulk requests, {seconds:.1f} s: {rate:,.0f} contacts/min "
            f"({rate / ceiling:.0%} of this account's ceiling of {ceiling:,.0f}/min)\n")


def run(args: argparse.Namespace) -> int:
    scale = args.rate_scale
    os.environ.setdefault(DEMO_KEY_ENV, "demo-key")
    logging.getLogger("segment_export").setLevel(logging.WARNING)  # the summary below is the output
    tmp = Path(tempfile.mkdtemp(prefix="segment-export-demo-"))
    out = sys.stdout
    with SimulatorServer(SimSettings(api_keys=(os.environ[DEMO_KEY_ENV],), rate_scale=scale,
                                     processing_delay=1.0)) as sim:
        simc = SimClient(sim.url)
        config = parse_config(_config(sim.url, tmp / "state", scale), "demo")
        export = config.exports["vip-newsletter"]
        engine = Engine(config, open_store(f"file://{tmp / 'state'}"))
        out.write(f"segment-export demo\n  simulator: {sim.url} (ActiveCampaign API, budget x{scale:g})\n"
                  f"  work folder: {tmp}\n\n")

        ids = list(range(args.profiles))
        first = make_segment(ids, invalid_rate=0.01, duplicate_rate=0.01)
        snap1 = write_jsonl(tmp / "snapshots" / "refresh-1.jsonl", first.profiles)
        kept, versions, _, _ = evolve(ids, changed=0.05, removed=0.02, new=0.0, next_id=len(ids))
        second = make_segment(kept, invalid_rate=0.01, duplicate_rate=0.01, versions=versions)
        snap2 = write_jsonl(tmp / "snapshots" / "refresh-2.jsonl", second.profiles)

        rows = []
        for title, snap, refresh in (("1. first full sync", snap1, "refresh-1"),
                                     ("2. 5% changed, 2% left", snap2, "refresh-2")):
            before = sum(1 for r in simc.requests() if r["path"].endswith("import/bulk_import")
                         and r["method"] == "POST" and r["status"] == 200)
            t0 = time.monotonic()
            result = asyncio.run(engine.run(RunSpec(export, str(snap), refresh, f"demo-{refresh}")))
            seconds = time.monotonic() - t0
            bulk = sum(1 for r in simc.requests() if r["path"].endswith("import/bulk_import")
                       and r["method"] == "POST" and r["status"] == 200) - before
            rows.append(_row(title, result.event, bulk, seconds, scale))
            if result.exit_code not in (0, 3):
                out.write("".join(rows) + f"\nrun failed: {result.event.get('error')}\n")
                return 1

        members = simc.members(3)
        subscribed = sum(1 for m in members.values() if m["status"] == "subscribed")
        unsubscribed = sum(1 for m in members.values() if m["status"] == "unsubscribed")
        expected = set(second.expected)
        exact = {e for e, m in members.items() if m["status"] == "subscribed"} == expected
        r429 = sum(1 for r in simc.requests() if r["status"] == 429)
        out.write("".join(rows))
        out.write(f"\n  list 3 now holds {subscribed:,} subscribed and {unsubscribed:,} unsubscribed contacts; "
                  f"the segment has {len(expected):,} valid people: {'exact match' if exact else 'MISMATCH'}\n"
                  f"  the simulator answered {r429} requests with 429 (over budget)\n"
                  f"  failure reports: {tmp / 'state' / 'exports' / 'vip-newsletter' / 'runs'}/*/failures.csv\n")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if exact else 1
