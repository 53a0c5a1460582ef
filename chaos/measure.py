"""What a scenario left behind, measured the same way for every scenario: one row of the table.

Why measured from the outside: the row must be believable without trusting the worker. The list comes
from the simulator's own records, completion events from a queue bound to the events exchange, leftover
deliveries from the broker, crashes from the operating system, secrets from the raw text of every log,
event and metrics page. Each measurement is taken even when the scenario itself failed half-way (the row
then says what state it left), and a measurement that cannot be taken is reported, never guessed.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from dataclasses import dataclass, field

import orjson

from chaos.stage import SECRETS, Stage
from tests.e2e.conftest import wait_for
from worker.broker import ERROR_HEADER

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
SETTLE_SECONDS = 60.0  # how long held deliveries get to be settled once the scenario is over


@dataclass
class Row:
    scenario: str
    lost: int = -1
    exact: bool = False
    completions: dict[str, int] = field(default_factory=dict)  # run id -> completion events published
    stray_runs: int = 0  # completion events for runs the scenario never caused
    crashes: int = 0
    unsettled: int = -1
    unacked: int = 0
    secrets: int = -1
    failed_checks: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def one_completion_per_run(self) -> bool:
        return bool(self.completions) and all(n == 1 for n in self.completions.values()) and not self.stray_runs

    @property
    def clean(self) -> bool:
        return (self.lost == 0 and self.exact and self.one_completion_per_run and self.crashes == 0
                and self.unsettled == 0 and self.secrets == 0 and not self.failed_checks and not self.error)


def measure(stage: Stage, row: Row) -> Row:
    """Fill ``row`` from ``stage``; every step is independent so one failure does not hide the others."""
    metrics = _scrape_live(stage, row)
    row.crashes = sum(1 for w in stage.workers if not w.killed and not w.alive())
    for step in (_unsettled, _list, _completions, _dead_letters, _unmasked_emails):
        try:
            step(stage, row)
        except Exception as exc:
            row.failed_checks.append(f"could not measure {step.__name__.strip('_')}: {exc!r}"[:300])
    try:
        row.secrets = _secrets(stage, metrics)
    except Exception as exc:
        row.failed_checks.append(f"could not search for secrets: {exc!r}"[:300])
    row.failed_checks.extend(stage.failed_checks)
    row.notes.extend(stage.notes)
    return row


def _scrape_live(stage: Stage, row: Row) -> list[str]:
    pages = []
    for w in stage.workers:
        if not w.killed and w.alive():
            try:
                pages.append(stage.scrape(w))
            except OSError as exc:
                row.failed_checks.append(f"worker {w.pid}: /metrics unreachable: {exc}")
    return pages


def _unsettled(stage: Stage, row: Row) -> None:
    """Deliveries left: ready in the requests queue, held unacked, or waiting in a delay queue.

    While the workers live, the requests queue is given time to drain (ready and held both 0, read live
    from the quorum queue); then every worker is killed and the broker's passive queue_declare counts what
    is left: a delivery still held comes back as ready, so the difference from the count taken before the
    kill is what was unacked.
    """
    broker = stage.broker
    with contextlib.suppress(AssertionError):
        wait_for(lambda: broker.depth() == (0, 0), SETTLE_SECONDS, "the requests queue to settle", interval=1)
    before = broker.passive(broker.requests_queue)
    for w in stage.workers:
        if w.alive():
            stage.kill(w)
    wait_for(lambda: (broker.passive(broker.requests_queue) or (0, 0))[1] == 0, 60,
             "the killed workers' consumers to be gone", interval=0.5)
    after = broker.passive(broker.requests_queue)
    if before is None or after is None:
        raise AssertionError(f"the requests queue {broker.requests_queue} is gone")
    delayed = sum((broker.passive(q) or (0, 0))[0] for q in broker.topology().delay_queues())
    row.unacked = max(0, after[0] - before[0])
    row.unsettled = after[0] + delayed
    if delayed:
        row.notes.append(f"{delayed} request(s) still waiting in delay queues")


def _list(stage: Stage, row: Row) -> None:
    """Lost: expected people not subscribed, plus subscribed people not expected (leavers, self-unsubscribed).
    Exact: no one lost, and every subscribed person's names and phone are the segment's."""
    lost, mismatched_all = 0, 0
    for list_id, expected in stage.expected.items():
        mismatched = 0
        members = stage.sim.subscribed(list_id)
        missing = set(expected) - set(members)
        extra = set(members) - set(expected)
        lost += len(missing) + len(extra)
        if missing:
            row.notes.append(f"list {list_id}: {len(missing)} missing, e.g. {sorted(missing)[:2]}")
        if extra:
            row.notes.append(f"list {list_id}: {len(extra)} unexpected, e.g. {sorted(extra)[:2]}")
        for email, p in expected.items():
            m = members.get(email)
            if m and (m["first_name"], m["last_name"], m["phone"]) != (p["FirstName"], p["LastName"], p["Phone"]):
                mismatched += 1
        if mismatched:
            row.notes.append(f"list {list_id}: {mismatched} with other names or phone than the segment")
        mismatched_all += mismatched
    row.lost = lost
    row.exact = bool(stage.expected) and lost == 0 and mismatched_all == 0


def _completions(stage: Stage, row: Row) -> None:
    """Completion events per run the scenario caused; each must be one, saying what the scenario expects."""
    events = [e for e in stage.broker.read_events() if e["type"] in ("export.completed", "export.failed")]
    counts = Counter(e["run_id"] for e in events)
    row.completions = {run_id: counts.get(run_id, 0) for run_id in stage.runs}
    row.stray_runs = sum(n for run_id, n in counts.items() if run_id not in stage.runs)
    for run_id, want in stage.runs.items():
        for e in (e for e in events if e["run_id"] == run_id):
            got = e["status"] if e["type"] == "export.completed" else e.get("error", {}).get("code", "failed")
            if got != want:
                row.failed_checks.append(f"run {run_id}: {e['type']} {got!r}, expected {want!r}")


def _dead_letters(stage: Stage, row: Row) -> None:
    """The dead-letter queue holds exactly what the scenario expects (usually nothing), each with a reason."""
    dead = stage.broker.read_dead()
    got = Counter(body for body, _ in dead)
    if got != stage.expected_dead:
        unexpected = got - stage.expected_dead
        missing = stage.expected_dead - got
        row.failed_checks.append(f"dead-letter queue: {sum(unexpected.values())} unexpected "
                                 f"(e.g. {[b[:80] for b in list(unexpected)[:2]]}), {sum(missing.values())} missing")
    without_reason = sum(1 for _, headers in dead if not _text(headers.get(ERROR_HEADER)).strip())
    if without_reason:
        row.failed_checks.append(f"{without_reason} dead-lettered message(s) without a reason")


def _unmasked_emails(stage: Stage, row: Row) -> None:
    """Worker logs mask emails (``u***@example.com``); a whole address of a segment member is a leak."""
    people = {email for expected in stage.expected.values() for email in expected}
    found = {m.group().lower() for w in stage.workers for m in EMAIL.finditer(w.text())} & people
    if found:
        row.failed_checks.append(f"{len(found)} unmasked email address(es) of segment members in worker logs")


def _secrets(stage: Stage, metrics: list[str]) -> int:
    texts = [w.text() for w in stage.workers] + metrics
    texts += [orjson.dumps(e).decode() for e in stage.broker.events]
    texts += [" ".join(_text(v) for v in headers.values()) for _, headers in stage.broker.dead]
    return sum(t.count(secret) for t in texts for secret in SECRETS.values())


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
