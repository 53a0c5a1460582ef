"""Snapshots damaged late: each run fails (``snapshot_unreadable``) before any request; the list stays.

After a first sync of the whole segment, three refreshes whose snapshot is damaged near its end, each a
way a real export breaks: a CSV with an unterminated quote on the row at 85% (the lenient reader used to
swallow every later row into one field, and the run unsubscribed them), a JSON Lines file cut mid-line
(an upload cut short), and a gzip part cut before its end. Each must end in one ``export.failed`` with
``snapshot_unreadable`` naming the part and the line (or the truncation), with no request that changes
ActiveCampaign (the whole snapshot is read before the first one), and the list must be the first sync's.
"""

from __future__ import annotations

import csv
import gzip
import io

import orjson

from chaos.stage import Stage
from worker.contacts.samples import make_segment
from worker.run.runbook import run_id_for

FIELDS = ["EmailAddress", "FirstName", "LastName", "Phone"]


def _csv_open_quote(profiles: list[dict], row: int) -> bytes:
    """The profiles as CSV, data row ``row`` (0-based) cut to 'email,"FirstName': a quote nothing closes."""
    out = io.StringIO(newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(FIELDS)
    w.writerows([str(p.get(f, "")) for f in FIELDS] for p in profiles)
    lines = out.getvalue().split("\n")
    p = profiles[row]
    lines[row + 1] = f'{p["EmailAddress"]},"{p["FirstName"]}'
    return "\n".join(lines).encode()


def damaged_snapshots(stage: Stage) -> None:
    n = stage.size.profiles
    seg = make_segment(range(n), invalid_rate=0.005, seed=23)
    stage.expected[3] = seg.expected
    stage.start_worker(stage.config())
    stage.wait_run(stage.publish_refresh(stage.put_snapshot("full", seg.profiles), "full-1"))
    jsonl = b"".join(orjson.dumps(p) + b"\n" for p in seg.profiles)
    row = int(len(seg.profiles) * 0.85)
    damaged = {
        "open-quote.csv": (_csv_open_quote(seg.profiles, row), "csv", f"line {row + 2}"),
        "cut-mid-line.jsonl": (jsonl[: len(jsonl) - 17], "jsonl", f"line {len(seg.profiles)} is not JSON"),
        "cut.jsonl.gz": (gzip.compress(jsonl)[:-200], "jsonl", "is truncated"),
    }
    for name, (body, fmt, says) in damaged.items():
        key = f"snapshots/{name}"
        stage.s3.put_object(Bucket=stage.bucket, Key=key, Body=body)
        event = stage.refreshed(f"s3://{stage.bucket}/{key}", f"damaged-{name}")
        event["snapshot"]["format"] = fmt
        run_id = run_id_for("vip", f"damaged-{name}")
        stage.runs[run_id] = "snapshot_unreadable"
        before = len(stage.sim.client.requests())
        stage.broker.publish(event)
        failed = stage.wait_run(run_id)
        writes = [r for r in stage.sim.client.requests()[before:] if r["method"] != "GET"]
        stage.check(not writes, f"{name}: {len(writes)} writing request(s) reached ActiveCampaign")
        message = failed.get("error", {}).get("message", "")
        stage.check(key in message and says in message, f"{name}: the error does not name the part and "
                    f"{says!r}: {message[:300]!r}")
        stage.note(f"{name}: {failed['type']} {failed.get('error', {}).get('code')} ({says}), {len(writes)} writes")
