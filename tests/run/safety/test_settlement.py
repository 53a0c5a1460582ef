"""Issue 8, must show 4: every delivery is settled, transient failures are retried, a bad key fails fast.

- The state store (S3 on moto, behind a TCP proxy this test cuts) fails while the worker dispatches
  events: no delivery stays held (each is put back with a delay and comes back), the worker keeps
  consuming once the store is reachable again, and every run completes exactly once.
- A 2-minute ActiveCampaign outage (the simulator answers 5xx to every request) in the middle of a run
  ends in exactly one ``export.completed``, with an exact list and the retries visible (``attempt``).
- A wrong key that ActiveCampaign answers with 200 and an HTML login page fails the run at once with
  ``activecampaign_auth``: not retried, never "succeeded".

Real parts only: the worker as a subprocess on RabbitMQ or moto's SQS, moto's S3, the simulator over HTTP.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from tests.e2e.conftest import (
    KEY_ENV,
    Broker,
    ExportSpec,
    Sim,
    WorkerProc,
    refreshed,
    run_id_for,
    wait_for,
    write_config,
)
from tests.run.safety.support import CuttableProxy, cli, direct_config
from worker.contacts.samples import make_segment, write_jsonl


@pytest.fixture(params=["rabbitmq", "sqs"])
def broker(request: pytest.FixtureRequest) -> Broker:
    if request.param == "rabbitmq":
        return request.getfixturevalue("rabbit")
    return request.getfixturevalue("make_sqs")()


@pytest.fixture
def s3_proxy(moto_server: str) -> Iterator[CuttableProxy]:
    """A cuttable proxy in front of moto (S3 traffic only: the worker gets it as AWS_ENDPOINT_URL_S3)."""
    host, port = moto_server.removeprefix("http://").rsplit(":", 1)
    proxy = CuttableProxy((host, int(port)))
    try:
        yield proxy
    finally:
        proxy.close()


def count(worker: WorkerProc, text: str) -> int:
    return worker.text().count(text)


# ------------------------------------------------------------------------------------------ state store down

def s3_state_config(tmp_path: Path, sim: Sim, broker: Broker, bucket: str, proxy: CuttableProxy,
                    monkeypatch: pytest.MonkeyPatch, exports: list[ExportSpec], worker: str) -> Path:
    """A worker config whose state store is ``s3://bucket/state``, reached through ``proxy``."""
    config = write_config(tmp_path, sim, broker, exports=exports, worker=worker)
    text = config.read_text()
    state_line = next(line for line in text.splitlines() if line.startswith("state_url"))
    config.write_text(text.replace(state_line, f'state_url = "s3://{bucket}/state"'))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", proxy.url)  # S3 only (not SQS); the worker process inherits it
    return config


