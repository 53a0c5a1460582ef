"""Helpers for running the importer against the simulator: batches, a server per test, a recording run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from worker.activecampaign import AccountLimiter, ActiveCampaignClient, Batch, BatchOutcome, BulkAccepted
from worker.activecampaign.importer import BulkImporter
from worker.privacy.secret import Secret
from worker.sim import SimClient, SimSettings, SimulatorServer

LIST_ID = 3
RUN_TIMEOUT = 40.0


def make_batches(emails: Sequence[str], *, size: int = 250, list_id: int = LIST_ID) -> list[Batch]:
    batches = []
    for number, start in enumerate(range(0, len(emails), size)):
        chunk = list(emails[start : start + size])
        contacts: list[dict[str, Any]] = [
            {"email": e, "first_name": f"N{i}", "subscribe": [{"listid": list_id}]}
            for i, e in enumerate(chunk)
        ]
        batches.append(Batch(number=number, contacts=contacts, emails=[e.lower() for e in chunk]))
    return batches


async def feed(batches: Sequence[Batch], pulled: list[int] | None = None) -> AsyncIterator[Batch]:
    for batch in batches:
        if pulled is not None:
            pulled.append(batch.number)
        yield batch


@contextmanager
def simulator(**knobs: Any) -> Iterator[tuple[SimulatorServer, SimClient]]:
    with SimulatorServer(SimSettings(**knobs)) as server:
        yield server, SimClient(server.url)


def client_for(
    server: SimulatorServer, *, key: str = "sim-key", safety: float = 0.985, **options: Any
) -> ActiveCampaignClient:
    """A client whose limiter paces to the simulator's (scaled) budget, as the engine will configure it."""
    s = server.settings
    limiter = AccountLimiter(s.effective_rps, s.effective_bulk_per_minute, safety=safety)
    options.setdefault("retry_base", 0.05)
    options.setdefault("retry_cap", 0.5)
    return ActiveCampaignClient(server.url, Secret(key), limiter, **options)


@dataclass
class Recorder:
    """The engine's side of the callbacks: what was accepted and what became final."""

    accepted: dict[int, BulkAccepted] = field(default_factory=dict)
    emails: dict[int, list[str]] = field(default_factory=dict)
    outcomes: dict[int, BatchOutcome] = field(default_factory=dict)
    max_in_flight: int = 0

    async def on_accepted(self, batch: Batch, result: BulkAccepted) -> None:
        assert batch.number not in self.accepted, "a batch was accepted twice"
        self.accepted[batch.number] = result
        self.emails[batch.number] = [e for i, e in enumerate(batch.emails) if i not in result.rejected]
        self.max_in_flight = max(self.max_in_flight, len(self.accepted.keys() - self.outcomes.keys()))

    async def on_final(self, outcome: BatchOutcome) -> None:
        assert outcome.number not in self.outcomes, "a batch got two outcomes"
        self.outcomes[outcome.number] = outcome

    def resume_state(self) -> dict[int, tuple[str, list[str]]]:
        return {
            n: (a.batch_id, self.emails[n])
            for n, a in self.accepted.items()
            if a.batch_id is not None and n not in self.outcomes
        }


async def run_all(
    importer: BulkImporter, batches: Sequence[Batch], recorder: Recorder | None = None, **kwargs: Any
) -> Recorder:
    recorder = recorder or Recorder()
    async with asyncio.timeout(RUN_TIMEOUT):
        await importer.run(
            feed(batches), on_accepted=recorder.on_accepted, on_final=recorder.on_final, **kwargs
        )
    return recorder


def bulk_posts(sim: SimClient, status: int | None = None) -> list[dict[str, Any]]:
    return [
        r
        for r in sim.requests()
        if r["method"] == "POST"
        and r["path"] == "/api/3/import/bulk_import"
        and (status is None or r["status"] == status)
    ]


def other_tasks() -> set[asyncio.Task[Any]]:
    """Tasks still alive besides the test itself (and an in-loop test server's connection handlers):
    must be none after run() returns or raises."""
    return {
        t
        for t in asyncio.all_tasks()
        if t is not asyncio.current_task()
        and not t.done()
        and not getattr(t.get_coro(), "__qualname__", "").startswith("RequestHandler.")
    }
