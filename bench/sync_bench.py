"""Throughput of a sync: end to end against the simulator, and the local pipeline alone.

    python bench/sync_bench.py --profiles 200000 --rate-scale 10

Prints:
- end to end: contacts per minute of a full sync (the `sync` command in its own process, against the
  simulator in another process at --rate-scale), the ratio to the account ceiling (25,000 x scale per
  minute), and the sync process's peak memory;
- an incremental sync where 1% changed (how long "a refresh where 1% changed" takes);
- the local pipeline (read -> map -> validate -> dedupe -> diff -> batch -> encode the plan) on one core
  with the API side out of the picture, in profiles per second, for a cold (all new) and a warm (all
  unchanged) state, and its peak memory at a quarter and the whole of the snapshot (memory vs size).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from worker.samples import evolve, make_segment, stream_people, write_jsonl  # noqa: E402

KEY = "bench-key"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp: Path, url: str, scale: float) -> Path:
    path = tmp / "bench.toml"
    path.write_text(f"""
[worker]
state_url = "file://{tmp / 'state'}"

[connections.sim]
hostname = "bench.api-us1.com"
base_url = "{url}"
api_key_env = "BENCH_AC_KEY"
data_privacy_consent = true
requests_per_second = {5 * scale}
bulk_requests_per_minute = {100 * scale}

[exports.bench]
segment = "bench"
connection = "sim"
list_id = 3
mapping = {{ email = "EmailAddress", first_name = "FirstName", last_name = "LastName", phone = "Phone" }}
""")
    return path


def run_sync(config: Path, snapshot: Path, *extra: str) -> tuple[dict, float, int]:
    """The sync command in a child process: (event, wall seconds, peak RSS in bytes)."""
    env = dict(os.environ, BENCH_AC_KEY=KEY)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "worker", "--log-level", "WARNING", "sync", "--config",
                             str(config), "--export", "bench", "--snapshot", str(snapshot), *extra],
                            stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"sync failed: {out.decode()[:2000]}")
    return json.loads(out), seconds, usage.ru_maxrss * 1024


def pipeline_child(snapshot: str, state: str, page_size: int) -> None:
    """Runs in a child process: plan the snapshot against a state file, print rate and peak RSS."""
    from worker.config import parse_config
    from worker.mapping import Mapper
    from worker.plan import Planner, tune_gc
    from worker.runbook import encode_part
    from worker.snapshot import read_pages
    from worker.synced import SyncedState

    cfg = parse_config({"connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X",
                                              "data_privacy_consent": True}},
                        "exports": {"b": {"segment": "s", "connection": "c", "list_id": 3,
                                          "mapping": {"email": "EmailAddress", "first_name": "FirstName",
                                                      "last_name": "LastName", "phone": "Phone"}}}})
    tune_gc()  # as the Engine does
    t_load = time.perf_counter()
    synced = SyncedState.decode(Path(state).read_bytes() if state else None)
    t_load = time.perf_counter() - t_load
    planner = Planner(Mapper(cfg.exports["b"]), synced.entries)
    t0 = time.process_time()
    nbytes = 0
    for part in planner.plan(read_pages(snapshot, page_size=page_size)):
        nbytes += len(encode_part(part))
    cpu = time.process_time() - t0
    t = planner.totals
    print(json.dumps({"profiles": t.profiles, "cpu_seconds": cpu, "rate": t.profiles / cpu, "to_add": t.to_add,
                      "unchanged": t.unchanged, "plan_bytes": nbytes, "state_load_seconds": t_load,
                      "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def pipeline(snapshot: Path, state: Path | None) -> dict:
    out = subprocess.check_output([sys.executable, __file__, "--pipeline-child", str(snapshot),
                                   str(state or ""), "5000"])
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=200_000)
    ap.add_argument("--rate-scale", type=float, default=10.0)
    ap.add_argument("--processing-delay", type=float, default=1.0, help="simulated seconds per batch")
    ap.add_argument("--skip-e2e", action="store_true", help="only the local pipeline")
    ap.add_argument("--pipeline-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pipeline_child:
        snap, state, page = args.pipeline_child
        pipeline_child(snap, state, int(page))
        return

    n, scale = args.profiles, args.rate_scale
    tmp = Path(tempfile.mkdtemp(prefix="segment-export-bench-"))
    print(f"segment-export bench: {n:,} profiles, simulator at --rate-scale {scale:g} "
          f"(ceiling {25_000 * scale:,.0f} contacts/min), {os.cpu_count()} cores")
    snap = write_jsonl(tmp / "full.jsonl", stream_people(n))
    quarter = write_jsonl(tmp / "quarter.jsonl", stream_people(n // 4))

    # ---- local pipeline, API side unlimited (not called at all)
    cold = pipeline(snap, None)
    cold_q = pipeline(quarter, None)
    print(f"\npipeline (read-map-validate-dedupe-diff-batch-encode, one core, cold state, all new):\n"
          f"  {cold['rate']:,.0f} profiles/s  ({cold['profiles']:,} in {cold['cpu_seconds']:.2f} s CPU)\n"
          f"  peak RSS {cold_q['peak_rss'] / 2**20:,.0f} MiB at {cold_q['profiles']:,} profiles, "
          f"{cold['peak_rss'] / 2**20:,.0f} MiB at {cold['profiles']:,}")

    if not args.skip_e2e:
        port = free_port()
        sim = subprocess.Popen([sys.executable, "-m", "worker", "simulate", "--port", str(port), "--api-key", KEY,
                                "--rate-scale", str(scale), "--processing-delay", str(args.processing_delay)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            sim.stdout.readline() if sim.stdout else None  # the simulator prints its URL once it listens
            config = write_config(tmp, url, scale)
            event, seconds, rss = run_sync(config, snap)
            c = event["counts"]
            rate = c["added"] / seconds * 60
            from worker.sim import SimClient

            posts = [r for r in SimClient(url).requests() if r["method"] == "POST" and r["status"] == 200
                     and r["path"].endswith("import/bulk_import")]
            span = posts[-1]["at"] - posts[0]["at"]
            steady = (len(posts) - 1) / span * 60 * 250 if span > 0 else 0.0
            ceiling = 25_000 * scale
            print(f"\nfull sync end to end ({c['added']:,} contacts added, {c['failed']} failed, "
                  f"{len(posts)} bulk requests):\n"
                  f"  {seconds:.1f} s wall (process start to confirmed commit) = {rate:,.0f} contacts/min = "
                  f"{rate / ceiling:.1%} of the account ceiling\n"
                  f"  sending pace between the first and last bulk request: {steady:,.0f} contacts/min = "
                  f"{steady / ceiling:.1%} of the ceiling\n"
                  f"  sync process peak RSS {rss / 2**20:,.0f} MiB")

            ids = list(range(n))
            kept, versions, _, _ = evolve(ids, changed=0.01, removed=0.0, new=0.0, next_id=n)
            snap2 = write_jsonl(tmp / "changed.jsonl", make_segment(kept, versions=versions).profiles)
            event, seconds, rss = run_sync(config, snap2)
            c = event["counts"]
            print(f"\nincremental sync, 1% changed ({c['updated']:,} updated, {c['unchanged']:,} unchanged):\n"
                  f"  {seconds:.1f} s wall; peak RSS {rss / 2**20:,.0f} MiB")

            state = tmp / "state" / "exports" / "bench" / "synced"
            warm = pipeline(snap, state)
            print(f"\npipeline against the synced state of {n:,} (diff path, 99% unchanged):\n"
                  f"  {warm['rate']:,.0f} profiles/s; synced state loaded in {warm['state_load_seconds']:.2f} s")
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=10)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
