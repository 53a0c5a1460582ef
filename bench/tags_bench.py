"""What removing tags costs: requests per removed tag for issue 18's case, against the simulator over HTTP.

    python bench/tags_bench.py --profiles 20000 [--json bench/results/tags.json]

An export with ``tags = ["segment:vip"]`` and a ``tag_field`` (two values a person) is synced; then 2% of
the people leave (each loses 3 tags) and 3% change one value (each loses 1). The second run's tag step
is measured twice, on fresh simulators: as the export does it (contact ids from a scan of the list when
that is cheaper than a lookup each) and with a lookup per contact (``GET contacts?email=``), the
sequence of a client that keeps no ids. Printed: requests by kind and per removed tag.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from worker.cli import main  # noqa: E402
from worker.contacts.samples import write_jsonl  # noqa: E402
from worker.run.tags import TagRemover  # noqa: E402
from worker.sim import SimClient, SimSettings, SimulatorServer  # noqa: E402

KEY = "bench-key-tags"


def person(i: int, changed: bool = False) -> dict:
    return {"EmailAddress": f"person{i}@example.com", "FirstName": f"P{i}",
            "Interests": f"interest:{i % 6},interest:{6 + (i + changed) % 4}"}


def config(folder: Path, url: str, scale: float) -> Path:
    path = folder / "export.toml"
    path.write_text(f"""
[worker]
state_url = "file://{folder / 'state'}"
[connections.sim]
hostname = "sim.api-us1.com"
base_url = "{url}"
api_key_env = "BENCH_TAGS_KEY"
data_privacy_consent = true
requests_per_second = {5 * scale}
bulk_requests_per_minute = {100 * scale}
[exports.vip]
segment = "vip"
connection = "sim"
list_id = 3
mapping = {{ email = "EmailAddress", first_name = "FirstName" }}
tags = ["segment:vip"]
tag_field = "Interests"
""")
    return path


def sync(cfg: Path, snap: Path) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        main(["--log-level", "WARNING", "sync", "--config", str(cfg), "--export", "vip", "--snapshot", str(snap)])
    return dict(json.loads(out.getvalue()))


def kind(r: dict[str, Any]) -> str | None:
    path = r["path"]
    if r["method"] == "DELETE" and "/contactTags/" in path:
        return "DELETE contactTags/{id}"
    if path.endswith("/contactTags"):
        return "GET contacts/{id}/contactTags"
    if path.endswith("/api/3/tags"):
        return "GET tags (tag ids, once a run)"
    if path.endswith("/api/3/contacts") and r["method"] == "GET":
        return "GET contacts (list scan pages or email lookups)"
    return None


def measure(n: int, scale: float, lookups: bool) -> dict[str, Any]:
    rng = random.Random(18)
    chosen = rng.sample(range(n), n // 20)
    leavers, changers = set(chosen[: n // 50]), set(chosen[n // 50:])
    with tempfile.TemporaryDirectory() as tmp, \
            SimulatorServer(SimSettings(api_keys=(KEY,), processing_delay=0.2, rate_scale=scale)) as server:
        folder = Path(tmp)
        cfg = config(folder, server.url, scale)
        simc = SimClient(server.url)
        sync(cfg, write_jsonl(folder / "r1.jsonl", (person(i) for i in range(n))))
        start = len(simc.requests())
        snap = write_jsonl(folder / "r2.jsonl", (person(i, i in changers) for i in range(n) if i not in leavers))
        patch = mock.patch.object(TagRemover, "_contact_ids", mock.AsyncMock(return_value={})) if lookups \
            else contextlib.nullcontext()
        t0 = time.monotonic()
        with patch:
            event = sync(cfg, snap)
        seconds = time.monotonic() - t0
        counted = Counter(k for r in simc.requests(start) if (k := kind(r)))
        counted["GET contacts (list scan pages or email lookups)"] -= 1  # the drift check is not the tag step
    requests = sum(counted.values())
    removed = event["tags"]["removed"]
    return {"strategy": "lookup per contact" if lookups else "as the export does it",
            "contacts": event["tags"]["contacts"], "removed": removed, "requests": requests,
            "per_removed_tag": round(requests / removed, 3),
            "by_kind": dict(counted), "wall_seconds": round(seconds, 1), "rate_scale": scale}


def main_() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=20_000)
    ap.add_argument("--rate-scale", type=float, default=20.0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    os.environ["BENCH_TAGS_KEY"] = KEY
    rows = [measure(args.profiles, args.rate_scale, lookups) for lookups in (False, True)]
    for row in rows:
        print(f"{row['strategy']:>22}: {row['contacts']:,} contacts, {row['removed']:,} tags removed, "
              f"{row['requests']:,} requests = {row['per_removed_tag']:.2f} per removed tag")
        for name, count in sorted(row["by_kind"].items()):
            print(f"{'':>24}{count:>7,}  {name}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"profiles": args.profiles, "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main_()
