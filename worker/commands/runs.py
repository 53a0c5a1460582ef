"""``segment-export runs [--export NAME] [--since 7d] [--json]`` and ``runs show RUN_ID``: recent runs.

A thin call to ``worker.run.history``: a table (or ``--json``, schema ``schemas/runs.json``) of the runs
the state store holds, newest first: run id, refresh, status, counts, duration, attempt, error and the
failure report's URI. ``runs show RUN_ID`` adds the run's most frequent failure reasons.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from worker.commands import common

COLUMNS = ("finished", "export", "run", "refresh", "status", "added", "updated", "removed", "failed", "skipped",
           "seconds", "attempt", "error", "failures")


def add_options(p: argparse.ArgumentParser) -> None:
    common.add_config_option(p)
    p.add_argument("--export", help="only this export (default: every export in the config)")
    p.add_argument("--since", default="7d", help="runs that ended (or moved) this long ago or less: 7d, 12h, 30m "
                                                 "(default 7d)")
    p.add_argument("--json", action="store_true", help="JSON (schemas/runs.json) instead of a table")
    p.add_argument("action", nargs="?", choices=["show"], help="show one run (with its top failure reasons)")
    p.add_argument("run_id", nargs="?", help="the run to show")


def run(args: argparse.Namespace) -> int:
    from worker.run import history

    config = common.load(args)
    exports = [config.export(args.export).name] if args.export else sorted(config.exports)
    store = common.open_state(config)
    if args.action == "show":
        if not args.run_id:
            return common.fail("runs show needs a RUN_ID")
        record = history.find_run(store, exports, args.run_id)
        if record is None:
            return common.fail(f"no run {args.run_id} in the state store (exports: {', '.join(exports)})",
                               common.EXIT_FAILED)
        total, reasons = history.failure_reasons(store, record)
        out: dict[str, Any] = {"runs": [record.as_dict()], "failures": total, "failure_reasons": reasons}
        if args.json:
            common.print_json(out)
        else:
            sys.stdout.write(_show(out))
        return common.EXIT_OK
    try:
        since = history.parse_since(args.since)
    except ValueError as exc:
        return common.fail(str(exc))
    rows = [r.as_dict() for r in history.list_runs(store, exports, since_seconds=since)]
    if args.json:
        common.print_json({"runs": rows})
    else:
        sys.stdout.write(_table(rows))
    return common.EXIT_OK


def _cells(r: dict[str, Any]) -> list[str]:
    """One row; "-" where the run has no value (an unfinished run has only its id and status)."""
    counts = r.get("counts") or {}
    cells = [(r.get("finished_at") or r["updated_at"])[:19].replace("T", " "), r["export"], r["run_id"],
             r.get("refresh_id", ""), r["status"],
             *(str(counts[k]) if k in counts else "" for k in ("added", "updated", "removed", "failed", "skipped")),
             f"{r['duration_seconds']:.0f}" if "duration_seconds" in r else "", str(r.get("attempt", "")),
             (r.get("error") or {}).get("code", ""), r.get("failures_uri", "")]
    return [c or "-" for c in cells]


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no runs in that time\n"
    cells = [list(COLUMNS), *(_cells(r) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n" for row in cells)


def _show(out: dict[str, Any]) -> str:
    r = out["runs"][0]
    lines = [f"{k}: {v}" for k, v in r.items() if k not in ("counts", "error", "drift", "tags")]
    for key in ("counts", "drift", "tags"):
        if key in r:
            lines.append(f"{key}: " + ", ".join(f"{k} {v}" for k, v in r[key].items()))
    if "error" in r:
        lines.append(f"error: {r['error']['code']}: {r['error']['message']}")
    lines.append(f"failure records: {out['failures']}")
    lines += [f"  {x['count']:>8,}  {x['stage']}: {x['reason']}" for x in out["failure_reasons"]]
    return "\n".join(lines) + "\n"
