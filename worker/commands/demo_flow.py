"""``segment-export demo``: the whole flow on a fresh machine, with nothing to install or configure.

Starts the ActiveCampaign simulator on a free loopback port, writes a sample segment (about 20,000
profiles, with malformed and duplicate rows) and runs the real event path in this process: a
``segment.refreshed`` is published to the broker (kombu's ``memory://`` by default; ``--broker`` for
RabbitMQ or SQS), the worker consumes it, runs the export and publishes ``export.completed``, which is
printed. Then a refresh where 5% of the people changed and 2% left goes the same way, and a summary
says what each run sent, what the list holds and how the time compares with the account's budget.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from worker.contacts.samples import evolve, make_segment, write_jsonl
from worker.events.envelopes import refreshed_event, snapshot_ref
from worker.settings import parse_config
from worker.sim import SimClient, SimSettings, SimulatorServer

DEMO_KEY_ENV = "SEGMENT_EXPORT_DEMO_KEY"
EVENT_TIMEOUT = 600.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profiles", type=int, default=20_000, help="people in the sample segment (default 20000)")
    p.add_argument("--rate-scale", type=float, default=4.0,
                   help="simulated account budget as a multiple of ActiveCampaign's (default 4, so the demo "
                        "takes seconds; 1 is a real account)")
    p.add_argument("--broker", default="memory://",
                   help="broker URL (default memory://, in this process); amqp://... or sqs://... for real ones")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (snapshots, state, reports)")


def _config(url: str, state: Path, scale: float, broker: str) -> dict[str, Any]:
    return {
        "worker": {"state_url": f"file://{state}", "broker_url": broker, "metrics_port": 0,
                   # fixed names: re-running the demo against a real broker reuses its queues
                   "requests_queue": "segment-export-demo-requests",
                   "events_exchange": "segment-export-demo-events",
                   "snapshot_prefixes": [f"file://{state.parent}/snapshots/", f"{state.parent}/snapshots/"]},
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


def _summary(title: str, event: dict[str, Any], bulk: int, seconds: float, scale: float) -> str:
    c = event["counts"]
    sent = c["added"] + c["updated"] + c["removed"] + c["failed"] + c["skipped"]
    ceiling = 25_000 * scale
    rate = sent / seconds * 60 if seconds > 0 else 0.0
    return (f"  {title:<24} {event['status']:<9} read {c['profiles']:>6,}  invalid {c['invalid']:>4}  "
            f"duplicates {c['duplicates']:>4}\n"
            f"  {'':<24} added {c['added']:>6,}  updated {c['updated']:>5,}  removed {c['removed']:>5,}  "
            f"unchanged {c['unchanged']:>6,}  failed {c['failed']}  skipped {c['skipped']}\n"
            f"  {'':<24} {sent:,} contacts in {bulk} bulk requests, {seconds:.1f} s from publish to event: "
            f"{rate:,.0f} contacts/min ({rate / ceiling:.0%} of this account's ceiling of {ceiling:,.0f}/min)\n")


def _bulk_posts(simc: SimClient) -> int:
    return sum(1 for r in simc.requests()
               if r["method"] == "POST" and r["path"].endswith("import/bulk_import") and r["status"] == 200)


async def _flow(args: argparse.Namespace, tmp: Path, sim_url: str) -> bool:
    from worker.service.worker import Worker

    out = sys.stdout
    scale = args.rate_scale
    simc = SimClient(sim_url)
    config = parse_config(_config(sim_url, tmp / "state", scale, args.broker), "demo")
    events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    worker = Worker(config, on_published=events.put_nowait)
    runner = asyncio.ensure_future(worker.run())
    ready = asyncio.ensure_future(worker.ready.wait())
    await asyncio.wait({runner, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if not ready.done():
        ready.cancel()
        if runner.done():
            runner.result()  # raises the worker's start-up error
        raise TimeoutError("the worker did not connect to the broker within 60 s")

    ids = list(range(args.profiles))
    first = make_segment(ids, invalid_rate=0.01, duplicate_rate=0.01)
    snap1 = write_jsonl(tmp / "snapshots" / "refresh-1.jsonl", first.profiles)
    kept, versions, _, _ = evolve(ids, changed=0.05, removed=0.02, new=0.0, next_id=len(ids))
    second = make_segment(kept, invalid_rate=0.01, duplicate_rate=0.01, versions=versions)
    snap2 = write_jsonl(tmp / "snapshots" / "refresh-2.jsonl", second.profiles)

    rows = []
    try:
        for title, snap, refresh in (("1. first full sync", snap1, "refresh-1"),
                                     ("2. 5% changed, 2% left", snap2, "refresh-2")):
            before = _bulk_posts(simc)
            snapshot = snapshot_ref(f"file://{snap}", "jsonl")
            snapshot["profile_count"] = len(first.profiles if refresh == "refresh-1" else second.profiles)
            refreshed = refreshed_event("vip-customers", snapshot, refresh)
            refreshed["segment"]["name"] = "VIP customers"
            t0 = time.monotonic()
            await worker.bridge.publish_request(orjson.dumps(refreshed))
            out.write(f"-> published segment.refreshed {refresh} to {worker.bridge.kind} queue "
                      f"{config.worker.requests_queue}\n")
            event = await asyncio.wait_for(events.get(), EVENT_TIMEOUT)
            seconds = time.monotonic() - t0
            out.write(f"<- {event['type']} for run {event['run_id']}:\n"
                      f"{orjson.dumps(event, option=orjson.OPT_INDENT_2).decode()}\n\n")
            rows.append(_summary(title, event, _bulk_posts(simc) - before, seconds, scale))
            if event["status"] == "failed":
                out.write("".join(rows))
                return False
    finally:
        worker.request_stop()
        await asyncio.wait_for(runner, 60)

    members = simc.members(3)
    subscribed = {e for e, m in members.items() if m["status"] == "subscribed"}
    unsubscribed = len(members) - len(subscribed)
    exact = subscribed == set(second.expected)
    r429 = sum(1 for r in simc.requests() if r["status"] == 429)
    out.write("Summary\n" + "".join(rows))
    out.write(f"\n  list 3 now holds {len(subscribed):,} subscribed and {unsubscribed:,} unsubscribed contacts; "
              f"the segment has {len(second.expected):,} valid people: {'exact match' if exact else 'MISMATCH'}\n"
              f"  the simulator answered {r429} requests with 429 (over budget)\n"
              f"  failure reports (invalid rows with line numbers): "
              f"{tmp / 'state' / 'exports' / 'vip-newsletter' / 'runs'}/*/failures.csv\n")
    return exact


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault(DEMO_KEY_ENV, "demo-key")
    logging.getLogger("segment_export").setLevel(logging.WARNING)  # the printed flow is the output
    tmp = Path(tempfile.mkdtemp(prefix="segment-export-demo-"))
    settings = SimSettings(api_keys=(os.environ[DEMO_KEY_ENV],), rate_scale=args.rate_scale, processing_delay=1.0)
    with SimulatorServer(settings) as sim:
        sys.stdout.write(f"segment-export demo\n  ActiveCampaign simulator: {sim.url} (budget x{args.rate_scale:g})\n"
                         f"  broker: {args.broker}\n  work folder: {tmp}\n\n")
        ok = asyncio.run(_flow(args, tmp, sim.url))
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1
