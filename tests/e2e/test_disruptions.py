"""Must-shows 6 and 7: SIGTERM during a run, and the RabbitMQ connection cut mid-run.

SIGTERM: the worker stops at a checkpoint, hands the run on (a continuation) and exits 0 within its grace
period; a new worker finishes the run: one export.completed, the list exact, nothing sent twice.
Connection cut (``rabbitmqctl close_connection`` on the worker's own connections; the shared node is never
restarted): the same worker process reconnects and the run completes, with exactly one export.completed.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    amqp_connections_of,
    close_amqp_connections,
    records,
    refreshed,
    run_id_for,
    wait_for,
    write_config,
)
from worker.contacts.samples import make_segment, write_jsonl

GRACE = 8


@pytest.mark.parametrize("kind", ["rabbitmq", "sqs"])
def test_sigterm_mid_run_exits_0_and_next_worker_finishes(tmp_path, sim, kind, request, workers):
    broker = request.getfixturevalue("rabbit") if kind == "rabbitmq" else request.getfixturevalue("make_sqs")()
    seg = make_segment(range(20_000), seed=31)
    snap = write_jsonl(tmp_path / "snap.jsonl", seg.profiles)
    # ~24 s of bulk imports at the first worker's budget: far more than the grace period, so only a run
    # that stops taking new batches at once (and finishes just those in hand) reaches its checkpoint in time
    config = write_config(tmp_path, sim, broker, rate_scale=2, worker=f"shutdown_grace_seconds = {GRACE}")
    first = workers(config)
    broker.publish(refreshed(snap, refresh_id="term-1"))
    run_id = run_id_for("vip", "term-1")
    batches = -(-len(seg.expected) // 250)
    wait_for(lambda: 5 <= records(tmp_path, "vip", run_id)[1] < batches - 40, 60, "the run to be sending",
             interval=0.05, check=first.assert_alive)
    first.terminate()
    try:
        rc = first.wait(GRACE + 10)
    except Exception:
        raise AssertionError(f"the worker did not exit within the grace period ({GRACE} s) after SIGTERM") from None
    assert rc == 0, first.tail()
    log = first.text()
    assert "grace period over" not in log, "the run did not reach a checkpoint within the grace period"
    assert "run handed on through a continuation" in log, "SIGTERM did not hand the run on"
    assert broker.completions() == []  # stopped before the end
    accepted, final = records(tmp_path, "vip", run_id)[1:]
    assert accepted == final < batches, "a checkpoint: every batch sent so far is final, the rest not yet sent"

    # the next worker (a bigger budget, so the rest goes quickly) takes the continuation
    second = workers(write_config(tmp_path, sim, broker, name="worker-2.toml"))
    broker.wait_completions(1, 120, check=second.assert_alive)
    broker.wait_idle(60, check=second.assert_alive)
    done = broker.completions()
    assert [e["run_id"] for e in done] == [run_id], done
    assert done[0]["counts"]["added"] == len(seg.expected) and done[0]["counts"]["failed"] == 0
    sim.assert_list_exact(3, seg.expected)
    assert len(sim.bulk_posts(None)) == batches  # nothing sent twice across the hand-over
    assert broker.read_dead() == []
    assert second.alive()


def test_rabbitmq_connection_cut_mid_run_reconnects_and_completes_once(tmp_path, sim, rabbit, workers):
    seg = make_segment(range(20_000), seed=32)
    snap = write_jsonl(tmp_path / "snap.jsonl", seg.profiles)
    worker = workers(write_config(tmp_path, sim, rabbit, rate_scale=4))
    pid = worker.pid
    rabbit.publish(refreshed(snap, refresh_id="cut-1"))
    run_id = run_id_for("vip", "cut-1")
    batches = -(-len(seg.expected) // 250)
    wait_for(lambda: 5 <= records(tmp_path, "vip", run_id)[1] < batches - 20, 60, "the run to be sending",
             interval=0.05, check=worker.assert_alive)
    conns = amqp_connections_of(pid)
    assert conns, "could not find the worker's RabbitMQ connection"
    close_amqp_connections(conns)
    assert records(tmp_path, "vip", run_id)[2] < batches, "the run ended before the cut: too late to prove anything"
    # a new connection from the same process
    wait_for(lambda: set(amqp_connections_of(pid)) - set(conns), 60, "the worker to reconnect", interval=0.5,
             check=worker.assert_alive)

    rabbit.wait_completions(1, 120, check=worker.assert_alive)
    rabbit.wait_idle(60, check=worker.assert_alive)
    done = rabbit.completions()
    assert [e["run_id"] for e in done] == [run_id], f"{len(done)} export.completed for one run: {done}"
    assert done[0]["counts"]["added"] == len(seg.expected) and done[0]["counts"]["failed"] == 0
    sim.assert_list_exact(3, seg.expected)
    posts = len(sim.bulk_posts(None))
    assert batches <= posts <= batches + 16, posts
    assert rabbit.read_dead() == []
    assert worker.alive() and worker.pid == pid
    assert worker.text().count("worker consuming") == 1
