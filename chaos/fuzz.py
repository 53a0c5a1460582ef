"""The long run of the property-based (fuzz) tests: the same properties as ``make test``, many more examples.

The tests marked ``fuzz`` (``tests/locations``: no accepted location resolves outside its prefix, whatever
the encoding; ``tests/snapshot/test_snapshot_fuzz.py``: for any bytes a reader yields exactly the rows a
strict parser finds, or raises) draw ``short × SEGMENT_EXPORT_FUZZ_SCALE`` examples each (``tests/fuzzing.py``).
They run in a pytest subprocess with hypothesis' statistics, and the examples each one really ran are read
from those statistics, so the table reports what was tried, not what was asked for.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ("tests/locations", "tests/snapshot/test_snapshot_fuzz.py")


@dataclass
class FuzzRow:
    test: str
    examples: int
    passed: bool


def run_fuzz(scale: int, jobs: int = 2) -> tuple[list[FuzzRow], float, str]:
    """Run the fuzz tests at ``scale``; (rows, seconds, pytest's output)."""
    started = time.monotonic()
    env = dict(os.environ, SEGMENT_EXPORT_FUZZ_SCALE=str(scale))
    cmd = [sys.executable, "-m", "pytest", "-m", "fuzz", "-q", "-p", "no:cacheprovider", "-rA",
           "--hypothesis-show-statistics", *(["-n", str(jobs)] if jobs > 1 else []), *TARGETS]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    text = out.stdout + out.stderr
    return parse(text), time.monotonic() - started, text


def parse(text: str) -> list[FuzzRow]:
    """Per test: the passing examples of every phase (hypothesis' statistics) and whether it passed."""
    rows: dict[str, FuzzRow] = {}
    current = ""
    for line in text.splitlines():
        head = re.match(r"^(tests/\S+::\S+):$", line.strip())
        if head:
            current = head.group(1)
            rows.setdefault(current, FuzzRow(current, 0, False))
            continue
        count = re.search(r"- (\d+) passing, (\d+) failing", line)
        if count and current:
            rows[current].examples += int(count.group(1))
    for line in text.splitlines():
        result = re.match(r"^(PASSED|FAILED|ERROR) (tests/\S+)", line)
        if result and result.group(2) in rows:
            rows[result.group(2)].passed = result.group(1) == "PASSED"
    return sorted(rows.values(), key=lambda r: r.test)


def render(rows: list[FuzzRow], scale: int, seconds: float) -> str:
    lines = [f"fuzz (hypothesis; SEGMENT_EXPORT_FUZZ_SCALE={scale}; {seconds:.0f} s)", "",
             "| property test | examples | result |", "|---|---|---|"]
    lines += [f"| `{r.test}` | {r.examples:,} | {'ok' if r.passed else 'FAILED'} |" for r in rows]
    return "\n".join(lines)
