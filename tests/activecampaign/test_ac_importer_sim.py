"""BulkImporter + client + limiter against the ActiveCampaign simulator over real HTTP."""

from __future__ import annotations

import asyncio
import logging

import pytest

from worker.activecampaign import SKIPPED_UNSUBSCRIBED, ActiveCampaignError, BulkImporter
from worker.activecampaign.importer import FAILED_NOT_IMPORTED

from .simulated import (
    LIST_ID,
    Recorder,
    bulk_posts,
    client_for,
    feed,
    make_batches,
    other_tasks,
    run_all,
    simulator,
)

FAST = {"rate_scale": 20.0, "processing_delay": 0.2, "seed": 11}


def emails(n: int, prefix: str = "user") -> list[str]:
    return [f"{prefix}{i}@example.com" for i in range(n)]


async def test_thousands_of_contacts_land_once_within_the_budget() -> None:
    people = emails(5000)
    batches = make_batches(people)
    with simulator(**FAST) as (server, sim):
        async with client_for(server) as client:
            importer = BulkImporter(client, LIST_ID, expected_delay=0.5)
            recorder = await run_all(importer, batches)
        members = sim.members(LIST_ID)
        requests = sim.requests()
    assert set(members) == set(people)
    assert all(m["status"] == "subscribed" for m in members.values())
    assert [r for r in requests if r["status"] == 429] == []
    assert len([r for r in requests if r["method"] == "POST" and r["status"] == 200]) == len(batches)
    assert sorted(recorder.outcomes) == [b.number for b in batches]
    assert all(o.status == "completed" and not o.failed and not o.skipped for o in recorder.outcomes.values())
    assert importer.polls <= 2 * len(batches)
    assert other_tasks() == set()


async def test_storms_errors_and_latency_still_land_everything_exactly_once() -> None:
    people = emails(3000)
    batches = make_batches(people)
    knobs = {**FAST, "error_rate": 0.1, "latency": 0.01, "storm_every": 0.6, "storm_duration": 0.2}
    with simulator(**knobs) as (server, sim):
        async with client_for(server) as client:
            recorder = await run_all(BulkImporter(client, LIST_ID, expected_delay=0.3), batches)
        members = sim.members(LIST_ID)
        stats = sim.stats()
        accepted_posts = bulk_posts(sim, 200)
    assert set(members) == set(people)
    assert len(accepted_posts) == len(batches)
    assert stats["errors_injected"] > 0 and stats["storm_limited"] + stats["rate_limited"] > 0
    assert all(not o.failed for o in recorder.outcomes.values()) and len(recorder.outcomes) == len(batches)


async def test_validation_drops_are_reported_in_their_batch() -> None:
    people = emails(20)
    people[3] = "broken@@example.com"
    people[7] = "no-domain@example"
    batches = make_batches(people, size=10)
    hopeless = make_batches(["x@", "(y)@example.com"], size=10)[0]
    hopeless.number = 2
    with simulator(**FAST) as (server, sim):
        async with client_for(server) as client:
            recorder = await run_all(BulkImporter(client, LIST_ID, expected_delay=0.3), [*batches, hopeless])
        members = sim.members(LIST_ID)
    good = set(people) - {people[3], people[7]}
    assert set(members) == good
    first = recorder.outcomes[0]
    assert first.status == "completed"
    assert first.failed == {
        people[3]: "Field 'email' incorrect format",
        people[7]: "Field 'email' incorrect format",
    }
    assert recorder.accepted[0].rejected == {
        3: "Field 'email' incorrect format",
        7: "Field 'email' incorrect format",
    }
    assert recorder.outcomes[1].failed == {}
    rejected = recorder.outcomes[2]
    assert (
        rejected.status == "rejected"
        and rejected.batch_id is None
        and set(rejected.failed) == {"x@", "(y)@example.com"}
    )
    assert 2 not in recorder.accepted


async def test_unsubscribed_contacts_are_skipped_never_resubscribed() -> None:
    people = emails(30)
    quitter, blocked = people[4], people[9]
    with simulator(**FAST) as (server, sim):
        sim.add_contact(quitter, lists={LIST_ID: "unsubscribed"})
        sim.exclude(blocked)
        async with client_for(server) as client:
            recorder = await run_all(
                BulkImporter(client, LIST_ID, expected_delay=0.3), make_batches(people, size=15)
            )
        members = sim.members(LIST_ID)
        stats = sim.stats()
    outcome = recorder.outcomes[0]
    assert outcome.skipped == {quitter: SKIPPED_UNSUBSCRIBED}
    assert outcome.failed == {blocked: FAILED_NOT_IMPORTED}
    assert recorder.outcomes[1].failed == {} and recorder.outcomes[1].skipped == {}
    assert members[quitter]["status"] == "unsubscribed"
    assert blocked not in members
    assert stats["resubscribed"] == 0


