"""The state store's size over daily refreshes: does it stay a small multiple of one synced state?

    python bench/retention_bench.py --profiles 1000000 --days 30 --json bench/results/retention.json

One full sync, then ``--days`` refreshes, each a day later: 1% of the contacts changed, 0.2% left and
0.2% new. Between runs every record under ``runs/`` is aged by a day (its mtime moved back), which is
how ``retention_days`` (default 30) sees time pass, and so is the synced state: each entry's "unsubscribed
by this export at" time moves back a day (the shards are rewritten in place), which is how
``readmit_days`` (``--readmit-days``, default the export's 90) sees it. After each run the script
records the store's bytes, the synced state's bytes (manifest + shards), its entries (and how many are
kept only for re-entry) and what the runs left. Each run is the real `sync` command against the
simulator (at --rate-scale, so a month takes minutes).
"""

from __future__ import annotations

import argparse
import json
import os
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
sys.path.insert(0, str(HERE))

from sync_bench import KEY, free_port, run_sync, state_bytes, write_config  # noqa: E402

from worker.contacts.samples import person, write_jsonl  # noqa: E402

DAY = 86_400


def day_people(n: int, day: int) -> Iterator[dict]:
    """Day ``day``'s segment: ids shifted by 0.2% a day (leavers below, newcomers above), 1% changed."""
    shift = n // 500
    for i in range(day * shift, n + day * shift):
        version = day if (i * 2654435761 + day * 40503) % 100 == 0 else 0
        yield person(i, version)


def age_runs(state: Path, seconds: float) -> None:
    for path in (state / "exports" / "bench" / "runs").rglob("*"):
        if path.is_file():
            st = path.stat()
            os.utime(path, (st.st_atime - seconds, st.st_mtime - seconds))


def age_state(state: Path, seconds: int) -> None:
    """Move every entry's "unsubscribed at" back by ``seconds`` (the shards are rewritten in place)."""
    import numpy as np

    from worker.syncstate.shard import decode_shard, encode_shard

    for path in (state / "exports" / "bench" / "shards").rglob("*"):
        if path.is_file():
            block = decode_shard(path.read_bytes(), str(path))
            since = block.since.astype(np.int64)
            block.since = np.where(since > seconds, since - seconds, since).astype(np.uint32)
            path.write_bytes(encode_shard(block))


def entries(state: Path) -> dict[str, int]:
    """The synced state's entries, and those kept only for re-entry (flag u), from its manifest."""
    text = (state / "exports" / "bench" / "synced").read_text()
    manifest = json.loads(text.split("\n", 1)[1])
    return {"entries": manifest["entries"], "unsubscribed_entries": manifest["unsubscribed"]}


def run_records(state: Path) -> dict[str, int]:
    runs = state / "exports" / "bench" / "runs"
    files = [p for p in runs.rglob("*") if p.is_file()] if runs.exists() else []
    return {"runs": len({p.relative_to(runs).parts[0] for p in files}), "run_files": len(files),
            "run_bytes": sum(p.stat().st_size for p in files),
            "plan_or_batch_files": sum(1 for p in files if p.parent.name in ("plan", "batches"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--rate-scale", type=float, default=20.0)
    ap.add_argument("--readmit-days", type=float, help="the export's readmit_days (default: the export's 90)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="segment-export-retention-"))
    port = free_port()
    sim = subprocess.Popen([sys.executable, "-m", "worker", "simulate", "--port", str(port), "--api-key", KEY,
                            "--rate-scale", str(args.rate_scale), "--processing-delay", "0.5"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    days: list[dict[str, Any]] = []
    try:
        sim.stdout.readline() if sim.stdout else None
        config = write_config(tmp, f"http://127.0.0.1:{port}", args.rate_scale)
        if args.readmit_days is not None:
            config.write_text(config.read_text() + f"readmit_days = {args.readmit_days}\n")
        state = tmp / "state"
        print(f"{'day':>3} {'added':>8} {'updated':>8} {'removed':>8} {'wall s':>7} {'entries':>10} {'of them u':>9} "
              f"{'synced state':>14} {'store':>14} {'ratio':>6} {'runs':>5} {'plan/batch files':>17}")
        for day in range(args.days + 1):
            if day:
                age_runs(state, DAY)
                age_state(state, DAY)
            snap = write_jsonl(tmp / "snap.jsonl", day_people(args.profiles, day))
            event, seconds, rss, _ = run_sync(config, snap)
            c = event["counts"]
            sizes, records, counted = state_bytes(state, "bench"), run_records(state), entries(state)
            row = {"day": day, "added": c["added"], "updated": c["updated"], "removed": c["removed"],
                   "failed": c["failed"], "wall_seconds": seconds, "peak_rss": rss, **sizes, **records, **counted,
                   "ratio": sizes["store"] / sizes["synced_state"]}
            days.append(row)
            print(f"{day:>3} {c['added']:>8,} {c['updated']:>8,} {c['removed']:>8,} {seconds:>7.1f} "
                  f"{counted['entries']:>10,} {counted['unsubscribed_entries']:>9,} "
                  f"{sizes['synced_state']:>14,} {sizes['store']:>14,} {row['ratio']:>6.3f} {records['runs']:>5} "
                  f"{records['plan_or_batch_files']:>17}", flush=True)
    finally:
        sim.send_signal(signal.SIGTERM)
        try:
            sim.wait(timeout=30)
        except subprocess.TimeoutExpired:
            sim.kill()
            sim.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"profiles": args.profiles, "days": days, "rate_scale": args.rate_scale,
                                         "readmit_days": args.readmit_days,
                                         "finished": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1) + "\n")


if __name__ == "__main__":
    main()
