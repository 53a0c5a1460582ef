"""Pipeline throughput with custom fields and tags: what typed conversions cost on the hot path.

    python bench/fields_bench.py --profiles 100000

Prints profiles per second (CPU time, one core) of read -> map -> validate -> dedupe -> diff -> batch ->
encode the plan, for the same snapshot mapped two ways: no custom fields (as bench/sync_bench.py), and
six typed custom fields (text, number, date with a day-first format, datetime, dropdown, listbox) plus
tags from a profile field. Values come in the assorted forms profiles hold (ISO and day-first dates,
epoch seconds, numbers as text, lists and delimited strings).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from worker.contacts.fields import resolve_fields  # noqa: E402
from worker.contacts.mapping import Mapper  # noqa: E402
from worker.contacts.plan import Planner, tune_gc  # noqa: E402
from worker.contacts.samples import person, write_jsonl  # noqa: E402
from worker.run.runbook import encode_part  # noqa: E402
from worker.settings import parse_config  # noqa: E402
from worker.snapshot import read_pages  # noqa: E402

ACCOUNT = [
    {"id": "1", "title": "Nickname", "perstag": "NICKNAME", "type": "text"},
    {"id": "2", "title": "Score", "perstag": "SCORE", "type": "number"},
    {"id": "3", "title": "Birthday", "perstag": "BIRTHDAY", "type": "date"},
    {"id": "4", "title": "Last seen", "perstag": "LAST_SEEN", "type": "datetime"},
    {"id": "5", "title": "Tier", "perstag": "TIER", "type": "dropdown",
     "option_values": ["Bronze", "Silver", "Gold", "Platinum"]},
    {"id": "6", "title": "Colours", "perstag": "COLOURS", "type": "listbox", "option_values": ["Red", "Green", "Blue"]},
]
TYPED = {"NICKNAME": "Nick", "SCORE": "Score", "BIRTHDAY": {"field": "Birthday", "date_format": "DD/MM/YYYY"},
         "LAST_SEEN": "LastSeen", "TIER": "LoyaltyTier", "COLOURS": "Colours"}


def profile(i: int) -> dict[str, Any]:
    p = person(i)
    day, month, year = 1 + i % 28, 1 + i % 12, 1960 + i % 45
    p.update({
        "Nick": f"nick{i}",
        "Score": [i, f"{i}.5", str(i)][i % 3],
        "Birthday": f"{day:02d}/{month:02d}/{year}" if i % 2 else f"{year}-{month:02d}-{day:02d}",
        "LastSeen": 1_700_000_000 + i if i % 2 else f"2024-03-{1 + i % 28:02d}T10:{i % 60:02d}:00+02:00",
        "Colours": ["Red", "blue"] if i % 3 else "Green, Red",
        "Interests": ["golf", "tennis"] if i % 2 else "sailing;chess",
    })
    return p


def export(**over: Any):
    raw = {"segment": "s", "connection": "c", "list_id": 3,
           "mapping": {"email": "EmailAddress", "first_name": "FirstName", "last_name": "LastName", "phone": "Phone"}}
    raw.update(over)
    cfg = parse_config({"connections": {"c": {"hostname": "a.api-us1.com", "api_key_env": "X",
                                              "data_privacy_consent": True}}, "exports": {"b": raw}})
    return cfg.exports["b"]


def rate(snapshot: Path, mapper: Mapper) -> float:
    planner = Planner(mapper, {})
    t0 = time.process_time()
    for part in planner.plan(read_pages(str(snapshot), page_size=5000)):
        encode_part(part)
    cpu = time.process_time() - t0
    assert planner.totals.invalid == 0, planner.totals
    return planner.totals.profiles / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3, help="best of N passes")
    args = ap.parse_args()
    tune_gc()
    with tempfile.TemporaryDirectory(prefix="segment-export-fields-bench-") as tmp:
        snap = write_jsonl(Path(tmp) / "snap.jsonl", (profile(i) for i in range(args.profiles)))
        typed = export(fields=TYPED, tags=["vip"], tag_field="Interests", tag_separator=";")
        resolved, problems = resolve_fields(typed, ACCOUNT)
        assert not problems, problems
        cases = [("no custom fields", Mapper(export())),
                 ("6 typed fields + tags from a field", Mapper(typed, resolved=resolved))]
        print(f"pipeline, {args.profiles:,} profiles, one core (best of {args.repeat}):")
        for name, mapper in cases:
            best = max(rate(snap, mapper) for _ in range(args.repeat))
            print(f"  {name:40s} {best:>10,.0f} profiles/s")


if __name__ == "__main__":
    main()
