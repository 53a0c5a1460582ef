"""Throughput and memory of a sync: the local pipeline alone, and end to end against the simulator.

    python bench/sync_bench.py --profiles 1000000 --rate-scale 10 --json bench/results/1m.json
    python bench/sync_bench.py --profiles 10000000 --pipeline-only --json bench/results/10m.json

Measures (bench/README.md says what each figure means):
- pipeline, cold: read -> map -> validate -> dedupe -> diff -> batch -> encode the plan, on one core with
  ActiveCampaign out of the picture (profiles per CPU second), then the commit of an all-succeeded run
  into a file store; peak RSS of that process;
- pipeline, refresh: the same against the state just written, on a snapshot where 1% changed: state
  load, the removal guard's pass, planning and commit times; peak RSS;
- end to end (unless --pipeline-only): a full `sync` (its own process) against the simulator at
  --rate-scale: wall time, contacts/min and share of the account ceiling (25,000 x scale a minute),
  the pace between the first and last bulk request, peak RSS, contacts accepted over time; then the
  1%-changed refresh at --refresh-rate-scale (1 = ActiveCampaign's real budget): wall time, peak RSS;
- the per-contact baseline in the same run: one `contact/sync` + one `contactLists` per contact at
  5 requests/s x scale, what an integration without bulk import gets;
- state bytes: the synced state (manifest + shards) and the whole store after each run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from worker.contacts.samples import person, write_jsonl  # noqa: E402

KEY = "bench-key"
MAPPING = {"email": "EmailAddress", "first_name": "FirstName", "last_name": "LastName", "phone": "Phone"}
CEILING_PER_MINUTE = 25_000  # 100 bulk requests a minute x 250 contacts
TIMELINE_POINTS = 400


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def changed(i: int) -> bool:
    """1% of the people, spread evenly and deterministically: the refresh's changed contacts."""
    return (i * 2654435761) % 100 == 7


def people(n: int, *, refresh: bool = False) -> Iterator[dict]:
    for i in range(n):
        yield person(i, 1 if refresh and changed(i) else 0)


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))


def state_bytes(state: Path, export: str) -> dict[str, int]:
    base = state / "exports" / export
    synced = (base / "synced").stat().st_size if (base / "synced").exists() else 0
    shards = folder_bytes(base / "shards") if (base / "shards").exists() else 0
    return {"synced_state": synced + shards, "store": folder_bytes(state)}