async def test_reason_lookups_are_capped_per_run() -> None:
    people = emails(10)
    with simulator(**FAST) as (server, sim):
        for email in people[:6]:
            sim.exclude(email)
        async with client_for(server) as client:
            recorder = await run_all(
                BulkImporter(client, LIST_ID, expected_delay=0.3, max_reason_lookups=2), make_batches(people)
            )
        lookups = [r for r in sim.requests() if r["path"] == "/api/3/contacts"]
    assert recorder.outcomes[0].failed == {e: FAILED_NOT_IMPORTED for e in people[:6]}
    assert len(lookups) == 2


async def test_failed_batches_fail_every_contact_with_the_status() -> None:
    with simulator(**FAST, batch_failure_rate=1.0) as (server, _sim):
        async with client_for(server) as client:
            recorder = await run_all(
                BulkImporter(client, LIST_ID, expected_delay=0.3), make_batches(emails(5))
            )
    outcome = recorder.outcomes[0]
    assert outcome.status == "failed" and set(outcome.failed) == set(emails(5))
    assert all("failed" in reason for reason in outcome.failed.values())


async def test_resume_polls_accepted_batches_without_resending() -> None:
    people = emails(2000)
    batches = make_batches(people)
    with simulator(**{**FAST, "processing_delay": 1.0}) as (server, sim):
        first = Recorder()
        three_accepted = asyncio.Event()

        async def on_accepted(batch, result) -> None:  # type: ignore[no-untyped-def]
            await first.on_accepted(batch, result)
            if len(first.accepted) >= 3:
                three_accepted.set()

        async with client_for(server) as client:
            importer = BulkImporter(client, LIST_ID, expected_delay=5.0, max_concurrent_posts=1)
            run = asyncio.create_task(
                importer.run(feed(batches), on_accepted=on_accepted, on_final=first.on_final)
            )
            async with asyncio.timeout(20):
                await three_accepted.wait()
            run.cancel()  # the worker died mid-run
            with pytest.raises(asyncio.CancelledError):
                await run
            assert other_tasks() == set()
            posts_before = len(bulk_posts(sim))
            resume = first.resume_state()
            assert len(resume) >= 3 and not first.outcomes

            second = await run_all(
                BulkImporter(client, LIST_ID, expected_delay=0.5), batches, accepted=resume
            )
        members = sim.members(LIST_ID)
        posts = bulk_posts(sim, 200)
        posts_after = len(bulk_posts(sim))
    assert set(members) == set(people)
    # the accepted batches were never sent again; only a POST in flight at the cancel (which AC, like the
    # simulator, completes although its client is gone) may be sent twice
    assert len(batches) <= len(posts) <= len(batches) + 1
    assert posts_after - posts_before <= len(batches) - len(resume)
    assert sorted(second.outcomes) == [b.number for b in batches]
    assert set(second.accepted) == {b.number for b in batches} - set(resume)


async def test_backpressure_bounds_unconfirmed_batches() -> None:
    batches = make_batches(emails(200), size=20)
    pulled: list[int] = []
    recorder = Recorder()
    with simulator(**FAST) as (server, _sim):
        async with client_for(server) as client:
            importer = BulkImporter(client, LIST_ID, max_unconfirmed=2, expected_delay=0.2)
            highest_gap = 0

            async def on_final(outcome) -> None:  # type: ignore[no-untyped-def]
                nonlocal highest_gap
                highest_gap = max(highest_gap, len(pulled) - len(recorder.outcomes))
                await recorder.on_final(outcome)

            async with asyncio.timeout(30):
                await importer.run(feed(batches, pulled), on_accepted=recorder.on_accepted, on_final=on_final)
    assert len(recorder.outcomes) == len(batches)
    assert recorder.max_in_flight <= 2
    assert highest_gap <= 2


async def test_errors_propagate_and_the_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key = "sim-key-9d8c7b-TOP-SECRET"
    with simulator(**FAST, api_keys=(key,)) as (server, sim):
        async with client_for(server, key="wrong-key-1a2b3c-ALSO-SECRET") as client:
            with pytest.raises(ActiveCampaignError) as auth:
                await client.check_key()
        assert auth.value.code == "auth"

        sim.configure(error_rate=1.0)
        async with client_for(server, key=key, max_retries=2) as client:
            with pytest.raises(ActiveCampaignError) as down:
                await run_all(BulkImporter(client, LIST_ID), make_batches(emails(600)))
            assert other_tasks() == set()

        sim.configure(error_rate=0.0)
        async with client_for(server, key=key) as client:

            async def explode(batch, result) -> None:  # type: ignore[no-untyped-def]
                raise RuntimeError("state store unavailable")

            with pytest.raises(RuntimeError, match="state store unavailable"):
                async with asyncio.timeout(20):
                    await BulkImporter(client, LIST_ID).run(
                        feed(make_batches(emails(600))), on_accepted=explode, on_final=Recorder().on_final
                    )
            assert other_tasks() == set()
    assert down.value.code == "server_error"
    for text in (str(auth.value), repr(auth.value), str(down.value), repr(down.value), caplog.text):
        assert key not in text and "wrong-key-1a2b3c-ALSO-SECRET" not in text
