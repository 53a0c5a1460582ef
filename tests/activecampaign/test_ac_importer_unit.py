"""BulkImporter's rarer paths, against a scripted server (the simulator never answers these)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from worker.activecampaign import ActiveCampaignClient, ActiveCampaignError, Batch, BulkImporter
from worker.activecampaign.importer import FAILED_NOT_IMPORTED
from worker.privacy.secret import Secret

from .scripted import FakeLimiter, Reply, ScriptedAC
from .simulated import Recorder, feed, make_batches, other_tasks, run_all

ACCEPTED = {"success": 1, "queued_contacts": 2, "batchId": "b-1", "message": "Contact import queued"}


@pytest.fixture
async def ac() -> AsyncIterator[ScriptedAC]:
    async with ScriptedAC() as server:
        yield server


def importer_for(ac: ScriptedAC, **options: float) -> BulkImporter:
    client = ActiveCampaignClient(ac.url, Secret("k"), FakeLimiter(), retry_base=0.001, rng=random.Random(3))
    return BulkImporter(client, 3, expected_delay=0.01, **options)  # type: ignore[arg-type]


async def test_an_empty_run_sends_nothing(ac: ScriptedAC) -> None:
    importer = importer_for(ac)
    async with importer.client:
        recorder = await run_all(importer, [])
    assert recorder.outcomes == {} and ac.requests == [] and other_tasks() == set()


async def test_interrupted_batches_fail_every_contact(ac: ScriptedAC) -> None:
    ac.on("POST", "import/bulk_import", Reply(200, ACCEPTED))
    ac.on("GET", "import/info", Reply(200, {"status": False}), Reply(200, {"status": "interrupted"}))
    importer = importer_for(ac)
    async with importer.client:
        recorder = await run_all(importer, make_batches(["a@example.com", "b@example.com"]))
    outcome = recorder.outcomes[0]
    assert outcome.status == "interrupted"
    assert set(outcome.failed) == {"a@example.com", "b@example.com"}
    assert "interrupted" in outcome.failed["a@example.com"]


async def test_failure_emails_match_case_insensitively_and_strangers_are_ignored(ac: ScriptedAC) -> None:
    ac.on("POST", "import/bulk_import", Reply(200, ACCEPTED))
    ac.on(
        "GET", "import/info", Reply(200, {"status": "completed", "failure": ["A@Example.com", "z@other.com"]})
    )
    ac.on("GET", "contacts", Reply(200, {"contacts": [], "meta": {"total": "0"}}))
    importer = importer_for(ac)
    async with importer.client:
        recorder = await run_all(importer, make_batches(["a@example.com", "b@example.com"]))
    assert recorder.outcomes[0].failed == {"a@example.com": FAILED_NOT_IMPORTED}
    assert len(ac.sent("GET", "contacts")) == 1


async def test_a_batch_ac_does_not_know_ends_unknown_after_a_few_polls(ac: ScriptedAC) -> None:
    ac.on("POST", "import/bulk_import", Reply(200, ACCEPTED))
    ac.on("GET", "import/info", Reply(404, {"message": "No Result found for Import with id b-1"}))
    importer = importer_for(ac)
    async with importer.client:
        recorder = await run_all(importer, make_batches(["a@example.com"]))
    assert recorder.outcomes[0].status == "unknown" and set(recorder.outcomes[0].failed) == {"a@example.com"}
    assert len(ac.sent("GET", "import/info")) == 3


async def test_a_batch_that_never_finishes_fails_the_run_after_the_confirm_timeout(ac: ScriptedAC) -> None:
    ac.on("POST", "import/bulk_import", Reply(200, ACCEPTED))
    ac.on("GET", "import/info", Reply(200, {"status": "waiting"}))
    importer = importer_for(ac, confirm_timeout=0.05)
    async with importer.client:
        with pytest.raises(ActiveCampaignError) as caught:
            await run_all(importer, make_batches(["a@example.com"]))
    assert caught.value.code == "timeout" and other_tasks() == set()


async def test_a_malformed_batch_is_a_plain_error_not_a_group(ac: ScriptedAC) -> None:
    importer = importer_for(ac)
    bad = Batch(number=0, contacts=[{"email": "a@example.com"}], emails=[])
    async with importer.client:
        with pytest.raises(ValueError, match="contacts but 0 emails"):
            async with asyncio.timeout(5):
                await importer.run(
                    feed([bad]), on_accepted=Recorder().on_accepted, on_final=Recorder().on_final
                )
    assert other_tasks() == set()


async def test_resumed_batches_are_polled_only_and_keep_their_validation_drops(ac: ScriptedAC) -> None:
    ac.on("GET", "import/info", Reply(200, {"status": "completed", "failure": []}))
    emails = ["a@example.com", "bad@@example.com", "c@example.com"]
    reason = "Field 'email' incorrect format"
    accepted = {0: ("b-0", emails, {"1": reason}), 1: ("b-1", ["d@example.com"])}
    importer = importer_for(ac)
    async with importer.client:
        recorder = await run_all(
            importer, make_batches([*emails, "d@example.com"], size=3), accepted=accepted
        )
    assert ac.sent("POST", "import/bulk_import") == []
    assert recorder.accepted == {}
    assert recorder.outcomes[0].failed == {"bad@@example.com": reason}
    assert recorder.outcomes[1].failed == {} and recorder.outcomes[1].status == "completed"
    assert sorted(r["query"]["batchId"] for r in ac.sent("GET", "import/info")) == ["b-0", "b-1"]