# ------------------------------------------------------------------------------------------ pipeline
def pipeline_child(snapshot: str, state: str, export: str) -> None:
    """In a child process: plan ``snapshot`` against the state in folder ``state`` (the removal guard's
    pass first when it holds anything), then commit an all-succeeded run there; print figures as JSON."""
    from worker.activecampaign.importer import BatchOutcome
    from worker.contacts.mapping import Mapper
    from worker.contacts.plan import Planner, tune_gc
    from worker.contacts.synced import SyncedState
    from worker.run.commit import install, merge
    from worker.run.guard import count_removals
    from worker.run.runbook import Runbook, encode_part
    from worker.settings import parse_config
    from worker.snapshot import read_pages
    from worker.state import open_store
    from worker.syncstate.manifest import Committed

    cfg = parse_config({"connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X",
                                              "data_privacy_consent": True}},
                        "exports": {export: {"segment": "s", "connection": "c", "list_id": 3, "mapping": MAPPING}}})
    exp = cfg.exports[export]
    tune_gc()  # as the Engine does
    store = open_store(Path(state).as_uri())
    book = Runbook(store, export, f"bench-{time.time_ns()}")
    clock = time.perf_counter
    t = clock()
    synced, version = SyncedState.load(store, book.keys.synced)
    load_s = clock() - t
    guard_s = 0.0
    if synced.subscribed():
        t = clock()
        count_removals(exp, synced, read_pages(snapshot))
        guard_s = clock() - t
    planner = Planner(Mapper(exp), synced)
    cpu, t = time.process_time(), clock()
    nbytes = batches = 0
    store_cpu = store_s = 0.0
    for part in planner.plan(read_pages(snapshot)):
        data = encode_part(part)
        nbytes += len(data)
        batches += len(part.batches)
        c0, t0 = time.process_time(), clock()
        book.put_part(part)  # for the commit below, as the engine does; not the pipeline's own work
        store_cpu += time.process_time() - c0
        store_s += clock() - t0
    cpu, plan_s = time.process_time() - cpu - store_cpu, clock() - t - store_s
    t = clock()
    merged = merge(book, exp.list_id, synced, planner.totals, lambda n: BatchOutcome(n, f"b{n}", "completed"))
    try:
        failures = merged.report.write(store, book.keys, export)
        installed = install(store, book.keys, synced, version, merged.changes, book.run_id,
                            Committed(merged.counts, failures))
    finally:
        merged.changes.close()
    book.delete_records()
    commit_s = clock() - t
    assert installed is not None
    tot = planner.totals
    print(json.dumps({"profiles": tot.profiles, "to_add": tot.to_add, "to_update": tot.to_update,
                      "unchanged": tot.unchanged, "batches": batches, "plan_cpu_seconds": cpu,
                      "plan_wall_seconds": plan_s, "rate": tot.profiles / cpu, "plan_part_bytes": nbytes,
                      "state_load_seconds": load_s, "guard_seconds": guard_s, "commit_seconds": commit_s,
                      "state_entries": installed.entries, "shards": len(installed.shard_keys()),
                      "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def pipeline(snapshot: Path, state: Path) -> dict[str, Any]:
    out = subprocess.check_output([sys.executable, __file__, "--pipeline-child", str(snapshot), str(state), "bench"])
    return dict(json.loads(out))


# ------------------------------------------------------------------------------------------ end to end
def write_config(tmp: Path, url: str, scale: float, name: str = "bench.toml") -> Path:
    path = tmp / name
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
mapping = {{ {", ".join(f'{key} = "{column}"' for key, column in MAPPING.items())} }}
""")
    return path


def run_sync(config: Path, snapshot: Path) -> tuple[dict[str, Any], float, int, float]:
    """The sync command in a child process: (event, wall seconds, peak RSS in bytes, start on the monotonic
    clock, which the simulator's request log uses too: one clock for the whole machine on Linux)."""
    env = dict(os.environ, BENCH_AC_KEY=KEY)
    t0 = time.monotonic()
    started = t0
    proc = subprocess.Popen([sys.executable, "-m", "worker", "--log-level", "WARNING", "sync", "--config",
                             str(config), "--export", "bench", "--snapshot", str(snapshot)],
                            stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"sync failed: {out.decode()[:2000]}")
    return json.loads(out), seconds, usage.ru_maxrss * 1024, started


def timeline(posts: list[dict[str, Any]], started: float) -> list[tuple[float, int]]:
    """(seconds since the sync started, contacts accepted so far), at most TIMELINE_POINTS points."""
    points, total = [(0.0, 0)], 0
    for r in posts:
        total += r["contacts"]
        points.append((round(r["at"] - started, 2), total))
    step = max(1, len(points) // TIMELINE_POINTS)
    return points[::step] + ([points[-1]] if (len(points) - 1) % step else [])


async def per_contact_baseline(url: str, scale: float, contacts: int) -> dict[str, Any]:
    """One contact/sync and one contactLists per contact through the account limiter at 5 x scale req/s."""
    import aiohttp

    from worker.activecampaign.limiter import AccountLimiter

    limiter = AccountLimiter(5 * scale, 100 * scale)
    headers = {"Api-Token": KEY}
    t0 = time.monotonic()
    async with aiohttp.ClientSession(headers=headers) as http:
        for i in range(contacts):
            p = person(50_000_000 + i)
            await limiter.acquire("other")
            async with http.post(f"{url}/api/3/contact/sync", json={"contact": {
                    "email": p["EmailAddress"].lower(), "firstName": p["FirstName"], "lastName": p["LastName"],
                    "phone": p["Phone"]}}) as resp:
                contact = (await resp.json())["contact"]
            await limiter.acquire("other")
            async with http.post(f"{url}/api/3/contactLists", json={"contactList": {
                    "list": 3, "contact": contact["id"], "status": 1}}) as resp:
                resp.raise_for_status()
    seconds = time.monotonic() - t0
    per_minute = contacts / seconds * 60
    return {"contacts": contacts, "seconds": seconds, "contacts_per_minute": per_minute,
            "contacts_per_minute_at_real_budget": per_minute / scale}


def end_to_end(tmp: Path, snap: Path, refresh: Path, n: int, scale: float, refresh_scale: float,
               processing_delay: float, baseline_contacts: int) -> dict[str, Any]:
    from worker.sim import SimClient

    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "worker", "simulate", "--port", str(port), "--api-key", KEY,
                            "--rate-scale", str(scale), "--processing-delay", str(processing_delay)],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    result: dict[str, Any] = {}
    try:
        url = f"http://127.0.0.1:{port}"
        sim.stdout.readline() if sim.stdout else None  # the simulator prints its URL once it listens
        simc = SimClient(url)
        config = write_config(tmp, url, scale)
        event, seconds, rss, started = run_sync(config, snap)
        c = event["counts"]
        posts = [r for r in simc.requests() if r["method"] == "POST" and r["status"] == 200
                 and r["path"].endswith("import/bulk_import")]
        span = posts[-1]["at"] - posts[0]["at"] if len(posts) > 1 else 0.0
        steady = (sum(r["contacts"] for r in posts[1:]) / span * 60) if span > 0 else 0.0
        rate = c["added"] / seconds * 60
        ceiling = CEILING_PER_MINUTE * scale
        result["full"] = {"rate_scale": scale, "ceiling_per_minute": ceiling, "added": c["added"],
                          "failed": c["failed"], "bulk_requests": len(posts), "wall_seconds": seconds,
                          "contacts_per_minute": rate, "share_of_ceiling": rate / ceiling,
                          "steady_contacts_per_minute": steady, "steady_share_of_ceiling": steady / ceiling,
                          "peak_rss": rss, "timeline": timeline(posts, started), **state_bytes(tmp / "state", "bench")}
        result["baseline"] = asyncio.run(per_contact_baseline(url, scale, baseline_contacts))
        result["baseline"]["rate_scale"] = scale
        simc.reset()  # the refresh is measured on its own: fresh rate windows and request log
        simc.configure(rate_scale=refresh_scale)
        config = write_config(tmp, url, refresh_scale, "refresh.toml")
        event, seconds, rss, _ = run_sync(config, refresh)
        c = event["counts"]
        result["refresh"] = {"rate_scale": refresh_scale, "updated": c["updated"], "added": c["added"],
                             "unchanged": c["unchanged"], "removed": c["removed"], "failed": c["failed"],
                             "wall_seconds": seconds, "peak_rss": rss, **state_bytes(tmp / "state", "bench")}
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
    return result


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "load_average_at_start": os.getloadavg()}


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=200_000)
    ap.add_argument("--rate-scale", type=float, default=10.0, help="the simulator's budget multiplier, full sync")
    ap.add_argument("--refresh-rate-scale", type=float, default=1.0, help="for the 1%% refresh (1 = AC's real one)")
    ap.add_argument("--processing-delay", type=float, default=1.0, help="simulated seconds per batch")
    ap.add_argument("--baseline-contacts", type=int, default=0,
                    help="contacts for the per-contact baseline (default: 15 s worth at the budget)")
    ap.add_argument("--pipeline-only", action="store_true", help="no simulator: the local pipeline and commit")
    ap.add_argument("--json", type=Path, help="also write the figures here (bench/plot.py reads them)")
    ap.add_argument("--pipeline-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.pipeline_child:
        pipeline_child(*args.pipeline_child)
        return

    n, scale = args.profiles, args.rate_scale
    tmp = Path(tempfile.mkdtemp(prefix="segment-export-bench-"))
    result: dict[str, Any] = {"profiles": n, "machine": machine(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "command": " ".join([Path(sys.executable).name, *sys.argv])}
    print(f"segment-export bench: {n:,} profiles; {result['machine']['cores']} cores, "
          f"load average {result['machine']['load_average_at_start'][0]:.1f} at start")
    try:
        t = time.monotonic()
        snap = write_jsonl(tmp / "full.jsonl", people(n))
        refresh = write_jsonl(tmp / "refresh.jsonl", people(n, refresh=True))
        result["snapshot"] = {"bytes": snap.stat().st_size, "write_seconds": time.monotonic() - t}

        cold = pipeline(snap, tmp / "pipeline-state")
        warm = pipeline(refresh, tmp / "pipeline-state")
        result["pipeline_cold"], result["pipeline_refresh"] = cold, warm
        result["pipeline_state_bytes"] = state_bytes(tmp / "pipeline-state", "bench")
        print(f"\npipeline, cold (read-map-validate-dedupe-diff-batch-encode, one core, all new):\n"
              f"  {cold['rate']:,.0f} profiles/s ({cold['profiles']:,} in {cold['plan_cpu_seconds']:.1f} s CPU); "
              f"commit {cold['commit_seconds']:.1f} s; peak RSS {mib(cold['peak_rss'])}\n"
              f"pipeline, 1% changed against that state ({warm['to_update']:,} updates):\n"
              f"  state load {warm['state_load_seconds']:.2f} s, removal guard pass {warm['guard_seconds']:.1f} s, "
              f"plan {warm['rate']:,.0f} profiles/s, commit {warm['commit_seconds']:.1f} s; "
              f"peak RSS {mib(warm['peak_rss'])}\n"
              f"  synced state {result['pipeline_state_bytes']['synced_state']:,} bytes "
              f"({warm['state_entries']:,} entries, {warm['shards']} shards)")
        if not args.pipeline_only:
            contacts = args.baseline_contacts or int(15 * 2.5 * scale)
            e2e = end_to_end(tmp, snap, refresh, n, scale, args.refresh_rate_scale, args.processing_delay, contacts)
            result.update(e2e)
            f, b, r = e2e["full"], e2e["baseline"], e2e["refresh"]
            print(f"\nfull sync end to end at --rate-scale {scale:g} ({f['added']:,} added, {f['failed']} failed, "
                  f"{f['bulk_requests']} bulk requests):\n"
                  f"  {f['wall_seconds']:.1f} s wall = {f['contacts_per_minute']:,.0f} contacts/min = "
                  f"{f['share_of_ceiling']:.1%} of the ceiling ({f['ceiling_per_minute']:,.0f}/min)\n"
                  f"  pace between the first and last bulk request: {f['steady_contacts_per_minute']:,.0f}/min = "
                  f"{f['steady_share_of_ceiling']:.1%} of the ceiling\n"
                  f"  sync process peak RSS {mib(f['peak_rss'])}; synced state {f['synced_state']:,} bytes, "
                  f"store {f['store']:,} bytes\n"
                  f"per-contact baseline (contact/sync + contactLists, 5 req/s x {scale:g}): "
                  f"{b['contacts_per_minute']:,.0f} contacts/min measured = "
                  f"{b['contacts_per_minute_at_real_budget']:,.0f}/min at the real budget ({b['contacts']} contacts)\n"
                  f"\n1% refresh end to end at --rate-scale {r['rate_scale']:g} ({r['updated']:,} updated, "
                  f"{r['unchanged']:,} unchanged):\n"
                  f"  {r['wall_seconds']:.1f} s wall; peak RSS {mib(r['peak_rss'])}; store {r['store']:,} bytes")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1) + "\n")
            print(f"\nfigures written to {args.json}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
