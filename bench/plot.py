"""Draw the benchmark figures in bench/results/*.json as two pictures (needs the `bench` extra: matplotlib).

    python bench/plot.py            # writes bench/throughput.png and bench/memory.png

- throughput.png: contacts accepted by (simulated) ActiveCampaign over time during each full sync,
  against the account's ceiling (100 bulk requests of 250 contacts a minute, times the run's
  --rate-scale) and the per-contact baseline measured in the same run;
- memory.png: peak RSS of the process against the number of profiles, for the full sync and the 1%
  refresh end to end and for the pipeline (plan + commit without ActiveCampaign), with the budgets
  of issue 10 (256 MiB at a million profiles, 1 GiB at ten million).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MIB = 2**20


def load(folder: Path) -> list[dict[str, Any]]:
    results = []
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        if "profiles" in data and "pipeline_cold" in data:
            results.append(data)
    return sorted(results, key=lambda r: r["profiles"])


def label(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n // 1000}k"


def throughput(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib.pyplot as plt

    runs = [r for r in results if "full" in r]
    if not runs:
        return
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4.5), squeeze=False)
    for ax, r in zip(axes[0], runs, strict=True):
        full = r["full"]
        xs = [t / 60 for t, _ in full["timeline"]]
        ys = [c for _, c in full["timeline"]]
        ax.plot(xs, ys, label=f"segment-export ({full['share_of_ceiling']:.0%} of the ceiling end to end)",
                linewidth=2)
        end = max(xs[-1], full["wall_seconds"] / 60)
        ceiling = full["ceiling_per_minute"]
        ax.plot([0, end], [0, ceiling * end], "--", color="grey", label=f"ceiling: {ceiling:,.0f} contacts/min")
        base = r.get("baseline", {}).get("contacts_per_minute")
        if base:
            ax.plot([0, end], [0, base * end], ":", color="red",
                    label=f"per-contact API: {base:,.0f} contacts/min")
        ax.set_xlim(0, end)
        ax.set_ylim(0, max(ys[-1], ceiling * end) * 1.05)
        ax.set_title(f"{label(r['profiles'])} profiles, --rate-scale {full['rate_scale']:g}")
        ax.set_xlabel("minutes since the sync started")
        ax.set_ylabel("contacts accepted")
        ax.ticklabel_format(axis="y", style="plain")
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def memory(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = [("full sync (sync process)", lambda r: r.get("full", {}).get("peak_rss"), "o-"),
              ("1% refresh (sync process)", lambda r: r.get("refresh", {}).get("peak_rss"), "s-"),
              ("pipeline + commit, cold", lambda r: r["pipeline_cold"]["peak_rss"], "^--"),
              ("pipeline + commit, 1% refresh", lambda r: r["pipeline_refresh"]["peak_rss"], "v--")]
    for name, get, style in series:
        points = [(r["profiles"], get(r) / MIB) for r in results if get(r)]
        if points:
            ax.plot([p for p, _ in points], [m for _, m in points], style, label=name)
    ax.scatter([1e6, 1e7], [256, 1024], marker="_", s=600, color="red", label="budget (issue 10)")
    ax.set_xscale("log")
    ax.set_xlabel("profiles")
    ax.set_ylabel("peak RSS (MiB)")
    ax.set_ylim(0, 1100)
    ax.set_title("Memory against size")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results"
    results = load(folder)
    if not results:
        raise SystemExit(f"no results in {folder}: run bench/sync_bench.py --json {folder}/NAME.json first")
    import matplotlib

    matplotlib.use("Agg")
    throughput(results, HERE / "throughput.png")
    memory(results, HERE / "memory.png")
    print(f"wrote {HERE / 'throughput.png'} and {HERE / 'memory.png'} from {len(results)} result files")


if __name__ == "__main__":
    main()
