"""The table ``make chaos`` prints: one row per scenario, in Markdown so it pastes into a README as is."""

from __future__ import annotations

from chaos.measure import Row

HEADER = ("scenario", "contacts lost", "list exact", "completion events per run", "worker crashes",
          "deliveries left unsettled", "secrets in output", "checks", "time")


def _completions(row: Row) -> str:
    counts = sorted(set(row.completions.values()))
    if not row.completions:
        text = "no run"
    elif counts == [1]:
        text = "1" if len(row.completions) == 1 else f"1 (each of {len(row.completions)} runs)"
    else:
        text = ", ".join(str(n) for n in row.completions.values())
    return text + (f" + {row.stray_runs} stray" if row.stray_runs else "")


def cells(row: Row) -> tuple[str, ...]:
    unsettled = "?" if row.unsettled < 0 else str(row.unsettled)
    if row.unacked:
        unsettled += f" ({row.unacked} unacked)"
    checks = "ok" if not row.failed_checks and not row.error else "; ".join(
        ([row.error] if row.error else []) + row.failed_checks)
    return (row.scenario, "?" if row.lost < 0 else str(row.lost), "yes" if row.exact else "NO",
            _completions(row), str(row.crashes), unsettled, "?" if row.secrets < 0 else str(row.secrets),
            checks, f"{row.seconds:.0f} s")


def render(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join("---" for _ in HEADER) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def render_notes(rows: list[Row]) -> str:
    """What each scenario saw (kill points, faults met, counts): the evidence behind the row."""
    return "\n".join(f"- {r.scenario}: " + "; ".join(r.notes) for r in rows if r.notes)
