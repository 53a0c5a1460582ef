"""Parquet against JSON Lines: the pipeline's profiles per CPU second and peak RSS on the same segment.

Usage: python bench/format_bench.py [--profiles 1000000] [--parts 8] [--json bench/results/formats.json]

The same profiles (the four mapped columns plus four that no export maps, as a CDP's export carries) are
written as one JSON Lines file and as ``--parts`` Parquet part files (snappy, as Spark writes them). Each is
then planned in a child process of its own, as a first sync would plan it (read, map, validate, dedupe,
diff against an empty state, batch, encode the plan parts; no ActiveCampaign), so its peak RSS is its own.
Parquet reads only the four mapped columns and hands over typed rows with no text parsing. A figure, not a
test: no assertion on timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker.contacts.samples import person, write_jsonl

MAPPING = {"email": "EmailAddress", "first_name": "FirstName", "last_name": "LastName", "phone": "Phone"}
UNMAPPED = ("CustomerId", "LoyaltyTier", "Country", "LastOrderAt")


def profile(i: int) -> dict[str, Any]:
    p = person(i)
    return {**p, "CustomerId": f"c-{i:09d}", "LoyaltyTier": ("gold", "silver", "bronze")[i % 3],
            "Country": ("GB", "DE", "FR", "NL")[i % 4], "LastOrderAt": f"2026-11-{1 + i % 28:02d}T10:00:00Z"}


def write_parquet(folder: Path, n: int, parts: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True)
    size = -(-n // parts)
    for k in range(parts):
        rows = [profile(i) for i in range(k * size, min(n, (k + 1) * size))]
        table = pa.table({c: [r[c] for r in rows] for c in rows[0]})
        pq.write_table(table, folder / f"part-{k:05d}-bench-c000.snappy.parquet", compression="snappy",
                       row_group_size=128 * 1024)
    (folder / "_SUCCESS").write_bytes(b"")


def child(snapshot: str) -> None:
    """In a child process: plan ``snapshot`` for a first sync; print the figures as JSON."""
    from worker.contacts.mapping import Mapper, profile_columns
    from worker.contacts.plan import Planner, tune_gc
    from worker.contacts.synced import SyncedState
    from worker.run.runbook import encode_part
    from worker.settings import parse_config
    from worker.snapshot import read_pages

    cfg = parse_config({"connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X",
                                              "data_privacy_consent": True}},
                        "exports": {"bench": {"segment": "s", "connection": "c", "list_id": 3, "mapping": MAPPING}}})
    export = cfg.exports["bench"]
    tune_gc()
    planner = Planner(Mapper(export), SyncedState())
    cpu, wall = time.process_time(), time.perf_counter()
    encoded = 0
    for part in planner.plan(read_pages(snapshot, columns=profile_columns(export))):
        encoded += len(encode_part(part))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(json.dumps({"profiles": planner.totals.profiles, "to_add": planner.totals.to_add, "cpu_seconds": cpu,
                      "wall_seconds": wall, "rate": planner.totals.profiles / cpu, "plan_part_bytes": encoded,
                      "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))


def measure(snapshot: Path) -> dict[str, Any]:
    out = subprocess.check_output([sys.executable, __file__, "--child", str(snapshot)])
    return dict(json.loads(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--parts", type=int, default=8)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="format-bench-") as tmp:
        folder = Path(tmp)
        jsonl = write_jsonl(folder / "segment.jsonl", (profile(i) for i in range(args.profiles)))
        write_parquet(folder / "parquet", args.profiles, args.parts)
        sizes = {"jsonl": jsonl.stat().st_size,
                 "parquet": sum(p.stat().st_size for p in (folder / "parquet").iterdir())}
        results = {"jsonl": measure(jsonl), "parquet": measure(folder / "parquet")}
    for name, r in results.items():
        assert r["profiles"] == args.profiles, (name, r)
        r["snapshot_bytes"] = sizes[name]
        print(f"{name:8} {r['profiles']:>10,} profiles  {r['rate']:>10,.0f} profiles/CPU s  "
              f"peak RSS {r['peak_rss'] / 2**20:6.0f} MiB  snapshot {sizes[name] / 2**20:6.1f} MiB")
    ratio = results["parquet"]["rate"] / results["jsonl"]["rate"]
    print(f"parquet / jsonl rate: {ratio:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"profiles": args.profiles, "parts": args.parts, "ratio": ratio,
                                         "results": results, "machine": {
                                             "python": platform.python_version(), "cpus": os.cpu_count(),
                                             "load_average_at_start": os.getloadavg()[0]}}, indent=2) + "\n")


if __name__ == "__main__":
    main()