def test_state_store_down_during_dispatch_settles_every_delivery(
        tmp_path: Path, sim: Sim, broker: Broker, workers: Callable[..., WorkerProc], s3_bucket: str,
        s3_proxy: CuttableProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """While S3 is unreachable: two refreshes (``remember_snapshot`` fails) and an ``export.requested``
    without a snapshot (``last_snapshot`` fails) — more deliveries than the worker takes at once."""
    exports = [ExportSpec(f"e{n}", n, segment=f"seg-{n}") for n in (1, 2, 3)]
    config = s3_state_config(tmp_path, sim, broker, s3_bucket, s3_proxy, monkeypatch, exports,
                             "concurrency = 2\nrun_retry_base_seconds = 1")
    segments = {n: make_segment(range(n * 1000, n * 1000 + 120)) for n in (1, 2, 3)}
    snaps = {n: write_jsonl(tmp_path / "snap" / f"s{n}.jsonl", seg.profiles) for n, seg in segments.items()}
    worker = workers(config)
    broker.publish(refreshed(snaps[1], refresh_id="r1", segment="seg-1"))
    broker.wait_completions(1, 90, check=worker.assert_alive)
    # r1's delivery settled too: its completion is out before the run's `published` record is written and
    # the delivery acked; cut before that, the record's write fails, the delivery comes back and, once the
    # store is back, its completion is published a second time (at least once, as the README says)
    broker.wait_idle(60, check=worker.assert_alive)

    s3_proxy.cut()
    for n in (2, 3):
        broker.publish(refreshed(snaps[n], refresh_id=f"r{n}", segment=f"seg-{n}"))
    broker.publish({"type": "export.requested", "version": 1, "id": str(uuid.uuid4()),
                    "occurred_at": "2026-11-30T12:00:00Z", "export": "e1"})

    def all_put_back_twice_and_none_held() -> bool:
        # every delivery failed and was put back at least twice, and now none is held or ready:
        # they wait for their delay, settled, instead of sitting unacked in the worker
        return count(worker, "handling a delivery failed (try 2)") >= 3 and broker.depth() == (0, 0)

    wait_for(all_put_back_twice_and_none_held, 90, "every delivery put back twice with none held",
             interval=0.3, check=worker.assert_alive)
    assert s3_proxy.refused > 0  # the store really was unreachable
    assert len(broker.completions()) == 1 and broker.read_dead() == []

    s3_proxy.restore()
    for n in (2, 3):
        broker.wait_completions(1, 120, check=worker.assert_alive, run_id=run_id_for(f"e{n}", f"r{n}"))
    requested = wait_for(lambda: [e for e in broker.completions(export="e1") if e["run_id"] != run_id_for("e1", "r1")],
                         120, "the requested run's export.completed", check=worker.assert_alive)
    broker.wait_idle(60, check=worker.assert_alive)
    assert len(requested) == 1 and requested[0]["counts"]["unchanged"] == len(segments[1].expected)
    for n in (1, 2, 3):
        sim.assert_list_exact(n, segments[n].expected)
    assert len(broker.completions()) == 4  # each run exactly once

    # still consuming: a new refresh after the outage is synced too
    later = make_segment(range(1000, 1110))
    broker.publish(refreshed(write_jsonl(tmp_path / "snap" / "s1b.jsonl", later.profiles), refresh_id="r1b",
                             segment="seg-1"))
    done = broker.wait_completions(1, 90, check=worker.assert_alive, run_id=run_id_for("e1", "r1b"))
    assert done[0]["counts"]["removed"] == 10
    broker.wait_idle(60, check=worker.assert_alive)
    sim.assert_list_exact(1, later.expected)
    assert len(broker.completions()) == 5 and broker.read_dead() == []
    assert count(worker, "could not ") == 0  # no settle was refused
    assert worker.alive()


def test_a_delivery_that_keeps_failing_is_dead_lettered_with_the_reason(
        tmp_path: Path, sim: Sim, rabbit: Broker, workers: Callable[..., WorkerProc], s3_bucket: str,
        s3_proxy: CuttableProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 stays unreachable: after max_receive_count (5) tries the delivery is dead-lettered with why,
    never held; the worker goes on consuming."""
    config = s3_state_config(tmp_path, sim, rabbit, s3_bucket, s3_proxy, monkeypatch, [ExportSpec("vip", 3)],
                             "run_retry_base_seconds = 1")
    worker = workers(config)
    seg = make_segment(range(80))
    snap = write_jsonl(tmp_path / "snap" / "all.jsonl", seg.profiles)
    s3_proxy.cut()
    rabbit.publish(refreshed(snap, refresh_id="r-doomed"))
    dead = wait_for(rabbit.read_dead, 120, "the delivery dead-lettered", interval=0.5, check=worker.assert_alive)
    assert [orjson.loads(body)["refresh_id"] for body, _ in dead] == ["r-doomed"]
    headers = dead[0][1]
    assert headers.get("x-segment-export-error-class") == "handling_failed", headers
    assert "failed 5 times" in str(headers.get("x-segment-export-error")), headers
    assert "StateError" in str(headers.get("x-segment-export-error")), headers
    assert count(worker, "handling a delivery failed (try 4)") == 1 and count(worker, "(try 5)") == 0
    rabbit.wait_idle(60, check=worker.assert_alive)

    s3_proxy.restore()
    rabbit.publish(refreshed(snap, refresh_id="r-after"))
    rabbit.wait_completions(1, 90, check=worker.assert_alive, run_id=run_id_for("vip", "r-after"))
    sim.assert_list_exact(3, seg.expected)
    assert worker.alive()


# ------------------------------------------------------------------------------------------ AC outage

@pytest.mark.slow
def test_two_minute_activecampaign_outage_ends_in_one_completion(
        tmp_path: Path, sim: Sim, rabbit: Broker, workers: Callable[..., WorkerProc]) -> None:
    # the worker's own budget is low, so the run is still sending when the outage starts
    config = write_config(tmp_path, sim, rabbit, worker="run_retry_base_seconds = 2\nmax_run_attempts = 8",
                          rate_scale=0.25)
    worker = workers(config)
    seg = make_segment(range(2000))
    snap = write_jsonl(tmp_path / "snap" / "all.jsonl", seg.profiles)
    rabbit.publish(refreshed(snap, refresh_id="r-outage"))
    wait_for(lambda: sim.bulk_posts(), 90, "the first accepted bulk import", check=worker.assert_alive)

    def alive_and_not_failed() -> None:
        worker.assert_alive()
        rabbit.read_events()
        assert [e for e in rabbit.events if e["type"] == "export.failed"] == [], "export.failed during the outage"

    sim.client.configure(error_rate=1.0)  # every request: 500/502/503, nothing applied
    began = time.monotonic()
    try:
        wait_for(lambda: time.monotonic() - began >= 120 and count(worker, "run failed transiently") >= 1, 400,
                 "two minutes of outage with the run retried", interval=1.0, check=alive_and_not_failed)
    finally:
        sim.client.configure(error_rate=0.0)
    assert rabbit.completions() == []  # nothing finished during the outage

    done = rabbit.wait_completions(1, 600, check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert len(rabbit.completions()) == 1 and [e for e in rabbit.events if e["type"] == "export.failed"] == []
    event = done[0]
    assert event["run_id"] == run_id_for("vip", "r-outage") and event["status"] == "succeeded"
    assert event.get("attempt", 1) > 1, event  # the retries are visible on the event ...
    assert '"attempt":2' in worker.text().replace(" ", "")  # ... and in the logs
    assert event["counts"]["added"] == len(seg.expected) and event["counts"]["failed"] == 0
    sim.assert_list_exact(3, seg.expected)
    assert [r for r in sim.client.requests() if r["status"] >= 500], "the outage answered nothing with 5xx"
    assert rabbit.read_dead() == [] and worker.alive()


@pytest.mark.slow
def test_an_outage_longer_than_every_attempt_fails_once_on_the_last_attempt(
        tmp_path: Path, sim: Sim, rabbit: Broker, workers: Callable[..., WorkerProc]) -> None:
    """ActiveCampaign down for good: attempt 1 is retried, attempt 2 (the last) publishes the only
    ``export.failed``, carrying its attempt number."""
    config = write_config(tmp_path, sim, rabbit, worker="run_retry_base_seconds = 1\nmax_run_attempts = 2")
    worker = workers(config)
    sim.client.configure(error_rate=1.0)
    rabbit.publish(refreshed(write_jsonl(tmp_path / "snap" / "all.jsonl", make_segment(range(50)).profiles),
                             refresh_id="r-down"))

    def failed() -> list[dict]:
        rabbit.read_events()
        return [e for e in rabbit.events if e["type"] == "export.failed"]

    got = wait_for(failed, 400, "export.failed after the last attempt", interval=0.5, check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert len(failed()) == 1 and rabbit.completions() == []
    assert got[0]["attempt"] == 2 and got[0]["run_id"] == run_id_for("vip", "r-down")
    assert got[0]["error"]["code"].startswith("activecampaign_"), got[0]["error"]
    assert count(worker, "run failed (transient)") == 2  # both attempts ran and failed
    assert count(worker, "run failed transiently") == 1 and count(worker, "attempt 2 of 2 follows") == 1
    assert sim.client.members(3) == {}
    assert rabbit.read_dead() == [] and worker.alive()


# ------------------------------------------------------------------------------------------ bad key, HTML 200

WRONG_KEY = "wrong-key-3f9a1c7e5b2d4f6a8c0e"


def test_bad_key_answered_with_html_fails_sync_at_once(tmp_path: Path, sim: Sim, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    sim.client.configure(bad_key_html=True)
    monkeypatch.setenv(KEY_ENV, WRONG_KEY)
    config = direct_config(tmp_path, sim)
    snap = write_jsonl(tmp_path / "snap" / "all.jsonl", make_segment(range(50)).profiles)
    rc, event, err = cli(capsys, "sync", "--config", config, "--export", "vip", "--snapshot", snap)
    assert rc == 1, (event, err[-2000:])
    assert event["type"] == "export.failed" and event["status"] == "failed"
    assert event["error"]["code"] == "activecampaign_auth"
    answered = sim.client.requests()
    assert len(answered) == 1 and answered[0]["status"] == 200, answered  # one HTML 200, not retried
    assert sim.client.members(3) == {}
    assert WRONG_KEY not in err and WRONG_KEY not in str(event)


def test_bad_key_answered_with_html_fails_the_worker_run_at_once(
        tmp_path: Path, sim: Sim, rabbit: Broker, workers: Callable[..., WorkerProc],
        monkeypatch: pytest.MonkeyPatch) -> None:
    sim.client.configure(bad_key_html=True)
    config = write_config(tmp_path, sim, rabbit, worker="run_retry_base_seconds = 1")
    config.write_text(config.read_text().replace(f'api_key_env = "{KEY_ENV}"', 'api_key_env = "SAFETY_WRONG_KEY"'))
    monkeypatch.setenv("SAFETY_WRONG_KEY", WRONG_KEY)
    worker = workers(config)
    snap = write_jsonl(tmp_path / "snap" / "all.jsonl", make_segment(range(50)).profiles)
    rabbit.publish(refreshed(snap, refresh_id="r-badkey"))

    def failed() -> list[dict]:
        rabbit.read_events()
        return [e for e in rabbit.events if e["type"] == "export.failed"]

    got = wait_for(failed, 90, "export.failed", check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    assert len(got) == 1 and rabbit.completions() == []
    assert got[0]["error"]["code"] == "activecampaign_auth" and got[0].get("attempt", 1) == 1
    assert count(worker, "run failed transiently") == 0  # permanent: no retry scheduled
    assert len(sim.client.requests()) == 1 and sim.client.members(3) == {}
    assert WRONG_KEY not in worker.text()
    assert rabbit.read_dead() == [] and worker.alive()
